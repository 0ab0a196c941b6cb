"""The host protocol: Zenoh keys and messages between a session's link
(``hosts.link``, on the Deno host) and a host agent (``hosts.agent``).

Described in docs/hosts-protocol.md. Every message is one JSON object (UTF-8)
in a Zenoh payload. Per session ``S`` and remote host ``H``:

- ``rmp/agent/start`` (query, link -> agent): the start request; the agent
  answers ``{"ok": true, "pids": {...}}`` or ``{"ok": false, "error": str}``.
- ``rmp/S/host/H/stop`` (query, link -> agent): stop every node, remove the
  isolation; answered ``{"ok": true}`` once done.
- ``rmp/S/host/H/up`` (agent -> link, one key so order is kept): ``control``
  (a runner's control line), ``disconnect``, ``log``, ``spawned``, ``exit``,
  ``lost``, ``error``, ``beat``.
- ``rmp/S/host/H/down`` (link -> agent): ``control`` (a line for a runner),
  ``kill``, ``spawn`` (a restart).
- Liveliness: the link declares ``rmp/S/alive`` (the agent stops the
  session's nodes when it goes), the agent ``rmp/S/host/H/alive`` (the link
  fails the session with HostLostError when it goes).
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from typing import Any

START_KEY = "rmp/agent/start"
"""The agent's start queryable (one agent per Zenoh peer the link connects to)."""

BEAT_SECS = 1.0
"""How often an agent says ``beat`` on a session's up key (tells a lease expiry
from an agent that exited: see the link)."""


def session_alive_key(session_id: str) -> str:
    """The link's liveliness token of session ``session_id``."""
    return f"rmp/{session_id}/alive"


def host_key(session_id: str, host: str, leaf: str) -> str:
    """``rmp/<session>/host/<host>/<leaf>`` (leaf: up, down, stop, alive)."""
    return f"rmp/{session_id}/host/{host}/{leaf}"


def encode(message: dict[str, Any]) -> bytes:
    """One message as a payload."""
    return json.dumps(message, separators=(",", ":")).encode()


def decode(payload: Any) -> dict[str, Any] | None:
    """A payload as a message, or None when it is not a JSON object."""
    try:
        raw = payload.to_bytes() if hasattr(payload, "to_bytes") else bytes(payload)
        obj = json.loads(raw)
    except (ValueError, TypeError):
        return None
    return obj if isinstance(obj, dict) else None


def read_lines(conn: socket.socket, on_line: Callable[[str], None]) -> None:
    """Calls ``on_line`` with each non-empty line read from ``conn`` (a control
    socket: one JSON object per line) until end of file or an error."""
    pending = b""
    while True:
        try:
            chunk = conn.recv(65536)
        except OSError:
            return
        if not chunk:
            return
        pending += chunk
        while b"\n" in pending:
            raw, pending = pending.split(b"\n", 1)
            line = raw.decode("utf-8", "replace")
            if line.strip():
                on_line(line)
