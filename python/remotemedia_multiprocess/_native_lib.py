"""Where the files this package carries are: the native library and the Deno module.

A wheel of ``remotemedia-multiprocess`` carries ``librmp_iceoryx2.so`` (the
iceoryx2 C ABI that Deno loads with ``Deno.dlopen``) in ``_native/`` and the
Deno module's published files (the session server and everything it imports)
in ``_deno/``. An editable or source install from a checkout carries neither:
the checkout has them.

Standard library only, and imports nothing of the package: Deno loads this
file by its path to ask where the library is without paying for numpy and
iceoryx2.

Example:
    >>> from remotemedia_multiprocess import native_library_path
    >>> native_library_path() is None or native_library_path().endswith(".so")
    True
"""

from __future__ import annotations

import sys
from pathlib import Path

__all__ = ["LIBRARY_NAME", "bundled_session_server", "library_path"]

LIBRARY_NAME = "librmp_iceoryx2.dylib" if sys.platform == "darwin" else "librmp_iceoryx2.so"
"""The native library's file name on this platform."""

_HERE = Path(__file__).resolve().parent


def library_path() -> str | None:
    """The native library this package carries, or None when it carries none.

    Returns:
        The absolute path of ``_native/librmp_iceoryx2.so`` when it exists.

    Example:
        >>> p = library_path()
        >>> p is None or Path(p).is_file()
        True
    """
    path = _HERE / "_native" / LIBRARY_NAME
    return str(path) if path.is_file() else None


def bundled_session_server() -> Path | None:
    """The Deno session server this package carries, or None when it carries none.

    Returns:
        ``_deno/control/session_server.ts`` when it exists.

    Example:
        >>> s = bundled_session_server()
        >>> s is None or s.name == "session_server.ts"
        True
    """
    path = _HERE / "_deno" / "control" / "session_server.ts"
    return path if path.is_file() else None
