"""The host agent: runs the nodes a session places on this host.

``python -m remotemedia_multiprocess.agent --listen tcp/0.0.0.0:7447`` on each
remote host. It opens a Zenoh peer on the given endpoints and answers start
requests from session links (``hosts.link``, spawned by the Deno executor).
For each session it:

- makes an isolation of its own (a new iceoryx2 prefix and root, locked as a
  local session's is), creates the channels its nodes use with the protocol's
  settings, and the bridges of every channel that crosses hosts
  (``hosts.bridge``);
- listens on a control socket in that isolation and spawns one runner per node
  (``python -m remotemedia_multiprocess.runner --spec``), relaying each
  runner's control lines, stdout and stderr lines and exit to the link, and
  the link's control lines, kills and restarts to the runners;
- stops the session's nodes when the link's liveliness token
  (``rmp/<session>/alive``) disappears: the rule a local runner follows when
  its control socket closes. Closing the control sockets ends the runners
  (they exit within 2 s of end of file); SIGKILL follows for any still there.

The protocol is in ``hosts._protocol`` and docs/hosts-protocol.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

import zenoh

from .._iox import IoxEnv, new_isolated_env, remove_env_files, sweep_stale
from ..channel import Channel
from . import _protocol as proto
from ._zenoh import TlsFiles, close_bounded, open_session
from .bridge import Egress, Ingress

__all__ = ["Agent", "main"]

_STOP_GRACE_SECS = 2.0
"""How long stopping nodes waits for them to exit by themselves."""
_ORPHAN_SECS = 10.0
"""A session whose link token was never seen this long after start is stopped."""
_MAX_LOG_LINE_BYTES = 64 * 1024
"""A runner's log line crosses in parts of at most this (MAX_LOG_LINE_BYTES
in control/node_process.ts)."""


def _signal_name(code: int) -> str | None:
    if code >= 0:
        return None
    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"SIG{-code}"


class _Runner:
    """One node process of a session on this host."""

    def __init__(self, node_id: str, proc: subprocess.Popen[bytes]) -> None:
        self.node_id = node_id
        self.proc = proc
        self.conn: socket.socket | None = None
        self.disconnected = threading.Event()
        self.exited = threading.Event()
        self.write_lock = threading.Lock()

    def send_line(self, line: str) -> None:
        conn = self.conn
        if conn is None:
            return
        with self.write_lock, contextlib.suppress(OSError):
            conn.sendall(line.encode() + b"\n")


class RemoteSession:
    """A session's part on this host (see the module documentation)."""

    def __init__(self, agent: Agent, request: dict[str, Any]) -> None:
        self.agent = agent
        self.id = str(request["session_id"])
        self.host = str(request["host"])
        self.request = request
        self.specs: dict[str, dict[str, Any]] = {
            str(s["node_id"]): dict(s) for s in request.get("nodes", [])
        }
        self.runners: dict[str, _Runner] = {}
        self.lock = threading.RLock()
        self.stopped = threading.Event()
        self._stopping = False
        self.link_seen = threading.Event()
        self.env: IoxEnv | None = None
        self.channels: list[Channel] = []
        self.bridges: list[Egress | Ingress] = []
        self._listener: socket.socket | None = None
        self._entities: list[Any] = []
        zs = agent.zsession
        self._up = zs.declare_publisher(
            proto.host_key(self.id, self.host, "up"),
            congestion_control=zenoh.CongestionControl.BLOCK,
            reliability=zenoh.Reliability.RELIABLE,
        )

    # -- relaying ------------------------------------------------------------

    def up(self, message: dict[str, Any]) -> None:
        """Sends one message to the link (never raises: a closed session just drops it)."""
        with contextlib.suppress(Exception):
            self._up.put(proto.encode(message))

    def _on_down(self, sample: zenoh.Sample) -> None:
        m = proto.decode(sample.payload)
        if m is None:
            return
        kind, node = m.get("kind"), str(m.get("node", ""))
        if kind == "control":
            runner = self.runners.get(node)
            if runner is not None:
                runner.send_line(str(m.get("line", "")))
        elif kind == "kill":
            runner = self.runners.get(node)
            sig = getattr(signal, str(m.get("signal", "SIGKILL")), signal.SIGKILL)
            if runner is not None and runner.proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    runner.proc.send_signal(sig)
        elif kind == "spawn":
            attempt = int(m.get("attempt", 0))
            threading.Thread(target=self._respawn, args=(node, attempt), daemon=True).start()

    def _respawn(self, node: str, attempt: int) -> None:
        try:
            pid = self._spawn(node, attempt)
        except Exception as e:  # noqa: BLE001 - any failure is reported; the link fails the node
            self.up({"kind": "error", "node": node, "error": f"Cannot restart: {e}"})
            return
        self.up({"kind": "spawned", "node": node, "pid": pid, "attempt": attempt})

    def _on_link_alive(self, sample: zenoh.Sample) -> None:
        if sample.kind == zenoh.SampleKind.DELETE:
            threading.Thread(target=self.stop, args=(0.0, "its link is gone"), daemon=True).start()
        else:
            self.link_seen.set()

    # -- control socket ------------------------------------------------------

    def _accept(self) -> None:
        listener = self._listener
        assert listener is not None
        while not self._stopping:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=self._read_conn, args=(conn,), daemon=True).start()

    def _read_conn(self, conn: socket.socket) -> None:
        node: str | None = None

        def on_line(line: str) -> None:
            nonlocal node
            if node is None:
                node = self._hello(conn, line)
                if node is None:
                    return
            self.up({"kind": "control", "node": node, "line": line})

        try:
            proto.read_lines(conn, on_line)
        finally:
            with contextlib.suppress(OSError):
                conn.close()
            if node is not None:
                runner = self.runners.get(node)
                if runner is not None and runner.conn is conn:
                    runner.conn = None
                    runner.disconnected.set()
                self.up({"kind": "disconnect", "node": node})

    def _hello(self, conn: socket.socket, line: str) -> str | None:
        try:
            m = json.loads(line)
        except ValueError:
            return None
        if not isinstance(m, dict) or m.get("type") != "hello":
            return None
        node = str(m.get("node_id"))
        runner = self.runners.get(node)
        if runner is None:
            return None
        runner.conn = conn
        return node

    # -- processes -----------------------------------------------------------

    def _spawn(self, node: str, attempt: int) -> int:
        env = self.env
        assert env is not None
        spec = dict(self.specs[node])
        paths = [p for p in spec.get("module_paths", []) if os.path.isdir(p)]
        spec.update(
            iox_prefix=env.prefix,
            iox_root=env.root,
            control_socket=f"{env.root}control.sock",
            restart_attempt=attempt,
            module_paths=[*paths, *self.agent.module_paths],
        )
        path = f"{env.root}spec-{node}.json"
        with open(path, "w", encoding="utf-8") as f:
            json.dump(spec, f)
        child_env = {
            k: v
            for k, v in os.environ.items()
            if k in ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "PYTHONPATH")
        }
        child_env.update(
            env.env_vars(),
            PYTHONUNBUFFERED="1",
            PYTHONDONTWRITEBYTECODE="1",
            PYTHONSAFEPATH="1",
        )
        proc = subprocess.Popen(
            [self.agent.python, "-m", "remotemedia_multiprocess.runner", "--spec", path],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=child_env,
            close_fds=True,
        )
        runner = _Runner(node, proc)
        with self.lock:
            self.runners[node] = runner
        pumps = [
            threading.Thread(target=self._pump, args=(runner, s, n), daemon=True)
            for s, n in ((proc.stdout, "stdout"), (proc.stderr, "stderr"))
        ]
        for t in pumps:
            t.start()
        threading.Thread(target=self._wait, args=(runner, pumps), daemon=True).start()
        return proc.pid

    def _pump(self, runner: _Runner, stream: Any, name: str) -> None:
        # At most MAX_LOG_LINE_BYTES per message, as the executor reads a
        # local node's pipes: a longer line goes in parts marked continued.
        # (A part may end inside a UTF-8 character: it is replaced.)
        for raw in iter(lambda: stream.readline(_MAX_LOG_LINE_BYTES), b""):
            continued = not raw.endswith(b"\n")
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.up(
                {
                    "kind": "log",
                    "node": runner.node_id,
                    "stream": name,
                    "line": line,
                    "continued": continued,
                }
            )

    def _wait(self, runner: _Runner, pumps: list[threading.Thread]) -> None:
        code = runner.proc.wait()
        for t in pumps:
            t.join(timeout=1.0)
        # Its last control lines go before its exit (one key keeps the order).
        if runner.conn is not None:
            runner.disconnected.wait(timeout=1.0)
        # Its iceoryx2 ports go at once (as ChannelContext.cleanupDeadNodes
        # does for a local restart): the ingress gets back the chunks it held.
        if self.env is not None and not self._stopping:
            with contextlib.suppress(Exception):
                self.env.node.try_cleanup_dead_nodes()
        runner.exited.set()
        self.up(
            {
                "kind": "exit",
                "node": runner.node_id,
                "code": code if code >= 0 else None,
                "signal": _signal_name(code),
                "pid": runner.proc.pid,
            }
        )

    # -- life ------------------------------------------------------------------

    def start(self) -> dict[str, int]:
        """Makes the isolation, channels, bridges and control socket, then
        spawns every node; returns their PIDs."""
        zs = self.agent.zsession
        self.env = env = new_isolated_env()
        req = self.request
        for ch in req.get("channels", []):
            self.channels.append(
                Channel.open_or_create(
                    env, str(ch["name"]), int(ch["capacity"]), int(ch["max_subscribers"])
                )
            )
        by_name = {c.name: c for c in self.channels}
        for b in req.get("bridges", []):
            channel = by_name[str(b["channel"])]
            if b["direction"] == "out":  # made on the link's host, read here
                self.bridges.append(
                    Ingress(
                        zs,
                        self.id,
                        channel,
                        max_payload=int(req["max_payload_bytes"]),
                        on_lost=self._lost,
                        on_error=self._bridge_error,
                    )
                )
            else:
                self.bridges.append(Egress(zs, self.id, channel, on_lost=self._lost))
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(f"{env.root}control.sock")
        self._listener.listen(64)
        threading.Thread(target=self._accept, daemon=True).start()
        self._entities += [
            zs.declare_subscriber(proto.host_key(self.id, self.host, "down"), self._on_down),
            zs.liveliness().declare_token(proto.host_key(self.id, self.host, "alive")),
            zs.liveliness().declare_subscriber(
                proto.session_alive_key(self.id), self._on_link_alive, history=True
            ),
            zs.declare_queryable(proto.host_key(self.id, self.host, "stop"), self._on_stop),
        ]
        pids = {
            node: self._spawn(node, int(spec.get("restart_attempt", 0)))
            for node, spec in self.specs.items()
        }
        threading.Thread(target=self._beat, daemon=True).start()
        return pids

    def _lost(self, channel: str, count: int) -> None:
        self.up({"kind": "lost", "channel": channel, "count": count})

    def _bridge_error(self, error: BaseException) -> None:
        self.up({"kind": "error", "error": f"{type(error).__name__}: {error}"})

    def _beat(self) -> None:
        started = time.monotonic()
        while not self.stopped.wait(proto.BEAT_SECS):
            self.up({"kind": "beat"})
            if not self.link_seen.is_set() and time.monotonic() - started > _ORPHAN_SECS:
                self.stop(0.0, "its link never appeared")

    def _on_stop(self, query: zenoh.Query) -> None:
        def run() -> None:
            self.stop(_STOP_GRACE_SECS, "the session closed")
            with contextlib.suppress(Exception):
                query.reply(query.key_expr, proto.encode({"ok": True}))

        threading.Thread(target=run, daemon=True).start()

    def stop(self, grace: float, why: str) -> None:
        """Stops every node (end of file on its control socket, then SIGKILL
        after ``grace`` s), the bridges, and removes the isolation. Idempotent."""
        with self.lock:
            if self._stopping:
                wait = True
            else:
                self._stopping = True
                wait = False
        if wait:
            self.stopped.wait(timeout=grace + 10.0)
            return
        print(f"agent: session {self.id}: stopping ({why})", file=sys.stderr, flush=True)
        runners = list(self.runners.values())
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.close()
        for r in runners:
            conn, r.conn = r.conn, None
            if conn is not None:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
                    conn.close()
        deadline = time.monotonic() + grace
        for r in runners:
            with contextlib.suppress(subprocess.TimeoutExpired):
                r.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            if r.proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    r.proc.kill()
                r.proc.wait()
        for r in runners:
            r.exited.wait(timeout=2.0)
        for b in self.bridges:
            b.close()
        for e in self._entities:
            with contextlib.suppress(Exception):
                e.undeclare()
        for c in self.channels:
            with contextlib.suppress(Exception):
                c.close()
        if self.env is not None:
            self.env.close()
            with contextlib.suppress(Exception):
                remove_env_files(self.env)
        with contextlib.suppress(Exception):
            self._up.undeclare()
        self.agent.forget(self)
        self.stopped.set()


