"""``python -m remotemedia_multiprocess``: where this install's files are.

``--native-lib`` prints the path of the native library the package carries
(what Deno loads; also what ``RMP_ICEORYX2_LIB`` may be set to), ``--session-server``
the Deno session server it carries, ``--version`` the version. A missing file
exits with status 1 and says why on stderr.

Example:
    $ python -m remotemedia_multiprocess --native-lib
    /.../site-packages/remotemedia_multiprocess/_native/librmp_iceoryx2.so
"""

from __future__ import annotations

import argparse
import sys

from ._native_lib import bundled_session_server, library_path

_NOT_CARRIED = (
    "this install of remotemedia-multiprocess carries no {what} (an editable or source "
    "install from a checkout, which has its own): install the wheel with "
    "`{python} -m pip install --force-reinstall remotemedia-multiprocess`"
)


def main(argv: list[str] | None = None) -> int:
    """Runs the command line.

    Args:
        argv: The arguments (default: ``sys.argv[1:]``).

    Returns:
        The exit status: 0, or 1 when the file asked for is not carried.

    Example:
        >>> main(["--version"])  # doctest: +SKIP
        0.1.0
        0
    """
    parser = argparse.ArgumentParser(
        prog="python -m remotemedia_multiprocess",
        description="Where this install of remotemedia-multiprocess keeps its files.",
    )
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--native-lib", action="store_true", help="print the native library's path")
    group.add_argument(
        "--session-server", action="store_true", help="print the Deno session server's path"
    )
    group.add_argument("--version", action="store_true", help="print the version")
    args = parser.parse_args(argv)
    if args.version:
        from . import __version__

        print(__version__)
        return 0
    if args.native_lib:
        path = library_path()
        what = "native library"
    else:
        server = bundled_session_server()
        path = None if server is None else str(server)
        what = "Deno session server"
    if path is None:
        print(_NOT_CARRIED.format(what=what, python=sys.executable), file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
