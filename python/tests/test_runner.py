"""The node runner, as real processes over real iceoryx2 channels.

Each test plays the executor: it serves the control socket, creates the
channels, writes a spec file and starts ``python -m
remotemedia_multiprocess.runner`` in its own isolated iceoryx2 environment.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from remotemedia_multiprocess._iox import IoxEnv
from remotemedia_multiprocess.channel import Channel, Subscriber
from remotemedia_multiprocess.runtime_data import RuntimeData

PYTHON_DIR = Path(__file__).resolve().parents[1]
NODES_DIR = Path(__file__).resolve().parent / "nodes"
EXAMPLES_DIR = PYTHON_DIR.parent / "examples" / "nodes"


class ControlServer:
    """The executor's end of one runner's control socket."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(path)
        self.listener.listen(1)
        self.messages: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.conn: socket.socket | None = None
        self.connected = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        self.conn = conn
        self.connected.set()
        pending = b""
        while True:
            try:
                chunk = conn.recv(65536)
            except OSError:
                break
            if not chunk:
                break
            pending += chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                self.messages.put(json.loads(line))
        self.messages.put(None)

    def next(self, timeout: float = 10.0) -> dict[str, Any] | None:
        return self.messages.get(timeout=timeout)

    def expect(self, kind: str, timeout: float = 10.0) -> dict[str, Any]:
        """The next message, which must have type ``kind`` (status skipped)."""
        deadline = time.monotonic() + timeout
        while True:
            m = self.next(max(0.01, deadline - time.monotonic()))
            assert m is not None, f"control socket closed while waiting for {kind}"
            if m["type"] == "status" and kind != "status":
                continue
            assert m["type"] == kind, m
            return m

    def send(self, message: dict[str, Any]) -> None:
        assert self.connected.wait(10)
        assert self.conn is not None
        self.conn.sendall((json.dumps(message) + "\n").encode())

    def close(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()
        self.listener.close()


class Runner:
    """A runner subprocess whose stdout and stderr are read all the time."""

    def __init__(self, spec_path: Path, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "remotemedia_multiprocess.runner",
                "--spec",
                str(spec_path),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._threads = [
            threading.Thread(target=self._pump, args=(self.proc.stdout, self.stdout), daemon=True),
            threading.Thread(target=self._pump, args=(self.proc.stderr, self.stderr), daemon=True),
        ]
        for t in self._threads:
            t.start()

    @staticmethod
    def _pump(stream: Any, lines: list[str]) -> None:
        for raw in stream:
            lines.append(raw.decode(errors="replace").rstrip("\n"))

    def wait(self, timeout: float = 10.0) -> int:
        code = self.proc.wait(timeout)
        for t in self._threads:
            t.join(5)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


class Harness:
    """Channels, a control socket and a spec for one node."""

    def __init__(self, tmp: Path, env: IoxEnv) -> None:
        self.env = env
        self.prefix = self.env.prefix
        self.root = self.env.root
        self.tmp = tmp
        self.control = ControlServer(f"{self.root}control.sock")
        self.channels: dict[str, Channel] = {}
        self.runners: list[Runner] = []

    def channel(self, name: str, max_subscribers: int = 8) -> Channel:
        if name not in self.channels:
            self.channels[name] = Channel.open_or_create(
                self.env, name, capacity=8, max_subscribers=max_subscribers
            )
        return self.channels[name]

    def start(
        self,
        node_type: str,
        *,
        node_id: str = "n1",
        config: dict[str, Any] | None = None,
        inputs: dict[str, list[str]] | None = None,
        outputs: dict[str, str] | None = None,
        modules: tuple[str, ...] = ("runner_test_nodes",),
        module_paths: tuple[Path, ...] = (NODES_DIR,),
        spec_fields: dict[str, Any] | None = None,
    ) -> Runner:
        inputs = {"in": ["in.x"]} if inputs is None else inputs
        outputs = {"out": f"{node_id}.out"} if outputs is None else outputs
        for names in inputs.values():
            for name in names:
                self.channel(name)
        for name in outputs.values():
            self.channel(name)
        spec = {
            "version": 1,
            "node_id": node_id,
            "node_type": node_type,
            "config": config or {},
            "module_paths": [str(p) for p in module_paths],
            "modules": list(modules),
            "session_id": secrets.token_hex(16),
            "iox_prefix": self.prefix,
            "iox_root": self.root,
            "control_socket": self.control.path,
            "inputs": inputs,
            "outputs": outputs,
            "channel_capacity": 8,
            "max_payload_bytes": 64 * 1024 * 1024 + 128,
            "publish_timeout_secs": 5,
            **(spec_fields or {}),
        }
        spec_path = self.tmp / f"spec-{node_id}.json"
        spec_path.write_text(json.dumps(spec))
        runner = Runner(spec_path, self.child_env())
        self.runners.append(runner)
        return runner

    def child_env(self) -> dict[str, str]:
        env = dict(os.environ)
        path = [str(PYTHON_DIR), env.get("PYTHONPATH", "")]
        env["PYTHONPATH"] = os.pathsep.join(path).rstrip(os.pathsep)
        env.update(self.env.env_vars())
        return env

    def ready(self, runner: Runner) -> None:
        hello = self.control.expect("hello")
        assert hello["pid"] == runner.proc.pid
        self.control.expect("ready")

    def close(self) -> None:
        for r in self.runners:
            r.kill()
        self.control.close()
        for ch in self.channels.values():
            ch.close()


@pytest.fixture
def harness(tmp_path: Path, iox_env: IoxEnv) -> Iterator[Harness]:
    """Plays the executor in the isolated environment of conftest's iox_env."""
    h = Harness(tmp_path, iox_env)
    try:
        yield h
    finally:
        h.close()


def receive_text(sub: Subscriber, timeout: float = 10.0) -> str:
    rd = sub.receive(timeout=timeout)
    assert rd is not None, "no output within the timeout"
    try:
        return rd.as_text()
    finally:
        rd.release()


def test_echo_round_trip(harness: Harness) -> None:
    out = harness.channel("n1.out").subscriber()
    pub = harness.channel("in.x").publisher()
    runner = harness.start("t_echo")
    harness.ready(runner)
    for i in range(20):
        pub.publish(RuntimeData.text(f"hello {i}"), timeout=5)
        assert receive_text(out) == f"hello {i}"
    payload = bytes(range(256)) * 4096
    pub.publish(RuntimeData.binary(payload), timeout=5)
    rd = out.receive(timeout=10)
    assert rd is not None
    assert bytes(rd.payload) == payload
    rd.release()
    harness.control.send({"type": "stats", "id": 7})
    stats = harness.control.expect("stats")
    assert stats["id"] == 7
    assert stats["received"] == 21
    assert stats["sent"] == 21
    assert stats["bytes_in"] >= len(payload)
    assert stats["bytes_out"] >= len(payload)


def test_progress_in_order_before_ready(harness: Harness) -> None:
    runner = harness.start("t_progress")
    assert harness.control.expect("hello")["node_id"] == "n1"
    seen = []
    while True:
        m = harness.control.next()
        assert m is not None
        if m["type"] == "ready":
            break
        assert m["type"] == "progress", m
        seen.append((m["fraction"], m["message"]))
    assert seen == [
        (0.25, "step 1"),
        (0.5, "step 2"),
        (0.75, "step 3"),
        (1.0, "step 4"),
        (None, "finishing"),
    ]
    harness.control.send({"type": "shutdown"})
    harness.control.expect("bye")
    assert runner.wait() == 0


def test_process_error_reports_traceback_and_keeps_running(harness: Harness) -> None:
    out = harness.channel("n1.out").subscriber()
    pub = harness.channel("in.x").publisher()
    runner = harness.start("t_flaky")
    harness.ready(runner)
    pub.publish(RuntimeData.text("before"), timeout=5)
    assert receive_text(out) == "BEFORE"
    pub.publish(RuntimeData.text("boom"), timeout=5)
    err = harness.control.expect("process_error")
    assert "exploded on purpose" in err["error"]
    assert "RuntimeError" in err["error"]
    assert "Traceback (most recent call last)" in err["traceback"]
    assert "runner_test_nodes.py" in err["traceback"]
    # Only the node's frames: the runner's own are noise to the user.
    assert "runner.py" not in err["traceback"]
    for word in ("after", "again"):
        pub.publish(RuntimeData.text(word), timeout=5)
        assert receive_text(out) == word.upper()
    assert runner.proc.poll() is None


def test_invalid_message_is_reported_and_skipped(harness: Harness) -> None:
    out = harness.channel("n1.out").subscriber()
    pub = harness.channel("in.x").publisher()
    runner = harness.start("t_echo")
    harness.ready(runner)
    pub.publish_bytes(b"XXXX" + bytes(200), timeout=5)
    err = harness.control.expect("process_error")
    assert "WireFormatError" in err["error"]
    assert "bad_magic" in err["error"]
    assert "'in'" in err["error"]
    pub.publish(RuntimeData.text("still alive"), timeout=5)
    assert receive_text(out) == "still alive"
    assert runner.proc.poll() is None


def test_init_error_exits_1(harness: Harness) -> None:
    pub = harness.channel("in.x").publisher()
    runner = harness.start("t_init_fail")
    harness.control.expect("hello")
    assert harness.control.expect("progress")["message"] == "about to fail"
    err = harness.control.expect("init_error")
    assert "model file missing on purpose" in err["error"]
    assert "ValueError" in err["traceback"]
    assert "initialize" in err["traceback"]
    assert runner.wait() == 1
    # The runner closed its subscriber before exiting: it holds no credits.
    for i in range(20):
        assert pub.try_publish(RuntimeData.text(str(i)))


def test_unknown_type_and_import_failure_are_init_errors(harness: Harness) -> None:
    runner = harness.start("no_such_type", modules=("runner_test_nodes", "broken_module"))
    harness.control.expect("hello")
    err = harness.control.expect("init_error")
    assert "no_such_type" in err["error"]
    assert "broken_module" in err["error"]
    assert "broken on purpose" in err["error"]
    assert runner.wait() == 1


def test_a_module_failing_to_import_fails_the_node_even_when_its_type_is_found(
    harness: Harness,
) -> None:
    # Issue 7, defect 3: the failure used to be ignored once t_echo was found.
    runner = harness.start("t_echo", modules=("runner_test_nodes", "half_broken_module"))
    harness.control.expect("hello")
    err = harness.control.expect("init_error")
    assert err["error"].startswith('Cannot import node module "half_broken_module": RuntimeError')
    assert "half-way through the import on purpose" in err["error"]
    assert f"(at {NODES_DIR / 'half_broken_module.py'}:12)" in err["error"]
    assert f"Module folders searched: {NODES_DIR}, then the Python path." in err["error"]
    assert "half_broken_module.py" in err["traceback"]
    assert "runner.py" not in err["traceback"]
    assert runner.wait() == 1
    assert any("half-way through the import" in line for line in runner.stderr)


def test_unknown_type_names_the_modules_and_the_folders(harness: Harness, tmp_path: Path) -> None:
    nowhere = tmp_path / "no_such_folder"
    runner = harness.start("t_echo", modules=(), module_paths=(NODES_DIR, nowhere))
    harness.control.expect("hello")
    err = harness.control.expect("init_error")
    assert err["error"] == (
        "Unknown node type 't_echo' (registered: none). No node modules were given: "
        "list the modules that register your node types in `modules`. "
        f"Module folders searched: {NODES_DIR}, {nowhere} (does not exist), then the Python path."
    )
    assert runner.wait() == 1


def test_a_module_missing_from_the_folders_is_named_with_them(
    harness: Harness, tmp_path: Path
) -> None:
    nowhere = tmp_path / "nodes_typo"
    runner = harness.start("t_echo", modules=("runner_test_nodes",), module_paths=(nowhere,))
    harness.control.expect("hello")
    err = harness.control.expect("init_error")
    assert err["error"] == (
        'Cannot import node module "runner_test_nodes": ModuleNotFoundError: No module named '
        "'runner_test_nodes' (not found in the module folders or on the Python path)\n"
        f"Module folders searched: {nowhere} (does not exist), then the Python path.\n"
        "Node type 't_echo' is not registered."
    )
    assert runner.wait() == 1


def test_an_unreadable_spec_exits_1() -> None:
    # Issue 7, defect 5: main()'s 1 was dropped and the runner exited 0.
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(PYTHON_DIR), env.get("PYTHONPATH", "")])
    missing = "/nonexistent/rmp-spec.json"
    result = subprocess.run(
        [sys.executable, "-m", "remotemedia_multiprocess.runner", "--spec", missing],
        capture_output=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert f"Cannot read the runner spec {missing}: ".encode() in result.stderr


def test_a_spec_of_another_version_is_an_init_error(harness: Harness) -> None:
    runner = harness.start("t_echo", spec_fields={"version": 2})
    assert harness.control.expect("hello")["node_id"] == "n1"
    err = harness.control.expect("init_error")
    assert "Cannot read the runner spec" in err["error"]
    assert "unsupported runner spec version 2" in err["error"]
    assert runner.wait() == 1


def test_shutdown_runs_cleanup_and_says_bye(harness: Harness, tmp_path: Path) -> None:
    marker = tmp_path / "cleanup.txt"
    runner = harness.start("t_echo", config={"cleanup_marker": str(marker)})
    harness.ready(runner)
    harness.control.send({"type": "shutdown"})
    harness.control.expect("bye")
    assert runner.wait() == 0
    assert marker.read_text() == "cleaned up"


def test_control_eof_exits_within_2s(harness: Harness, tmp_path: Path) -> None:
    marker = tmp_path / "cleanup.txt"
    runner = harness.start("t_echo", config={"cleanup_marker": str(marker)})
    harness.ready(runner)
    start = time.monotonic()
    harness.control.close()
    assert runner.wait(timeout=5) == 0
    assert time.monotonic() - start < 2.0
    assert marker.read_text() == "cleaned up"


def test_control_eof_exits_within_2s_while_process_blocks(harness: Harness) -> None:
    pub = harness.channel("in.x").publisher()
    runner = harness.start("t_slow", config={"seconds": 30})
    harness.ready(runner)
    pub.publish(RuntimeData.text("x"), timeout=5)
    assert harness.control.expect("status")["state"] == "processing"
    start = time.monotonic()
    harness.control.close()
    runner.wait(timeout=5)
    assert time.monotonic() - start < 2.0


PARENT = """
import json, socket, subprocess, sys
listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
listener.bind(sys.argv[2])
listener.listen(1)
# Like the Deno executor: the runner's stdout and stderr are pipes to us.
child = subprocess.Popen(
    [sys.executable, "-m", "remotemedia_multiprocess.runner", "--spec", sys.argv[1]],
    stdout=subprocess.PIPE, stderr=subprocess.PIPE,
)
conn, _ = listener.accept()
f = conn.makefile("rb")
while json.loads(f.readline())["type"] != "ready":
    pass
print(child.pid, flush=True)
while True:
    conn.recv(1)
"""


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


def test_runner_exits_when_its_parent_is_killed_9(harness: Harness, tmp_path: Path) -> None:
    harness.start("t_echo")  # writes the spec; this first runner is not used
    harness.runners.pop().kill()
    sock = f"{harness.root}parent.sock"
    spec_path = tmp_path / "spec-n1.json"
    spec = json.loads(spec_path.read_text())
    spec["control_socket"] = sock
    spec_path.write_text(json.dumps(spec))
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, str(spec_path), sock],
        stdout=subprocess.PIPE,
        env=harness.child_env(),
    )
    try:
        assert parent.stdout is not None
        runner_pid = int(parent.stdout.readline())
        assert not _gone(runner_pid)
        parent.kill()
        parent.wait()
        start = time.monotonic()
        while not _gone(runner_pid) and time.monotonic() - start < 5:
            time.sleep(0.01)
        assert _gone(runner_pid)
        assert time.monotonic() - start < 2.0
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()


