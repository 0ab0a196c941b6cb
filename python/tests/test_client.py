"""End to end: a Python Session runs a pipeline through the Deno executor
(control/session_server.ts) and moves data over shared memory."""

from __future__ import annotations

import contextlib
import itertools
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from remotemedia_multiprocess import NodeProcessError, Pipeline, RuntimeData
from remotemedia_multiprocess.client import ProgressEvent, Session, SessionError, find_deno

REPO = Path(__file__).resolve().parents[2]
NODES = str(REPO / "examples" / "nodes")


def _pipeline(seconds: float = 0.6) -> Pipeline:
    return (
        Pipeline("client-test")
        .add_node("slow_loader", "asr", {"seconds": seconds, "steps": 3})
        .add_node("echo", "echo")
        .add_input("in", "asr", "in")
        .connect("asr", "out", "echo", "in")
        .add_output("out", "echo", "out")
    )


def _processes_mentioning(text: str) -> list[int]:
    """Pids whose command line contains ``text`` (spawned node runners' spec
    paths are under the session's isolation root), or forked runners (they
    keep the fork server's command line) holding the isolation's lock."""
    lock = text.rstrip("/") + ".lock"
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        forked = b"remotemedia_multiprocess._forkserver" in cmdline
        if text.encode() in cmdline or (forked and _holds(entry, lock)):
            pids.append(int(entry))
    return pids


