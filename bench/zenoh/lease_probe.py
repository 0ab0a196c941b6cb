"""Peers of ``bench/zenoh/probe.ts lease``: how long a Zenoh liveliness token
takes to disappear for a watcher when the link to its owner is cut.

``lease_probe.py token <listen>``: declares ``rmp/bench/live/far``, prints
``ready``, sleeps (the probe kills it).
``lease_probe.py watch <connect> <bound-s>``: prints one JSON line per
liveliness change, ``{"kind", "monotonic_ns"}``, and exits after the DELETE or
the bound (``os._exit``: a session's close can wait on a link that is gone).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time

from _common import open_session

KEY = "rmp/bench/live/far"


def main() -> None:
    role, endpoint = sys.argv[1], sys.argv[2]
    if role == "token":
        session = open_session([endpoint], [])
        # Kept in a name: a token that is garbage-collected is undeclared.
        token = session.liveliness().declare_token(KEY)
        print("ready", flush=True)
        time.sleep(600)
        token.undeclare()
        os._exit(0)
    session = open_session([], [endpoint])
    gone = threading.Event()

    def on_change(sample) -> None:  # sample: zenoh.Sample
        kind = "delete" if "DELETE" in str(sample.kind) else "put"
        print(
            json.dumps({"kind": kind, "monotonic_ns": time.monotonic_ns()}), flush=True
        )
        if kind == "delete":
            gone.set()

    watcher = session.liveliness().declare_subscriber(KEY, on_change, history=True)
    gone.wait(float(sys.argv[3]))
    watcher.undeclare()
    os._exit(0)


if __name__ == "__main__":
    main()