def test_prints_reach_stdout_without_disturbing_protocol(harness: Harness) -> None:
    out = harness.channel("n1.out").subscriber()
    pub = harness.channel("in.x").publisher()
    runner = harness.start("t_printer")
    harness.control.expect("hello")
    m = harness.control.next()
    assert m == {"type": "ready"}
    pub.publish(RuntimeData.text("abc"), timeout=5)
    assert receive_text(out) == "abc"
    deadline = time.monotonic() + 5
    while "processing abc" not in runner.stdout and time.monotonic() < deadline:
        time.sleep(0.01)
    # Arrives while the runner is still alive: line-buffered, not at exit.
    assert "processing abc" in runner.stdout
    harness.control.send({"type": "shutdown"})
    harness.control.expect("bye")
    assert runner.wait() == 0
    assert runner.stdout[:2] == ['{"type":"ready"}', "printed during initialize"]
    assert "no newline yet ... now" in runner.stdout
    assert "to stderr" in runner.stderr
    assert any("logged during initialize" in line for line in runner.stderr)


def test_async_generator_streams_outputs(harness: Harness) -> None:
    out = harness.channel("n1.out").subscriber()
    pub = harness.channel("in.x").publisher()
    runner = harness.start("t_stream", config={"n": 12})
    harness.ready(runner)
    pub.publish(RuntimeData.text("tts"), timeout=5)
    # More outputs than the channel capacity: each chunk is published as
    # soon as it is yielded, with backpressure in between.
    assert [receive_text(out) for _ in range(12)] == [f"tts-{i}" for i in range(12)]


