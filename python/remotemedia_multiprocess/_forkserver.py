"""The fork server: imports the SDK (iceoryx2, numpy, the runner) once and
forks node runners on request, so a runner starts without paying for those
imports (docs/runner-protocol.md, "Fork server").

Usage (by the executor only)::

    python -m remotemedia_multiprocess._forkserver

Protocol: one JSON object per line. Requests on stdin::

    {"id": 1, "args": [...runner argv...], "env": {...}, "cwd": "...",
     "log_socket": "/tmp/rmp/<prefix>/logs.sock", "token": "..."}

Answers on stdout: ``{"ready": true, "pid": P}`` once imported, then
``{"id": 1, "pid": P}`` (or ``{"id": 1, "error": "..."}``) per request and
``{"exit": P, "code": C, "signal": S}`` when a runner ends (reaped here).

The server stays single-threaded and opens no iceoryx2 node, so a child
inherits no threads, locks or iceoryx2 state. Each child starts a session of
its own (``setsid``: no terminal signal reaches it; the executor stops it),
asks for SIGKILL when this server dies (``PR_SET_PDEATHSIG``), connects its
stdout and stderr to the session's log socket and runs the runner's
``main``. The server ignores SIGINT and SIGTERM (the executor handles them
and still needs the exit reports) and ends at the end of its stdin, that is
when the executor closes it or dies; its children then die with it.
"""

from __future__ import annotations

import os

# Descriptors the executor's process left open without close-on-exec (its
# iceoryx2 nodes and sockets, say) must not live on in this long-lived
# process and every runner it forks: only stdin, stdout and stderr stay.
os.closerange(3, os.sysconf("SC_OPEN_MAX") if hasattr(os, "sysconf") else 65536)

import contextlib
import ctypes
import json
import selectors
import signal
import socket
import sys
import warnings
from typing import Any

# Imported once here, inherited by every child (the point of the server).
import iceoryx2  # noqa: F401
import numpy  # noqa: F401

from . import channel, node, runner, runtime_data  # noqa: F401

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """SIGKILL this process when its parent (the server) ends."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _write(message: dict[str, Any]) -> None:
    data = (json.dumps(message) + "\n").encode()
    view = memoryview(data)
    while view:
        try:
            written = os.write(1, view)
        except BrokenPipeError:
            # The executor is gone (killed with -9): nobody reads reports any
            # more. Exit quietly; the children die with us (PR_SET_PDEATHSIG).
            os._exit(0)
        view = view[written:]


def _connect_stream(path: str, token: str, stream: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(10.0)
    sock.connect(path)
    sock.sendall((json.dumps({"token": token, "stream": stream}) + "\n").encode())
    sock.settimeout(None)
    return sock


def _child(request: dict[str, Any], close_fds: list[int], parent: int) -> None:
    """In the forked child: become the runner. Never returns."""
    code = 1
    try:
        _die_with_parent()
        if os.getppid() != parent:  # the server died before prctl
            os._exit(1)
        os.setsid()
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD):
            signal.signal(signum, signal.SIG_DFL)
        signal.set_wakeup_fd(-1)
        for fd in close_fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        out = _connect_stream(request["log_socket"], request["token"], "stdout")
        err = _connect_stream(request["log_socket"], request["token"], "stderr")
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(out.fileno(), 1)
        os.dup2(err.fileno(), 2)
        for fd in (devnull, out.detach(), err.detach()):
            os.close(fd)
        env: dict[str, str] = request.get("env") or {}
        os.environ.clear()
        os.environ.update(env)
        _set_python_path(env.get("PYTHONPATH", ""))
        cwd = request.get("cwd")
        if cwd:
            os.chdir(cwd)
        args = [str(a) for a in request["args"]]
        sys.argv = ["remotemedia_multiprocess.runner", *args]
        # sys.stdout/stderr still write to fds 1 and 2, now the sockets.
        code = runner.main(args)
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    except BaseException:  # noqa: BLE001 - reported on the (log) stderr
        with contextlib.suppress(BaseException):
            import traceback

            traceback.print_exc()
    finally:
        with contextlib.suppress(BaseException):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


_BASE_PATH = list(sys.path)
_BASE_PYTHONPATH = [p for p in os.environ.get("PYTHONPATH", "").split(":") if p]


def _set_python_path(pythonpath: str) -> None:
    """``sys.path`` as a fresh interpreter would have it with ``PYTHONPATH``
    (the server's own PYTHONPATH entries replaced by the child's)."""
    wanted = [os.path.abspath(p) for p in pythonpath.split(":") if p]
    base = {os.path.abspath(p) for p in _BASE_PYTHONPATH}
    rest = [p for p in _BASE_PATH[1:] if os.path.abspath(p) not in base]
    sys.path[:] = [_BASE_PATH[0], *wanted, *rest]


def _reap() -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            try:
                name = signal.Signals(sig).name
            except ValueError:
                name = str(sig)
            _write({"exit": pid, "code": None, "signal": name})
        else:
            _write({"exit": pid, "code": os.waitstatus_to_exitcode(status), "signal": None})


def serve() -> int:
    """Answers fork requests until stdin ends.

    Returns:
        The exit code.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
    os.set_blocking(0, False)
    selector = selectors.DefaultSelector()
    selector.register(0, selectors.EVENT_READ, "stdin")
    selector.register(wake_r, selectors.EVENT_READ, "wake")
    me = os.getpid()
    _write({"ready": True, "pid": me})
    pending = b""
    eof = False
    while not eof:
        for key, _ in selector.select():
            if key.data == "wake":
                with contextlib.suppress(OSError):
                    while os.read(wake_r, 512):
                        pass
                _reap()
                continue
            try:
                chunk = os.read(0, 65536)
            except BlockingIOError:
                continue
            if not chunk:
                eof = True
                break
            pending += chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                if not line.strip():
                    continue
                # fd 0 is not closed: the child replaces it with /dev/null.
                _fork_one(line, [wake_r, wake_w, selector.fileno()], me)
        _reap()
    return 0


def _fork_one(line: bytes, close_fds: list[int], me: int) -> None:
    try:
        request = json.loads(line)
        ident = request["id"]
    except (ValueError, KeyError, TypeError) as e:
        print(f"fork server: bad request {line[:200]!r}: {e}", file=sys.stderr)
        return
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
    except OSError as e:
        _write({"id": ident, "error": f"fork failed: {e}"})
        return
    if pid == 0:
        _child(request, close_fds, me)
    _write({"id": ident, "pid": pid})


if __name__ == "__main__":
    _die_with_parent()  # with the executor, even when its stdin stays open
    sys.exit(serve())
