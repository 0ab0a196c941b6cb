"""Run a pipeline from Python through the Deno executor.

:class:`Session` starts the Deno session server (the copy the wheel carries, see
:func:`find_session_server`) as a child
process and drives it with JSON lines (control plane: create, progress,
ready, close). Data does not go through Deno's pipes: the client publishes to
the pipeline's input channels and subscribes to its output channels directly
over iceoryx2 shared memory, in the session's isolation. When the session
fails after it was ready (a node crashed), :meth:`Session.receive` and
:meth:`Session.send` raise :class:`SessionError` (a blocked ``receive`` is woken).

A node's ``process()`` raising does not fail the session (the node keeps
running), so it is not raised either; it is never silent: each one is a
:class:`NodeProcessError` passed to ``on_error``, or, without ``on_error``,
logged on the ``remotemedia.client`` logger at ERROR level with the node id,
message and traceback (printed on stderr when logging is not configured), and
the latest ones are kept in :attr:`Session.errors`.

Example:
    >>> from remotemedia_multiprocess import Pipeline, RuntimeData
    >>> p = Pipeline().add_node("echo", "e").add_input("in", "e", "in").add_output("out", "e", "out")
    >>> with Session(p, modules=["demo_nodes"], module_paths=["examples/nodes"]) as s:  # doctest: +SKIP
    ...     s.initialize(on_progress=print)
    ...     s.send("in", RuntimeData.from_text("hi"))
    ...     print(s.receive("out", timeout=5).as_text())
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import os
import queue
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import IO, Any, Self, TypedDict, TypeVar

import iceoryx2 as iox2

from ._iox import IoxEnv
from ._native_lib import bundled_session_server
from .channel import INTERNAL_WAKE, Channel, Publisher, Subscriber
from .errors import MultiprocessError, NodeProcessError
from .pipeline import Pipeline
from .runtime_data import RuntimeData

__all__ = [
    "SERVER_ENV",
    "NodeProcessError",
    "ProgressEvent",
    "Session",
    "SessionError",
    "find_deno",
    "find_session_server",
]

_INTERNAL_WAKE = iox2.EventId.new(INTERNAL_WAKE)
_P = TypeVar("_P", Publisher, Subscriber)
_CHECKOUT = Path(__file__).resolve().parents[2]
SERVER_ENV = "RMP_SESSION_SERVER"
"""The environment variable naming another session server: a path (a checkout's
``control/session_server.ts``) or a specifier Deno runs
(``jsr:@remotemedia/multiprocess@0.1.0/control/session_server.ts``, an https URL)."""
_CLOSE_TIMEOUT = 30.0
_MAX_ERRORS = 1000
"""How many node errors :attr:`Session.errors` keeps (the latest): a node that
fails on every frame must not grow the client without bound."""

log = logging.getLogger("remotemedia.client")


class ProgressEvent(TypedDict):
    """One start-up progress event of a node (the Deno ``ProgressEvent``)."""

    nodeId: str
    phase: str
    fraction: float | None
    message: str
    elapsedMs: int
    heartbeat: bool


class SessionError(MultiprocessError):
    """The Deno session failed or the session server misbehaved.

    Attributes:
        name: The Deno error class name (``NodeInitError``,
            ``PipelineValidationError``, ``ProcessCrashError``...), or
            ``SessionServerError`` for a server problem.
    """

    def __init__(self, message: str, *, name: str = "SessionServerError") -> None:
        super().__init__(f"{name}: {message}")
        self.name = name


_WAKE_BOUND = 2.0
"""Seconds close() waits for blocked receive() calls to leave."""


def _port(ports: Mapping[str, _P], kind: str, name: str) -> _P:
    """The port named ``name``, or a KeyError listing the names."""
    try:
        return ports[name]
    except KeyError:
        raise KeyError(f"pipeline has no {kind} {name!r} ({kind}s: {list(ports)})") from None


def find_deno() -> str:
    """The deno executable: ``$DENO``, else ``deno`` on PATH, else ``~/.deno/bin/deno``.

    Raises:
        SessionError: When none exists.
    """
    env = os.environ.get("DENO")
    if env:
        if shutil.which(env) is None:
            raise SessionError(f"DENO={env!r} is not an executable")
        return env
    found = shutil.which("deno")
    if found:
        return found
    home = Path.home() / ".deno" / "bin" / "deno"
    if home.is_file() and os.access(home, os.X_OK):
        return str(home)
    raise SessionError("deno not found: install Deno or set DENO to its path")


def find_session_server(explicit: str | os.PathLike[str] | None = None) -> tuple[str, bool]:
    """The Deno session server to run, and whether it is the copy this package carries.

    In this order: ``explicit`` (the ``session_server`` argument of :class:`Session`),
    ``$RMP_SESSION_SERVER``, the copy the wheel carries (the same version as this
    package, so nothing is fetched at run time), a checkout's
    ``control/session_server.ts`` when this package is the checkout's own source.

    Args:
        explicit: A path or a specifier Deno can run.

    Returns:
        The path or specifier, and True for the copy this package carries.

    Raises:
        SessionError: When none is found, naming what to install or set.

    Example:
        >>> server, carried = find_session_server()  # doctest: +SKIP
    """
    given = str(explicit) if explicit is not None else os.environ.get(SERVER_ENV) or None
    if given is not None:
        if "://" not in given and not given.startswith(("jsr:", "npm:")):
            path = Path(given).expanduser().resolve()
            if not path.is_file():
                raise SessionError(
                    f"the session server {given!r} (from the session_server argument or "
                    f"{SERVER_ENV}) does not exist: give the path of a session_server.ts or a "
                    "specifier such as jsr:@remotemedia/multiprocess/control/session_server.ts"
                )
            return str(path), False
        return given, False
    carried = bundled_session_server()
    if carried is not None:
        return str(carried), True
    server = _CHECKOUT / "control" / "session_server.ts"
    if server.is_file() and (_CHECKOUT / "ffi" / "Cargo.toml").is_file():
        return str(server), False
    raise SessionError(
        "this install of remotemedia-multiprocess carries no Deno session server (a source "
        f"install outside a checkout): install the wheel with `{sys.executable} -m pip install "
        f"--force-reinstall remotemedia-multiprocess`, or set {SERVER_ENV} to a "
        "session_server.ts (a checkout's control/session_server.ts or a jsr: specifier)"
    )


def _server_command(server: str, carried: bool) -> list[str]:
    """The deno command line that runs ``server``.

    ``-A`` is the narrowest permission set a session runs under in Deno 2.9 (it
    grants ``/dev/shm``, which no ``--allow-read``/``--allow-write`` does; see
    README). The carried copy runs with its own ``deno.json`` (its imports point
    at the files it carries), no lock file and ``--cached-only``: nothing is
    fetched and nothing is written into site-packages.
    """
    command = [find_deno(), "run", "-A", "--no-prompt", "--quiet"]
    if carried:
        config = Path(server).parents[1] / "deno.json"
        command += ["--config", str(config), "--no-lock", "--cached-only"]
    return [*command, server]


class Session:
    """A pipeline run by the Deno executor, with data over shared memory.

    Args:
        pipeline: The pipeline (or its schema dict).
        modules: Python modules that register the node types.
        module_paths: Folders to import them from.
        config: ``RuntimeConfigOptions`` in camelCase (``channelCapacity``,
            ``initTimeoutSecs``, ``python: {executable}``...). The Python
            executable defaults to this interpreter.
        on_progress: Called with every progress event during :meth:`initialize`.
        on_error: Called with a :class:`NodeProcessError` each time a node's
            ``process()`` raises (the node keeps running). It runs on the
            client's reader thread, so keep it short; an exception it raises is
            logged. Without it, each error is logged on ``remotemedia.client``
            at ERROR level (stderr when logging is not configured). Either
            way the error is added to :attr:`errors`.
        session_server: The Deno session server to run, a path or a specifier
            (default: ``$RMP_SESSION_SERVER``, else the copy this package carries;
            see :func:`find_session_server`).

    Example:
        >>> s = Session({"version": 1, "nodes": []})  # doctest: +SKIP
    """

    def __init__(
        self,
        pipeline: Pipeline | Mapping[str, Any],
        *,
        modules: Iterable[str] = (),
        module_paths: Iterable[str] = (),
        config: Mapping[str, Any] | None = None,
        on_progress: Callable[[ProgressEvent], None] | None = None,
        on_error: Callable[[NodeProcessError], None] | None = None,
        session_server: str | os.PathLike[str] | None = None,
    ) -> None:
        self._server = find_session_server(session_server)
        self._pipeline = pipeline.to_dict() if isinstance(pipeline, Pipeline) else dict(pipeline)
        self._modules = list(modules)
        self._module_paths = [str(Path(p).resolve()) for p in module_paths]
        cfg = dict(config or {})
        python = dict(cfg.get("python") or {})
        python.setdefault("executable", sys.executable)
        cfg["python"] = python
        self._config = cfg
        self._on_progress = on_progress
        self._on_error = on_error
        self._errors: collections.deque[NodeProcessError] = collections.deque(maxlen=_MAX_ERRORS)
        self._errors_lock = threading.Lock()  # the reader thread appends
        self._proc: subprocess.Popen[bytes] | None = None
        self._messages: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._reader: threading.Thread | None = None
        self._env: IoxEnv | None = None
        self._channels: list[Channel] = []
        self._publishers: dict[str, Publisher] = {}
        self._subscribers: dict[str, Subscriber] = {}
        # Wake receive() calls blocked on an output when the session fails.
        self._wakers: list[Any] = []
        self._wakers_lock = threading.Lock()  # the reader thread notifies
        self._failure: SessionError | None = None
        self._ready = False
        self._closed = False
        # receive() calls in progress: close() wakes them and waits for them
        # to leave before it closes the channels they wait on.
        self._receivers = 0
        self._receivers_done = threading.Condition()

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        """The session server process, once started."""
        return self._proc

    @property
    def ready(self) -> bool:
        """True once :meth:`initialize` succeeded and until :meth:`close`."""
        return self._ready and not self._closed

    def _start(self) -> None:
        self._proc = subprocess.Popen(
            _server_command(*self._server),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=None,  # node logs go to our stderr
        )
        stdout = self._proc.stdout
        assert stdout is not None
        self._reader = threading.Thread(target=self._read, args=(stdout,), daemon=True)
        self._reader.start()

    def _read(self, stdout: IO[bytes]) -> None:
        for raw in stdout:
            line = raw.strip()
            if not line:
                continue
            try:
                m = json.loads(line)
            except json.JSONDecodeError:
                print(f"session_server: {line.decode(errors='replace')}", file=sys.stderr)
                continue
            kind = m.get("type")
            if kind == "process_error":
                # Not queued: nothing reads the queue after ready, and a node
                # failing on every frame would grow it without bound.
                self._node_error(m)
                continue
            if kind == "failed":
                self._fail(SessionError(str(m.get("message", "")), name=str(m.get("name"))))
            self._messages.put(m)
        if not self._closed:
            self._fail(SessionError("the session server exited"))
        self._messages.put(None)  # EOF

    def _node_error(self, m: Mapping[str, Any]) -> None:
        """Records a node's process() error and hands it to on_error, or logs it."""
        error = NodeProcessError(
            str(m.get("message", "")),
            node_id=str(m.get("node_id", "?")),
            traceback=str(m.get("traceback", "")),
        )
        with self._errors_lock:
            self._errors.append(error)
        if self._on_error is None:
            log.error(
                "Node %r: process() raised %s\n%s",
                error.node_id,
                error,
                error.traceback.rstrip("\n"),
            )
            return
        try:
            self._on_error(error)
        except Exception:  # the reader thread must go on
            log.exception(
                "on_error raised while handling node %r's error: %s", error.node_id, error
            )

    def _fail(self, error: SessionError) -> None:
        """Records the session's failure and wakes every blocked receive()."""
        if self._failure is None:
            self._failure = error
        with self._wakers_lock:
            for notifier in self._wakers:
                with contextlib.suppress(Exception):
                    notifier.notify_with_custom_event_id(_INTERNAL_WAKE)

    def _write(self, message: Mapping[str, Any]) -> None:
        proc = self._proc
        if proc is None or proc.stdin is None:
            raise SessionError("the session server is not running")
        try:
            proc.stdin.write((json.dumps(message) + "\n").encode())
            proc.stdin.flush()
        except (BrokenPipeError, ValueError) as e:
            raise SessionError(f"the session server went away: {e}") from e

    def initialize(self, timeout: float | None = None) -> None:
        """Starts the session and blocks until every node is ready.

        Args:
            timeout: Seconds to wait in all; ``None`` waits for the executor's
                own init timeout.

        Raises:
            SessionError: With the Deno error's name and message when the
                session failed (the session is then closed), or on timeout.
        """
        if self._closed:
            raise SessionError("session is closed", name="SessionClosedError")
        if self._ready:
            return
        self._start()
        self._write(
            {
                "type": "create",
                "pipeline": self._pipeline,
                "modules": self._modules,
                "module_paths": self._module_paths,
                "config": self._config,
            }
        )
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                m = self._messages.get(timeout=left)
            except queue.Empty:
                self.close()
                raise SessionError(f"not ready within {timeout} s", name="NodeInitError") from None
            if m is None:
                self.close()
                raise SessionError("the session server exited before the session was ready")
            kind = m.get("type")
            if kind == "progress":
                if self._on_progress is not None:
                    event = {k: v for k, v in m.items() if k != "type"}
                    self._on_progress(event)  # type: ignore[arg-type]
            elif kind == "ready":
                self._open_channels(m)
                self._ready = True
                return
            elif kind == "error":
                self.close()
                raise SessionError(str(m.get("message", "")), name=str(m.get("name", "Error")))

    def _open_channels(self, m: Mapping[str, Any]) -> None:
        self._env = IoxEnv(str(m["prefix"]), str(m["root"]))
        capacity = int(m["capacity"])
        max_subscribers = int(m["max_subscribers"])
        max_payload = int(m.get("max_payload_bytes") or 0)
        for name, channel in dict(m["inputs"]).items():
            ch = Channel.open_or_create(
                self._env, channel, capacity=capacity, max_subscribers=max_subscribers
            )
            self._channels.append(ch)
            self._publishers[name] = (
                ch.publisher(max_payload=max_payload) if max_payload else ch.publisher()
            )
        for name, channel in dict(m["outputs"]).items():
            ch = Channel.open_or_create(
                self._env, channel, capacity=capacity, max_subscribers=max_subscribers
            )
            self._channels.append(ch)
            self._subscribers[name] = ch.subscriber()
            with self._wakers_lock:
                self._wakers.append(ch._data_event.notifier_builder().create())

    def _check_ready(self) -> None:
        if self._closed:
            raise SessionError("session is closed", name="SessionClosedError")
        if not self._ready:
            raise SessionError("call initialize() first")

    @property
    def errors(self) -> list[NodeProcessError]:
        """The node errors reported so far, oldest first (the latest 1000):
        each time a node's ``process()`` raised. Those nodes kept running."""
        with self._errors_lock:
            return list(self._errors)

    @property
    def failure(self) -> SessionError | None:
        """Why the session failed after it was ready (a node crashed, the
        server died), or ``None``."""
        return self._failure

    def send(self, input: str, rd: RuntimeData, timeout: float = 5.0) -> None:
        """Publishes ``rd`` on pipeline input ``input`` over shared memory
        (in place when it came from :meth:`allocate`).

        Raises:
            KeyError: For an unknown input.
            BackpressureTimeoutError: When no chunk frees within ``timeout``.
        """
        self._input(input).publish(rd, timeout=timeout)

    def _input(self, input: str) -> Publisher:
        self._check_ready()
        if self._failure is not None:
            raise self._failure
        return _port(self._publishers, "input", input)

    def allocate(self, input: str, like: RuntimeData, timeout: float = 5.0) -> RuntimeData:
        """A message for pipeline input ``input`` shaped like ``like``, whose
        payload is a writable view of shared memory: fill it in place and
        :meth:`send` it, and nothing is copied (see ``Publisher.allocate``).

        Raises:
            KeyError: For an unknown input.
            ValueError: For a text or json ``like``.
            BackpressureTimeoutError: When no chunk frees within ``timeout``.
        """
        return self._input(input).allocate(like, timeout=timeout)

    def receive(self, output: str, timeout: float | None = None) -> RuntimeData | None:
        """The next message of pipeline output ``output``.

        The message may be a view of shared memory: call ``release()`` (or use
        it as a context manager) when done; ``copy()`` keeps it.

        Args:
            output: The pipeline output.
            timeout: Seconds to wait; ``None`` waits until a message comes or
                the session fails, 0 only looks.

        Returns:
            The message, or ``None`` only when ``timeout`` passed. A node whose
            ``process()`` raised produces no output for that input: its error
            went to ``on_error`` or the log, and to :attr:`errors`, and is not
            raised here (the node keeps running, and the error need not
            concern ``output``), so use a timeout when an input may fail.

        Raises:
            SessionError: Once the session failed (a node crashed: ``name`` is
                ``ProcessCrashError``) and no message is left on ``output``;
                a blocked call is woken at once.
            KeyError: For an unknown output.
        """
        with self._receivers_done:
            self._check_ready()
            subscriber = _port(self._subscribers, "output", output)
            self._receivers += 1
        try:
            deadline = None if timeout is None else time.monotonic() + timeout
            rd = subscriber._receive_until(deadline, lambda: self._failure is not None)
        finally:
            with self._receivers_done:
                self._receivers -= 1
                self._receivers_done.notify_all()
        if rd is None and self._failure is not None:
            raise self._failure
        return rd

    def close(self) -> None:
        """Closes the channels, asks the server to close the session and waits
        for it to exit (killing it after 30 s)."""
        with self._receivers_done:
            if self._closed:
                return
            self._closed = True
        # A receive() blocked in another thread ends with SessionClosedError
        # before its channel goes away.
        self._fail(SessionError("the session was closed", name="SessionClosedError"))
        with self._receivers_done:
            self._receivers_done.wait_for(lambda: self._receivers == 0, timeout=_WAKE_BOUND)
        with self._wakers_lock:
            for notifier in self._wakers:
                notifier.delete()
            self._wakers.clear()
        for ch in self._channels:
            ch.close()
        self._channels.clear()
        self._publishers.clear()
        self._subscribers.clear()
        if self._env is not None:
            self._env.close()
            self._env = None
        proc = self._proc
        if proc is None:
            return
        try:
            self._write({"type": "close"})
        except SessionError:
            pass
        try:
            if proc.stdin is not None:
                proc.stdin.close()
        except OSError:
            pass
        try:
            proc.wait(timeout=_CLOSE_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if self._reader is not None:
            self._reader.join(timeout=5)
        if proc.stdout is not None:
            proc.stdout.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        proc = getattr(self, "_proc", None)
        if proc is not None and proc.poll() is None and not getattr(self, "_closed", True):
            # Best effort at interpreter exit.
            with contextlib.suppress(Exception):
                self.close()