class Agent:
    """A host agent: one Zenoh peer, any number of sessions."""

    def __init__(
        self,
        zsession: zenoh.Session,
        *,
        python: str = sys.executable,
        module_paths: Sequence[str] = (),
    ) -> None:
        self.zsession = zsession
        self.python = python
        self.module_paths = [os.path.abspath(p) for p in module_paths]
        self.sessions: dict[str, RemoteSession] = {}
        self.lock = threading.Lock()
        self._queryable = zsession.declare_queryable(proto.START_KEY, self._on_start)

    def _on_start(self, query: zenoh.Query) -> None:
        # Creating channels and spawning take a while: not in a Zenoh callback.
        threading.Thread(target=self._start, args=(query,), daemon=True).start()

    def _start(self, query: zenoh.Query) -> None:
        request = proto.decode(query.payload) if query.payload is not None else None
        answer: dict[str, Any]
        session: RemoteSession | None = None
        try:
            if request is None:
                raise ValueError("the start request is not a JSON object")
            session = RemoteSession(self, request)
            with self.lock:
                if session.id in self.sessions:
                    raise ValueError(f"session {session.id} already runs here")
                self.sessions[session.id] = session
            pids = session.start()
            answer = {"ok": True, "pids": pids}
            print(
                f"agent: session {session.id}: started {', '.join(pids)} as host {session.host!r}",
                file=sys.stderr,
                flush=True,
            )
        except Exception as e:  # noqa: BLE001 - any failure is the start's answer
            answer = {"ok": False, "error": f"{type(e).__name__}: {e}"}
            if session is not None:
                session.stop(0.0, "its start failed")
        with contextlib.suppress(Exception):
            query.reply(query.key_expr, proto.encode(answer))

    def forget(self, session: RemoteSession) -> None:
        with self.lock:
            if self.sessions.get(session.id) is session:
                del self.sessions[session.id]

    def close(self) -> None:
        """Stops every session (graceful within 2 s), then the Zenoh peer."""
        with contextlib.suppress(Exception):
            self._queryable.undeclare()
        with self.lock:
            sessions = list(self.sessions.values())
        threads = [
            threading.Thread(target=s.stop, args=(_STOP_GRACE_SECS, "the agent stops"))
            for s in sessions
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=_STOP_GRACE_SECS + 10.0)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m remotemedia_multiprocess.agent``; see the module documentation."""
    parser = argparse.ArgumentParser(prog="python -m remotemedia_multiprocess.agent")
    parser.add_argument(
        "--listen",
        action="append",
        required=True,
        help="Zenoh endpoint to listen on, e.g. tcp/0.0.0.0:7447 (repeatable)",
    )
    parser.add_argument(
        "--module-path", action="append", default=[], help="folder with node modules"
    )
    parser.add_argument("--python", default=sys.executable, help="the runners' interpreter")
    parser.add_argument("--lease-secs", type=float, default=None, help="Zenoh lease (s)")
    parser.add_argument("--tls-root-ca", help="CA certificate (tls/ and quic/ endpoints)")
    parser.add_argument("--tls-cert", help="this agent's certificate")
    parser.add_argument("--tls-key", help="this agent's private key")
    args = parser.parse_args(argv)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    sweep_stale()
    tls = None
    if args.tls_root_ca or args.tls_cert or args.tls_key:
        tls = TlsFiles(root_ca=args.tls_root_ca, cert=args.tls_cert, key=args.tls_key)
    try:
        zs = open_session(listen=args.listen, lease_secs=args.lease_secs, tls=tls)
    except Exception as e:  # noqa: BLE001 - zenoh raises its own types
        print(f"agent: cannot listen on {', '.join(args.listen)}: {e}", file=sys.stderr)
        return 2
    agent = Agent(zs, python=args.python, module_paths=args.module_path)
    print(
        json.dumps({"type": "listening", "endpoints": args.listen, "pid": os.getpid()}), flush=True
    )
    print(f"agent: listening on {', '.join(args.listen)}", file=sys.stderr, flush=True)
    while not stop.wait(1.0):
        pass
    agent.close()
    close_bounded(zs, timeout=2.0)
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
    # A Zenoh session may keep the process alive while its link is down.
    os._exit(0)