def test_sync_generator_with_ports(harness: Harness) -> None:
    out = harness.channel("n1.out").subscriber()
    side = harness.channel("n1.side").subscriber()
    pub = harness.channel("in.x").publisher()
    runner = harness.start("t_sync_stream", outputs={"out": "n1.out", "side": "n1.side"})
    harness.ready(runner)
    pub.publish(RuntimeData.text("s"), timeout=5)
    assert [receive_text(out), receive_text(out)] == ["s-a", "s-b"]
    assert receive_text(side) == "s-side"


def test_fan_in_sets_port(harness: Harness) -> None:
    # Channels sized to their readers (not the default 8): the runner opens them.
    out = harness.channel("n1.out", max_subscribers=1).subscriber()
    left = harness.channel("in.l", max_subscribers=1).publisher()
    right = harness.channel("in.r", max_subscribers=2).publisher()
    runner = harness.start("t_two_inputs", inputs={"left": ["in.l"], "right": ["in.r"]})
    harness.ready(runner)
    left.publish(RuntimeData.text("1"), timeout=5)
    assert receive_text(out) == "left:1"
    right.publish(RuntimeData.text("2"), timeout=5)
    assert receive_text(out) == "right:2"


def test_background_task_emits_while_idle(harness: Harness) -> None:
    out = harness.channel("n1.out").subscriber()
    runner = harness.start("t_ticker", inputs={}, config={"n": 5})
    harness.ready(runner)
    assert [receive_text(out) for _ in range(5)] == [f"tick {i}" for i in range(5)]