def _holds(pid: str, path: str) -> bool:
    """Whether process ``pid`` has ``path`` open (a runner's isolation lock)."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/{pid}/fd/{fd}") == path:
                return True
    return False


def _wait_gone(text: str, seconds: float = 10.0) -> list[int]:
    deadline = time.monotonic() + seconds
    while (left := _processes_mentioning(text)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def test_find_deno() -> None:
    assert os.access(find_deno(), os.X_OK)


def test_progress_round_trip_and_close() -> None:
    events: list[ProgressEvent] = []
    session = Session(
        _pipeline(), modules=["demo_nodes"], module_paths=[NODES], on_progress=events.append
    )
    with session:
        session.initialize(timeout=60)
        assert session.ready
        # Every node went through starting -> ready, and the slow loader reported fractions.
        assert {(e["nodeId"], e["phase"]) for e in events} >= {
            ("asr", "starting"),
            ("asr", "ready"),
            ("echo", "starting"),
            ("echo", "ready"),
        }
        asr = [e for e in events if e["nodeId"] == "asr"]
        assert asr[-1]["phase"] == "ready"
        assert any(e["phase"] == "loading" and e["fraction"] == pytest.approx(1 / 3) for e in asr)
        assert all(a["elapsedMs"] <= b["elapsedMs"] for a, b in itertools.pairwise(asr))

        for i in range(20):
            session.send("in", RuntimeData.from_text(f"hello {i}", language="en"))
            reply = session.receive("out", timeout=10)
            assert reply is not None
            with reply:
                assert reply.as_text() == f"hello {i}"
        assert session.receive("out", timeout=0.1) is None

        assert session._env is not None
        root = session._env.root
        assert _processes_mentioning(root), "node runners should be running"
        proc = session.process
        assert proc is not None and proc.poll() is None
    assert not session.ready
    assert proc.returncode == 0
    assert _wait_gone(root) == []
    assert not Path(root).exists()
    with pytest.raises(SessionError, match="closed"):
        session.send("in", RuntimeData.from_text("late"))


def test_more_messages_than_capacity_do_not_stall() -> None:
    # Deno's own output subscriber is drained by the server; if it were not,
    # the echo node would block after `capacity` messages.
    config: dict[str, Any] = {"channelCapacity": 2}
    with Session(_pipeline(0.0), modules=["demo_nodes"], module_paths=[NODES], config=config) as s:
        s.initialize(timeout=60)
        for i in range(12):
            s.send("in", RuntimeData.from_text(str(i)))
            reply = s.receive("out", timeout=10)
            assert reply is not None
            with reply:
                assert reply.as_text() == str(i)


def test_init_failure_raises_with_server_message() -> None:
    bad = Pipeline().add_node("no_such_type", "x").add_input("in", "x", "in")
    events: list[ProgressEvent] = []
    s = Session(bad, modules=["demo_nodes"], module_paths=[NODES], on_progress=events.append)
    with pytest.raises(SessionError) as info:
        s.initialize(timeout=60)
    assert info.value.name == "PipelineValidationError"
    assert "no_such_type" in str(info.value)
    assert s.process is not None and s.process.poll() is not None


def test_stdin_eof_closes_everything() -> None:
    # A client that dies without close(): the server sees EOF and cleans up.
    s = Session(_pipeline(0.0), modules=["demo_nodes"], module_paths=[NODES])
    s.initialize(timeout=60)
    assert s._env is not None
    root = s._env.root
    proc = s.process
    assert proc is not None and proc.stdin is not None
    assert _processes_mentioning(root)
    proc.stdin.close()
    assert proc.wait(timeout=30) == 0
    assert _wait_gone(root) == []
    assert not Path(root).exists()
    s.close()


def test_allocated_input_goes_through_a_node_that_allocates_its_output() -> None:
    pipeline = (
        Pipeline("alloc-test")
        .add_node("inplace_gain", "g")
        .add_input("in", "g", "in")
        .add_output("out", "g", "out")
    )
    with Session(
        pipeline, modules=["exec_nodes"], module_paths=[str(REPO / "tests" / "nodes")]
    ) as session:
        session.initialize(timeout=60)
        like = RuntimeData.audio(np.empty((480, 1), np.float32), 16000)
        for k in range(3):
            rd = session.allocate("in", like)
            rd.payload[:, 0] = np.arange(480, dtype=np.float32) + k
            session.send("in", rd)
            with session.receive("out", timeout=10) as out:
                assert out is not None
                expected = 2 * (np.arange(480, dtype=np.float32) + k)
                assert np.array_equal(out.payload[:, 0], expected)


def test_a_node_crash_after_ready_fails_receive_and_send() -> None:
    pipeline = (
        Pipeline("crash-test")
        .add_node("crasher", "c")
        .add_input("in", "c", "in")
        .add_output("out", "c", "out")
    )
    session = Session(
        pipeline, modules=["exec_nodes"], module_paths=[str(REPO / "tests" / "nodes")]
    )
    try:
        session.initialize(timeout=60)
        session.send("in", RuntimeData.text("hi"))
        with session.receive("out", timeout=10) as rd:
            assert rd.text == "hi"
        session.send("in", RuntimeData.text("exit"))  # os._exit(3) in the node
        started = time.monotonic()
        with pytest.raises(SessionError) as info:
            session.receive("out", timeout=30)
        assert time.monotonic() - started < 10, "receive() waited for its timeout"
        assert info.value.name == "ProcessCrashError"
        assert 'Node "c"' in str(info.value) and "code 3" in str(info.value)
        assert session.failure is info.value
        with pytest.raises(SessionError):
            session.send("in", RuntimeData.text("again"))
    finally:
        session.close()


def _crasher() -> Pipeline:
    return (
        Pipeline("error-test")
        .add_node("crasher", "c")
        .add_input("in", "c", "in")
        .add_output("out", "c", "out")
    )


def _wait_for(predicate: Any, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.02)
    return bool(predicate())


def test_a_node_error_reaches_on_error_and_errors_and_the_node_goes_on() -> None:
    # Issue 7, defect 2: the client never heard of process() errors.
    seen: list[NodeProcessError] = []
    with Session(
        _crasher(),
        modules=["exec_nodes"],
        module_paths=[str(REPO / "tests" / "nodes")],
        on_error=seen.append,
    ) as session:
        session.initialize(timeout=60)
        session.send("in", RuntimeData.text("raise"))  # ValueError in process()
        assert session.receive("out", timeout=0.5) is None  # timeout: no output for it
        assert _wait_for(lambda: len(seen) == 1), "on_error was not called"
        error = seen[0]
        assert isinstance(error, NodeProcessError)
        assert error.node_id == "c"
        assert str(error) == "ValueError: bad input in process"
        assert "Traceback (most recent call last)" in error.traceback
        assert "exec_nodes.py" in error.traceback
        assert session.errors == [error]
        assert session.failure is None
        session.send("in", RuntimeData.text("still here"))
        with session.receive("out", timeout=10) as rd:
            assert rd is not None and rd.text == "still here"


_UNHEARD = """
import sys, time
from remotemedia_multiprocess import NodeProcessError, Pipeline, RuntimeData
from remotemedia_multiprocess.client import Session
p = Pipeline().add_node("crasher", "c").add_input("in", "c", "in").add_output("out", "c", "out")
with Session(p, modules=["exec_nodes"], module_paths=[sys.argv[1]]) as s:
    s.initialize(timeout=60)
    s.send("in", RuntimeData.text("raise"))
    deadline = time.monotonic() + 10
    while not s.errors and time.monotonic() < deadline:
        time.sleep(0.02)
    print(len(s.errors), flush=True)
