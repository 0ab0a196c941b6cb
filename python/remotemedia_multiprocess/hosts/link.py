"""A session's link to its remote hosts, on the Deno host.

``python -m remotemedia_multiprocess.hosts.link --spec FILE``, spawned by the
Deno session (control/host_link.ts) when its pipeline places nodes on other
hosts. It:

- opens one Zenoh peer per remote host, connected to that host's agent
  endpoint, and declares the session's liveliness token there
  (``rmp/<session>/alive``);
- runs this host's side of every bridge (hosts.bridge): an Egress for each
  channel made here and read there, an Ingress for each one made there and
  read here, in the session's own isolation;
- asks each agent to start its nodes (``rmp/agent/start``, retried until the
  host's ``connect_timeout_secs``);
- makes each remote runner look local to the session: one connection per
  remote node to the session's control socket carries that runner's control
  lines both ways; logs, PIDs, exits and losses go to Deno as JSON lines on
  stdout; Deno's commands (kill, spawn, close) come as JSON lines on stdin;
- reports a host whose agent token disappears (``host_lost``).

End of file on stdin (Deno gone, even by kill -9) closes it: the agents are
asked to stop (bounded), the tokens go, and it exits.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

import zenoh

from .._iox import IoxEnv, hold_isolation
from ..channel import Channel
from . import _protocol as proto
from ._zenoh import TlsFiles, close_bounded, open_session
from .bridge import Egress, Ingress

__all__ = ["Link", "main"]

_STOP_TIMEOUT_SECS = 8.0
"""Bound on an agent's answer to a stop request (it waits 2 s for its nodes)."""


class _Host:
    """One remote host of the session."""

    def __init__(self, name: str, spec: dict[str, Any]) -> None:
        self.name = name
        self.spec = spec
        self.endpoint = str(spec["endpoint"])
        self.lease = float(spec.get("lease_secs", 10.0))
        tls = None
        if spec.get("tls_root_ca") or spec.get("tls_cert") or spec.get("tls_key"):
            tls = TlsFiles(
                root_ca=spec.get("tls_root_ca"), cert=spec.get("tls_cert"), key=spec.get("tls_key")
            )
        self.zs = open_session(connect=[self.endpoint], lease_secs=self.lease, tls=tls)
        self.last_heard = time.monotonic()
        self.started = False
        self.lost = False
        self.entities: list[Any] = []
        self.down: Any = None