def test_sigterm_stops_gracefully(harness: Harness, tmp_path: Path) -> None:
    marker = tmp_path / "cleanup.txt"
    runner = harness.start("t_echo", config={"cleanup_marker": str(marker)})
    harness.ready(runner)
    runner.proc.terminate()
    harness.control.expect("bye")
    assert runner.wait() == 0
    assert marker.read_text() == "cleaned up"


def test_short_calls_send_no_status(harness: Harness) -> None:
    out = harness.channel("n1.out").subscriber()
    pub = harness.channel("in.x").publisher()
    runner = harness.start("t_echo")
    harness.ready(runner)
    # A burst of calls far shorter than the status delay: no control message
    # on the hot path at all.
    for i in range(50):
        pub.publish(RuntimeData.text(str(i)), timeout=5)
        assert receive_text(out) == str(i)
    harness.control.send({"type": "stats", "id": 1})
    assert harness.control.next()["type"] == "stats"


def test_long_call_shows_as_processing_then_ready(harness: Harness) -> None:
    out = harness.channel("n1.out").subscriber()
    pub = harness.channel("in.x").publisher()
    runner = harness.start("t_slow")
    harness.ready(runner)
    # Idle first: the status thread sleeps and the call itself wakes it.
    time.sleep(1.2)
    start = time.monotonic()
    pub.publish(RuntimeData.text("0.4"), timeout=5)
    assert harness.control.expect("status")["state"] == "processing"
    assert time.monotonic() - start < 0.3
    assert harness.control.expect("status")["state"] == "ready"
    assert receive_text(out) == "0.4"


