"""Direct doorbells (docs/channel-protocol.md, "Waking Deno").

A Deno context that subscribes to channel ``N`` links its doorbell socket
under ``<root>bells/<N encoded>/``. A publisher writes one byte to every such
socket after each send, which wakes the Deno event loop in one hop instead of
two (the ``N/data`` notification wakes a native listener thread that then
writes the byte). The notification is still sent: a bell is only a shortcut,
so a missing, stale or unreachable bell costs latency, never a message.
"""

from __future__ import annotations

import os
import socket
import time

__all__ = ["BellRinger", "bell_directory_name"]

_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")

# Subscribers come and go rarely; a publisher looks for new bells when its
# subscriber count changes and, to catch a swap that kept the count, at most
# this often.
RESCAN_INTERVAL_S = 1.0

_BELL = b"\x01"
_SEND_FLAGS = socket.MSG_DONTWAIT | socket.MSG_NOSIGNAL


def bell_directory_name(channel: str) -> str:
    """The bell directory of ``channel``: UTF-8 bytes outside ``[A-Za-z0-9_-]``
    become ``%XX`` (the same as ``bellDirectoryName`` in data/bells.ts).

    Example:
        >>> bell_directory_name("asr.out")
        'asr%2Eout'
    """
    return "".join(chr(b) if b in _SAFE else f"%{b:02X}" for b in channel.encode("utf-8"))


class BellRinger:
    """Rings the bells of one channel's Deno subscribers.

    Args:
        root: The isolation root (``IoxEnv.root``).
        channel: The channel name.
    """

    def __init__(self, root: str, channel: str) -> None:
        self.directory = os.path.join(root, "bells", bell_directory_name(channel))
        self._sockets: dict[str, socket.socket] = {}
        self._subscribers = -1  # forces a scan on the first send
        self._next_scan = 0.0

    @property
    def bells(self) -> int:
        """How many bells are connected."""
        return len(self._sockets)

    def ring(self, subscribers: int) -> None:
        """Rings every bell; looks for bells first when the number of
        subscribers the sample reached changed or the rescan interval passed.
        """
        if subscribers != self._subscribers or time.monotonic() >= self._next_scan:
            self._subscribers = subscribers
            self._scan()
        dead: list[str] = []
        for name, sock in self._sockets.items():
            try:
                sock.send(_BELL, _SEND_FLAGS)
            except BlockingIOError:
                pass  # bytes are pending: the reader wakes anyway
            except OSError:
                dead.append(name)  # the context closed or died
        for name in dead:
            self._sockets.pop(name).close()

    def _scan(self) -> None:
        self._next_scan = time.monotonic() + RESCAN_INTERVAL_S
        try:
            names = set(os.listdir(self.directory))
        except OSError:
            names = set()
        for name in [n for n in self._sockets if n not in names]:
            self._sockets.pop(name).close()
        for name in names - self._sockets.keys():
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.setblocking(False)
            try:
                sock.connect(os.path.join(self.directory, name))
            except OSError:
                sock.close()  # stale link of a dead context; retried next scan
                continue
            self._sockets[name] = sock

    def close(self) -> None:
        """Disconnects every bell."""
        for sock in self._sockets.values():
            sock.close()
        self._sockets.clear()
