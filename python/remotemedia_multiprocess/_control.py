"""The runner's end of the control socket (docs/runner-protocol.md).

One Unix stream connection to the executor carrying one JSON object per line.
Writes come from several threads (the main loop, the reader thread answering
stats, progress reports) and are serialized by a lock, so lines never
interleave. A reader thread parses the executor's messages and reports end of
file, which is how a runner learns that its executor died (even by kill -9).
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable
from typing import Any

from ._contracts import (
    ExecutorMessage,
    RunnerMessage,
    ToRunnerPing,
    ToRunnerShutdown,
    ToRunnerStats,
)

__all__ = ["ControlConnection", "parse_executor_message"]


def parse_executor_message(obj: Any) -> ExecutorMessage | None:
    """Reads one parsed line from the executor as the message it is.

    Args:
        obj: The line's parsed JSON value.

    Returns:
        The typed message, or None when it is not one the runner knows (not
        an object, an unknown ``type``, a ``stats`` or ``ping`` without an integer ``id``).
    """
    if not isinstance(obj, dict):
        return None
    kind = obj.get("type")
    if kind == "shutdown":
        return ToRunnerShutdown(type="shutdown")
    if kind in ("stats", "ping"):
        ident = obj.get("id")
        if isinstance(ident, int) and not isinstance(ident, bool):
            if kind == "ping":
                return ToRunnerPing(type="ping", id=ident)
            return ToRunnerStats(type="stats", id=ident)
    return None


class ControlConnection:
    """A connected control socket.

    Example::

        conn = ControlConnection.connect("/tmp/x/control.sock")
        conn.send(ToExecutorHello(type="hello", node_id="n", pid=os.getpid()))
        conn.start_reader(on_message=print, on_eof=lambda: None)
    """

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._lock = threading.Lock()
        self._broken = False
        self._reader: threading.Thread | None = None

    @classmethod
    def connect(cls, path: str, timeout: float = 10.0) -> ControlConnection:
        """Connects to the executor's socket.

        Args:
            path: The socket path.
            timeout: Connect timeout in seconds.

        Returns:
            The connection.

        Raises:
            OSError: When the socket cannot be reached.
        """
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(path)
        except BaseException:
            sock.close()
            raise
        sock.settimeout(None)
        return cls(sock)

    @property
    def broken(self) -> bool:
        """True once a write failed (the executor is gone)."""
        return self._broken

    def send(self, message: RunnerMessage) -> bool:
        """Writes one message as a line; thread-safe.

        Args:
            message: The message.

        Returns:
            False when the connection is gone (the message is dropped).
        """
        data = (json.dumps(message, separators=(",", ":")) + "\n").encode()
        with self._lock:
            if self._broken:
                return False
            try:
                self._sock.sendall(data)
                return True
            except OSError:
                self._broken = True
                return False

    def start_reader(
        self,
        on_message: Callable[[ExecutorMessage], None],
        on_eof: Callable[[], None],
    ) -> None:
        """Starts the daemon thread reading the executor's messages.

        Args:
            on_message: Called (on the reader thread) with each valid message;
                other lines (not JSON, or not a message the runner knows, see
                :func:`parse_executor_message`) are ignored.
            on_eof: Called once when the socket reaches end of file or fails.
        """

        def run() -> None:
            pending = b""
            try:
                while True:
                    try:
                        chunk = self._sock.recv(65536)
                    except InterruptedError:
                        continue
                    except OSError:
                        break
                    if not chunk:
                        break
                    pending += chunk
                    while b"\n" in pending:
                        line, pending = pending.split(b"\n", 1)
                        if not line.strip():
                            continue
                        try:
                            message = parse_executor_message(json.loads(line))
                        except ValueError:
                            continue
                        if message is not None:
                            on_message(message)
            finally:
                on_eof()

        self._reader = threading.Thread(target=run, name="rmp-control", daemon=True)
        self._reader.start()

    def close(self) -> None:
        """Closes the socket (the reader thread then sees end of file)."""
        with self._lock:
            self._broken = True
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()