class Link:
    """See the module documentation."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.id = str(spec["session_id"])
        self.env = IoxEnv(str(spec["iox_prefix"]), str(spec["iox_root"]))
        self.control_path = str(spec["control_socket"])
        self.hosts: dict[str, _Host] = {}
        self.node_host: dict[str, str] = {}
        self.conns: dict[str, socket.socket] = {}
        self.channels: list[Channel] = []
        self.bridges: list[Egress | Ingress] = []
        self._out_lock = threading.Lock()
        self._lock = threading.Lock()
        self._closing = False

    # -- to Deno ------------------------------------------------------------

    def emit(self, event: dict[str, Any]) -> None:
        """One JSON line on stdout (Deno's HostLink reads it)."""
        line = json.dumps(event, separators=(",", ":")) + "\n"
        with self._out_lock, contextlib.suppress(OSError, ValueError):
            sys.stdout.write(line)
            sys.stdout.flush()

    # -- from an agent -------------------------------------------------------

    def _on_up(self, host: _Host, sample: zenoh.Sample) -> None:
        host.last_heard = time.monotonic()
        m = proto.decode(sample.payload)
        if m is None:
            return
        kind = m.get("kind")
        node = str(m.get("node", ""))
        if kind == "control":
            self._to_deno(node, str(m.get("line", "")))
        elif kind == "disconnect":
            self._drop_conn(node)
        elif kind == "log":
            self.emit(
                {
                    "type": "log",
                    "node": node,
                    "stream": m.get("stream"),
                    "line": m.get("line"),
                    "continued": bool(m.get("continued")),
                }
            )
        elif kind == "exit":
            self._drop_conn(node)
            self.emit(
                {
                    "type": "exit",
                    "node": node,
                    "code": m.get("code"),
                    "signal": m.get("signal"),
                }
            )
        elif kind == "spawned":
            self.emit({"type": "spawned", "node": node, "pid": m.get("pid"), "host": host.name})
        elif kind == "lost":
            self.emit(
                {
                    "type": "lost",
                    "channel": m.get("channel"),
                    "count": m.get("count"),
                    "host": host.name,
                }
            )
        elif kind == "error":
            self.emit({"type": "error", "host": host.name, "node": node, "error": m.get("error")})

    def _on_host_alive(self, host: _Host, sample: zenoh.Sample) -> None:
        if sample.kind != zenoh.SampleKind.DELETE or not host.started or self._closing:
            return
        host.lost = True
        silent = time.monotonic() - host.last_heard
        # An agent that exits closes its TCP connection: the token goes at
        # once, while beats still arrived. A cut link ends only with the lease.
        reason = (
            "lease_expired"
            if silent >= max(host.lease / 2, 2 * proto.BEAT_SECS)
            else ("agent_exited")
        )
        self.emit(
            {
                "type": "host_lost",
                "host": host.name,
                "reason": reason,
                "lease_secs": host.lease,
                "silent_secs": round(silent, 3),
            }
        )

    # -- the remote runners' control connections -------------------------------

    def _to_deno(self, node: str, line: str) -> None:
        with self._lock:
            conn = self.conns.get(node)
            if conn is None:
                conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    conn.connect(self.control_path)
                except OSError as e:
                    conn.close()
                    self.emit({"type": "error", "node": node, "error": f"Cannot relay: {e}"})
                    return
                self.conns[node] = conn
                threading.Thread(target=self._from_deno, args=(node, conn), daemon=True).start()
        with contextlib.suppress(OSError):
            conn.sendall(line.encode() + b"\n")

    def _from_deno(self, node: str, conn: socket.socket) -> None:
        host = self.hosts[self.node_host[node]]
        proto.read_lines(
            conn, lambda line: self._down(host, {"kind": "control", "node": node, "line": line})
        )

    def _drop_conn(self, node: str) -> None:
        with self._lock:
            conn = self.conns.pop(node, None)
        if conn is not None:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    def _down(self, host: _Host, message: dict[str, Any]) -> None:
        with contextlib.suppress(Exception):
            host.down.put(proto.encode(message))

    # -- start and stop ------------------------------------------------------

    def start(self) -> None:
        """Connects to every host, makes the bridges, starts the remote nodes."""
        hold_isolation(self.env.root)
        for name, hspec in self.spec["hosts"].items():
            host = _Host(name, hspec)
            self.hosts[name] = host
            for n in hspec["nodes"]:
                self.node_host[str(n["node_id"])] = name
            zs = host.zs
            host.entities += [
                zs.liveliness().declare_token(proto.session_alive_key(self.id)),
                zs.declare_subscriber(
                    proto.host_key(self.id, name, "up"),
                    lambda s, h=host: self._on_up(h, s),
                ),
                zs.liveliness().declare_subscriber(
                    proto.host_key(self.id, name, "alive"),
                    lambda s, h=host: self._on_host_alive(h, s),
                ),
            ]
            host.down = zs.declare_publisher(
                proto.host_key(self.id, name, "down"),
                congestion_control=zenoh.CongestionControl.BLOCK,
                reliability=zenoh.Reliability.RELIABLE,
            )
            for b in hspec["bridges"]:
                channel = Channel.open_or_create(
                    self.env, str(b["channel"]), int(b["capacity"]), int(b["max_subscribers"])
                )
                self.channels.append(channel)
                if b["direction"] == "out":
                    self.bridges.append(Egress(zs, self.id, channel, on_lost=self._lost(name)))
                else:
                    self.bridges.append(
                        Ingress(
                            zs,
                            self.id,
                            channel,
                            max_payload=int(self.spec["max_payload_bytes"]),
                            on_lost=self._lost(name),
                            on_error=lambda e, h=name: self.emit(
                                {"type": "error", "host": h, "error": f"{type(e).__name__}: {e}"}
                            ),
                        )
                    )
        threads = [
            threading.Thread(target=self._start_host, args=(h,), daemon=True)
            for h in self.hosts.values()
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if all(h.started for h in self.hosts.values()):
            self.emit({"type": "started"})

    def _lost(self, host: str) -> Any:
        return lambda channel, count: self.emit(
            {"type": "lost", "channel": channel, "count": count, "host": host}
        )

    def _start_host(self, host: _Host) -> None:
        hspec = host.spec
        request = {
            "session_id": self.id,
            "host": host.name,
            "nodes": hspec["nodes"],
            "channels": hspec["channels"],
            "bridges": [
                {"channel": b["channel"], "direction": b["direction"]} for b in hspec["bridges"]
            ],
            "max_payload_bytes": self.spec["max_payload_bytes"],
        }
        timeout = float(hspec.get("connect_timeout_secs", 10.0))
        deadline = time.monotonic() + timeout
        payload = proto.encode(request)
        while not self._closing:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            # No agent reachable yet: get() ends at once with no reply.
            for reply in host.zs.get(proto.START_KEY, payload=payload, timeout=max(left, 0.1)):
                if reply.ok is None:
                    continue
                answer = proto.decode(reply.ok.payload) or {}
                if answer.get("ok"):
                    host.started = True
                    for node, pid in dict(answer.get("pids", {})).items():
                        self.emit({"type": "spawned", "node": node, "pid": pid, "host": host.name})
                else:
                    self.emit(
                        {
                            "type": "start_failed",
                            "host": host.name,
                            "reason": "refused",
                            "error": str(answer.get("error", "no reason given")),
                        }
                    )
                return
            time.sleep(0.1)
        self.emit(
            {
                "type": "start_failed",
                "host": host.name,
                "reason": "unreachable",
                "error": f"no agent answered at {host.endpoint} within {timeout:g} s",
            }
        )

    def command(self, m: dict[str, Any]) -> None:
        """One command from Deno (stdin)."""
        kind = m.get("type")
        node = str(m.get("node", ""))
        host = self.hosts.get(self.node_host.get(node, ""))
        if kind == "kill" and host is not None:
            self._down(host, {"kind": "kill", "node": node, "signal": m.get("signal", "SIGKILL")})
        elif kind == "spawn" and host is not None:
            self._down(host, {"kind": "spawn", "node": node, "attempt": m.get("attempt", 0)})

    def close(self) -> None:
        """Asks every agent to stop (bounded), then drops bridges, tokens and peers."""
        self._closing = True
        threads = [
            threading.Thread(target=self._stop_host, args=(h,), daemon=True)
            for h in self.hosts.values()
            if h.started and not h.lost
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=_STOP_TIMEOUT_SECS + 1)
        for node in list(self.conns):
            self._drop_conn(node)
        for b in self.bridges:
            b.close()
        for c in self.channels:
            with contextlib.suppress(Exception):
                c.close()
        for h in self.hosts.values():
            for e in h.entities:
                with contextlib.suppress(Exception):
                    e.undeclare()
            close_bounded(h.zs, timeout=2.0)

    def _stop_host(self, host: _Host) -> None:
        with contextlib.suppress(Exception):
            for _ in host.zs.get(
                proto.host_key(self.id, host.name, "stop"), timeout=_STOP_TIMEOUT_SECS
            ):
                break


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m remotemedia_multiprocess.hosts.link --spec FILE``."""
    parser = argparse.ArgumentParser(prog="python -m remotemedia_multiprocess.hosts.link")
    parser.add_argument("--spec", required=True, help="the link spec (JSON, from Deno)")
    args = parser.parse_args(argv)
    with open(args.spec, encoding="utf-8") as f:
        spec = json.load(f)
    link = Link(spec)
    code = 0
    try:
        link.start()
        for raw in sys.stdin:
            try:
                m = json.loads(raw)
            except ValueError:
                continue
            if isinstance(m, dict):
                if m.get("type") == "close":
                    break
                link.command(m)
    except Exception as e:  # noqa: BLE001 - reported to Deno, which fails the session
        link.emit({"type": "error", "error": f"{type(e).__name__}: {e}"})
        code = 1
    finally:
        link.close()
        link.emit({"type": "closed"})
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        # A Zenoh session may keep the process alive while a link is down.
        os._exit(code)
    return code


if __name__ == "__main__":
    sys.exit(main())
