"""``python -m remotemedia_multiprocess.agent --listen tcp/0.0.0.0:7447``: the
host agent that runs the nodes a pipeline places on this host (see
``remotemedia_multiprocess.hosts.agent``). Needs the ``hosts`` extra
(``pip install 'remotemedia-multiprocess[hosts]'``).
"""

from __future__ import annotations

import sys

if __name__ == "__main__":
    from .hosts.agent import main

    sys.exit(main())