"""


def test_an_unheard_node_error_is_printed_on_stderr() -> None:
    # No on_error and no logging configured: Python's last-resort handler
    # prints it, as an uncaught exception would be.
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "python"), env.get("PYTHONPATH", "")])
    result = subprocess.run(
        [sys.executable, "-c", _UNHEARD, str(REPO / "tests" / "nodes")],
        capture_output=True,
        env=env,
        timeout=120,
        check=False,
    )
    stderr = result.stderr.decode(errors="replace")
    assert result.returncode == 0, stderr
    assert result.stdout.strip() == b"1"
    assert "Node 'c': process() raised ValueError: bad input in process" in stderr
    assert "Traceback (most recent call last)" in stderr
    assert 'exec_nodes.py", line' in stderr


def test_an_on_error_that_raises_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    def broken(_error: NodeProcessError) -> None:
        raise RuntimeError("on_error is broken")

    with Session(
        _crasher(),
        modules=["exec_nodes"],
        module_paths=[str(REPO / "tests" / "nodes")],
        on_error=broken,
    ) as session:
        session.initialize(timeout=60)
        session.send("in", RuntimeData.text("raise"))
        assert _wait_for(lambda: bool(session.errors))
        assert _wait_for(lambda: any("on_error raised" in r.message for r in caplog.records))
        session.send("in", RuntimeData.text("ok"))  # the reader thread went on
        with session.receive("out", timeout=10) as rd:
            assert rd is not None and rd.text == "ok"


def test_close_wakes_a_receive_blocked_in_another_thread() -> None:
    pipeline = (
        Pipeline("close-wake")
        .add_node("crasher", "c")
        .add_input("in", "c", "in")
        .add_output("out", "c", "out")
    )
    session = Session(
        pipeline, modules=["exec_nodes"], module_paths=[str(REPO / "tests" / "nodes")]
    )
    outcome: list[SessionError | RuntimeData | None] = []
    try:
        session.initialize(timeout=60)

        def blocked() -> None:
            try:
                outcome.append(session.receive("out", timeout=None))
            except SessionError as e:  # recorded for the assertion below
                outcome.append(e)

        thread = threading.Thread(target=blocked)
        thread.start()
        time.sleep(0.3)  # the thread is now waiting on "out"
        assert thread.is_alive() and outcome == []
        started = time.monotonic()
        session.close()
        thread.join(timeout=5)
        assert not thread.is_alive(), "receive() still blocked after close()"
        assert time.monotonic() - started < 5
        assert len(outcome) == 1 and isinstance(outcome[0], SessionError), outcome
        assert outcome[0].name == "SessionClosedError"
    finally:
        session.close()