DEMO: dict[str, Any] = {"modules": ("demo_nodes",), "module_paths": (EXAMPLES_DIR,)}


def test_demo_chunker_streams_text_and_audio(harness: Harness) -> None:
    out = harness.channel("c.out").subscriber()
    pub = harness.channel("in.x").publisher()
    runner = harness.start("chunker", node_id="c", config={"chunk_ms": 20}, **DEMO)
    harness.ready(runner)
    pub.publish(RuntimeData.text("one two three", language="en"), timeout=5)
    assert [receive_text(out) for _ in range(3)] == ["one", "two", "three"]
    audio = np.arange(1600 * 2, dtype=np.float32).reshape(1600, 2)  # 100 ms, stereo
    pub.publish(RuntimeData.audio(audio, 16000), timeout=5)
    chunks = []
    for _ in range(5):
        rd = out.receive(timeout=10)
        assert rd is not None
        assert (rd.kind, rd.sample_rate, rd.channels) == ("audio", 16000, 2)
        chunks.append(np.array(rd.payload))
        rd.release()
    assert [c.shape for c in chunks] == [(320, 2)] * 5
    assert np.array_equal(np.concatenate(chunks), audio)


def test_demo_slow_loader_reports_progress(harness: Harness) -> None:
    runner = harness.start("slow_loader", config={"seconds": 0.2, "steps": 4}, **DEMO)
    harness.control.expect("hello")
    fractions = []
    while (m := harness.control.next()) is not None and m["type"] == "progress":
        fractions.append(m["fraction"])
    assert m == {"type": "ready"}
    assert fractions == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert runner.proc.poll() is None


def test_demo_cpu_burn_passes_through(harness: Harness) -> None:
    out = harness.channel("n1.out").subscriber()
    pub = harness.channel("in.x").publisher()
    runner = harness.start("cpu_burn", config={"ms": 30}, **DEMO)
    harness.ready(runner)
    start = time.monotonic()
    pub.publish(RuntimeData.binary(b"frame"), timeout=5)
    rd = out.receive(timeout=10)
    assert rd is not None
    assert rd.as_bytes() == b"frame"
    rd.release()
    assert time.monotonic() - start >= 0.03


def test_long_process_right_after_a_short_one_is_reported(harness: Harness) -> None:
    out = harness.channel("n1.out").subscriber()
    pub = harness.channel("in.x").publisher()
    runner = harness.start("t_slow")
    harness.ready(runner)
    pub.publish(RuntimeData.text("0"), timeout=5)
    pub.publish(RuntimeData.text("0.4"), timeout=5)
    start = time.monotonic()
    # The short call shows nothing; the long one shows while it still runs.
    assert harness.control.expect("status")["state"] == "processing"
    assert time.monotonic() - start < 0.3
    assert harness.control.expect("status")["state"] == "ready"
    assert [receive_text(out), receive_text(out)] == ["0", "0.4"]


def test_list_types() -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(PYTHON_DIR), env.get("PYTHONPATH", "")])
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "remotemedia_multiprocess.runner",
            "--list-types",
            "--module-path",
            str(NODES_DIR),
            "--module",
            "runner_test_nodes",
            "--module",
            "broken_module",
            "--module",
            "noisy_module",
            "--module-path",
            str(EXAMPLES_DIR),
            "--module",
            "demo_nodes",
        ],
        capture_output=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    listing = json.loads(result.stdout)
    types = listing["types"]
    assert types["t_echo"] == {"inputs": ["in"], "outputs": ["out"]}
    assert types["t_two_inputs"] == {"inputs": ["left", "right"], "outputs": ["out"]}
    assert types["t_noisy"] == {"inputs": ["in"], "outputs": ["out"]}
    assert b"noisy module imported" in result.stderr
    assert b"raw fd 1 write during import" in result.stderr
    assert types["t_sync_stream"] == {"inputs": ["in"], "outputs": ["out", "side"]}
    for name in ("echo", "cpu_burn", "slow_loader", "chunker"):
        assert name in types
    assert listing["errors"] == [
        {
            "module": "broken_module",
            "error": "ImportError: this module is broken on purpose",
            "not_found": False,
            "location": f"{NODES_DIR / 'broken_module.py'}:3",
            "traceback": listing["errors"][0]["traceback"],
        }
    ]
    assert "broken_module.py" in listing["errors"][0]["traceback"]
    assert listing["module_paths"] == [str(NODES_DIR), str(EXAMPLES_DIR)]
    assert listing["missing_paths"] == []


def _list_types(*args: str) -> dict[str, Any]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(PYTHON_DIR), env.get("PYTHONPATH", "")])
    result = subprocess.run(
        [sys.executable, "-m", "remotemedia_multiprocess.runner", "--list-types", *args],
        capture_output=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    listing: dict[str, Any] = json.loads(result.stdout)
    return listing


def test_list_types_tells_a_missing_module_from_a_missing_dependency(tmp_path: Path) -> None:
    # Issue 7, defect 3: name the module, the error and the folders searched.
    nowhere = tmp_path / "nodez"
    listing = _list_types(
        "--module-path",
        str(NODES_DIR),
        "--module-path",
        str(nowhere),
        "--module",
        "no_such_node_module",
        "--module",
        "missing_dependency_module",
        "--module",
        "runner_test_nodes",
    )
    assert "t_echo" in listing["types"]
    assert listing["module_paths"] == [str(NODES_DIR), str(nowhere)]
    assert listing["missing_paths"] == [str(nowhere)]
    missing, dependency = listing["errors"]
    assert missing == {
        "module": "no_such_node_module",
        "error": "ModuleNotFoundError: No module named 'no_such_node_module'",
        "not_found": True,
        "location": None,
        "traceback": "",
    }
    assert dependency["module"] == "missing_dependency_module"
    assert dependency["error"] == (
        "ModuleNotFoundError: No module named 'remotemedia_no_such_dependency'"
    )
    assert dependency["not_found"] is False
    assert dependency["location"] == f"{NODES_DIR / 'missing_dependency_module.py'}:3"


def test_describe_import_errors_lists_every_module() -> None:
    # Imported here so that every other test also runs against an old runner.
    from remotemedia_multiprocess.runner import describe_import_errors

    listing = _list_types(
        "--module-path", str(NODES_DIR), "--module", "broken_module", "--module", "nope_module"
    )
    message = describe_import_errors(listing["errors"], listing["module_paths"], [])
    assert message == (
        'Cannot import node modules "broken_module", "nope_module":\n'
        "  broken_module: ImportError: this module is broken on purpose "
        f"(at {NODES_DIR / 'broken_module.py'}:3)\n"
        "  nope_module: ModuleNotFoundError: No module named 'nope_module' "
        "(not found in the module folders or on the Python path)\n"
        f"Module folders searched: {NODES_DIR}, then the Python path."
    )


def test_node_spec_fields_match_contract() -> None:
    import dataclasses

    from remotemedia_multiprocess._contracts import RUNNER_SPEC_DEFAULTS, RunnerSpecDict
    from remotemedia_multiprocess.runner import NodeSpec

    fields = {f.name: f for f in dataclasses.fields(NodeSpec)}
    assert set(fields) == set(RunnerSpecDict.__annotations__)
    # Every contract default is a dataclass default (max_subscribers is the
    # runner's opening limit, documented in runner.py).
    for name, value in RUNNER_SPEC_DEFAULTS.items():
        if name != "max_subscribers":
            assert fields[name].default == value, name


def test_executor_messages_are_parsed() -> None:
    from remotemedia_multiprocess._control import parse_executor_message

    assert parse_executor_message({"type": "shutdown", "x": 1}) == {"type": "shutdown"}
    assert parse_executor_message({"type": "stats", "id": 3}) == {"type": "stats", "id": 3}
    assert parse_executor_message({"type": "stats"}) is None
    assert parse_executor_message({"type": "nope"}) is None
    assert parse_executor_message([1]) is None
