"""The node runner: hosts one node in this process (docs/runner-protocol.md).

Usage::

    python -m remotemedia_multiprocess.runner --spec SPEC.json
    python -m remotemedia_multiprocess.runner --list-types \\
        --module-path DIR ... --module NAME ...

With ``--spec`` it connects to the executor's control socket, imports the node
modules, opens the node's channels, awaits ``initialize()`` and then processes
inputs as they arrive until ``shutdown``, SIGTERM, or the control socket's end
of file (the executor died).

Threads: the main thread runs everything that touches the node (an asyncio
loop for its coroutines, ``process()``, publishing); a daemon thread reads the
control socket and wakes the main thread through a pipe attached to the same
iceoryx2 WaitSet that waits for input, so an idle runner blocks in one wait
and uses no CPU. The node's coroutines run on one persistent asyncio loop;
tasks a node starts (in ``initialize()``, say) keep running while the runner
is idle, because the wait then moves to a worker thread (one thread hop per
wake-up, only while such tasks exist).

The node's print() and logging go to this process's real stdout and stderr
(line-buffered), which the executor reads line by line; the protocol never
uses them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import importlib
import inspect
import json
import logging
import mmap
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import iceoryx2 as iox2

from ._contracts import (
    RUNNER_SPEC_DEFAULTS,
    RUNNER_SPEC_VERSION,
    RUNNER_STATE_FILE_PREFIX,
    ExecutorMessage,
    RunnerMessage,
    RunnerSpec,
    RunnerSpecDict,
    ToExecutorBye,
    ToExecutorHello,
    ToExecutorInitError,
    ToExecutorLost,
    ToExecutorPong,
    ToExecutorProcessError,
    ToExecutorProgress,
    ToExecutorReady,
    ToExecutorStats,
    ToExecutorStatus,
)
from ._control import ControlConnection
from ._iox import IoxEnv, hold_isolation
from .channel import Channel, Publisher, Subscriber
from .errors import PublishCancelledError, WireFormatError
from .node import MultiprocessNode, get_node_class, registered_types
from .runtime_data import RuntimeData

__all__ = [
    "NodeSpec",
    "describe_import_errors",
    "describe_unknown_type",
    "list_types",
    "main",
    "run_node",
]

_STATUS_INTERVAL = 0.05
"""At most one processing/ready pair per 50 ms (docs/runner-protocol.md)."""

_STATUS_AFTER = 0.02
"""A process() call shows as ``processing`` once it has run this long (the
status thread looks this often while calls come)."""

_STATUS_IDLE = 1.0
"""The status thread sleeps (until the next call) after this long idle."""

_STATUS_PROCESSING = ToExecutorStatus(type="status", state="processing")
_STATUS_READY = ToExecutorStatus(type="status", state="ready")
_STATUS_WAITING = ToExecutorStatus(type="status", state="waiting")

_EXIT_BOUND = 1.8
"""After the control socket's end of file, exit within this many seconds
even when the node does not return (the protocol bound is 2 s)."""

log = logging.getLogger("remotemedia.runner")


_OPEN_MAX_SUBSCRIBERS = 1
"""The subscriber count the runner asks for when it opens a channel and the
spec leaves ``max_subscribers`` out. It overrides the contract's default (the
executor's creation limit): the executor creates every channel first, with
its own limit, and opening needs only a limit at least this large, so 1 opens
whatever the executor chose."""

_SPEC_DEFAULTS: dict[str, Any] = {
    **RUNNER_SPEC_DEFAULTS,
    "version": RUNNER_SPEC_VERSION,
    "max_subscribers": _OPEN_MAX_SUBSCRIBERS,
}
"""The defaults of :class:`NodeSpec` (the contract's, see above)."""


@dataclass(frozen=True)
class NodeSpec(RunnerSpec):
    """The spec file the executor writes for one runner: the contract's
    :class:`RunnerSpec` (generated), opening channels with
    ``_OPEN_MAX_SUBSCRIBERS`` when the spec leaves ``max_subscribers`` out."""

    max_subscribers: int = _OPEN_MAX_SUBSCRIBERS

    @classmethod
    def from_json(cls, obj: RunnerSpecDict | Mapping[str, Any]) -> NodeSpec:
        """Reads a parsed spec file.

        Args:
            obj: The spec's JSON object.

        Returns:
            The spec.

        Raises:
            ValueError: On a missing field or an unsupported version.
        """
        version = obj.get("version", RUNNER_SPEC_VERSION)
        if version != RUNNER_SPEC_VERSION:
            raise ValueError(f"unsupported runner spec version {obj.get('version')!r}")

        def default(name: str) -> Any:
            return obj.get(name, _SPEC_DEFAULTS[name])

        try:
            inputs = {str(p): [str(c) for c in chans] for p, chans in obj["inputs"].items()}
            outputs = {str(p): str(c) for p, c in obj["outputs"].items()}
            return cls(
                node_id=str(obj["node_id"]),
                node_type=str(obj["node_type"]),
                config=dict(obj.get("config") or {}),
                module_paths=[str(p) for p in obj.get("module_paths", [])],
                modules=[str(m) for m in obj.get("modules", [])],
                session_id=str(obj.get("session_id", "")),
                iox_prefix=str(obj["iox_prefix"]),
                iox_root=str(obj["iox_root"]),
                control_socket=str(obj["control_socket"]),
                inputs=inputs,
                outputs=outputs,
                channel_capacity=int(default("channel_capacity")),
                max_payload_bytes=int(default("max_payload_bytes")),
                publish_timeout_secs=float(default("publish_timeout_secs")),
                max_subscribers=int(default("max_subscribers")),
                restart_attempt=int(default("restart_attempt")),
                version=int(version),
            )
        except KeyError as e:
            raise ValueError(f"runner spec is missing {e.args[0]!r}") from None


def _search_folders(module_paths: Sequence[str]) -> tuple[list[str], list[str]]:
    """The module folders as absolute paths, and those that are not folders."""
    absolute = [os.path.abspath(p) for p in module_paths]
    return absolute, [p for p in absolute if not os.path.isdir(p)]


def _import_location(error: BaseException) -> str | None:
    """``file:line`` of the innermost frame of ``error`` outside the runner
    and importlib (where a module's import failed), or None."""
    frames = [
        f
        for f in traceback.extract_tb(error.__traceback__)
        if not f.filename.startswith(_HIDDEN_DIRS) and not f.filename.startswith("<frozen")
    ]
    if isinstance(error, SyntaxError) and error.filename:
        return f"{error.filename}:{error.lineno}"
    return f"{frames[-1].filename}:{frames[-1].lineno}" if frames else None


def _import_modules(module_paths: Sequence[str], modules: Sequence[str]) -> list[dict[str, Any]]:
    """Imports node modules; returns one failure record per module that did
    not import: ``{"module", "error", "not_found", "location", "traceback"}``.

    ``not_found`` is true when the module itself is not on the path (rather
    than something it imports), ``location`` is where the import failed.
    """
    for path in reversed(module_paths):
        absolute = os.path.abspath(path)
        if absolute not in sys.path:
            sys.path.insert(0, absolute)
    errors: list[dict[str, Any]] = []
    for name in modules:
        try:
            importlib.import_module(name)
        except BaseException as e:
            if isinstance(e, KeyboardInterrupt):
                raise
            missing = getattr(e, "name", None) if isinstance(e, ModuleNotFoundError) else None
            # "No module named 'pkg'" for "pkg.mod" is the module missing too;
            # any other name is a dependency the module imports.
            not_found = missing is not None and (name == missing or name.startswith(missing + "."))
            errors.append(
                {
                    "module": name,
                    "error": f"{type(e).__name__}: {e}".rstrip(": "),
                    "not_found": not_found,
                    "location": None if not_found else _import_location(e),
                    "traceback": "" if not_found else _node_traceback(e),
                }
            )
    return errors


def _folders_text(module_paths: Sequence[str], missing: Sequence[str]) -> str:
    if not module_paths:
        return "No module folders were given, so only the Python path was searched."
    shown = [f"{p} (does not exist)" if p in missing else p for p in module_paths]
    return "Module folders searched: " + ", ".join(shown) + ", then the Python path."


def describe_import_errors(
    errors: Sequence[Mapping[str, Any]], module_paths: Sequence[str], missing: Sequence[str]
) -> str:
    """The message for modules that failed to import (as the Deno executor
    words it: module, error, where, and the folders searched).

    Args:
        errors: Failure records of :func:`list_types`.
        module_paths: The absolute module folders.
        missing: Those of them that do not exist.

    Returns:
        A message, one line per module plus one for the folders.
    """

    def detail(e: Mapping[str, Any]) -> str:
        if e.get("not_found"):
            return f"{e['error']} (not found in the module folders or on the Python path)"
        where = e.get("location")
        return f"{e['error']} (at {where})" if where else str(e["error"])

    names = ", ".join(f'"{e["module"]}"' for e in errors)
    if len(errors) == 1:
        head = f"Cannot import node module {names}: {detail(errors[0])}"
    else:
        head = f"Cannot import node modules {names}:" + "".join(
            f"\n  {e['module']}: {detail(e)}" for e in errors
        )
    return f"{head}\n{_folders_text(module_paths, missing)}"


def describe_unknown_type(
    node_type: str,
    known: Sequence[str],
    modules: Sequence[str],
    module_paths: Sequence[str],
    missing: Sequence[str],
) -> str:
    """The message for a node type no imported module registered.

    Args:
        node_type: The type asked for.
        known: The registered types.
        modules: The modules imported (all of them imported).
        module_paths: The absolute module folders.
        missing: Those of them that do not exist.

    Returns:
        A message naming the modules and the folders.
    """
    head = f"Unknown node type {node_type!r} (registered: {', '.join(known) or 'none'})."
    if not modules:
        return (
            f"{head} No node modules were given: list the modules that register "
            f"your node types in `modules`. {_folders_text(module_paths, missing)}"
        )
    return f"{head} Imported modules: {', '.join(modules)}. {_folders_text(module_paths, missing)}"


def list_types(module_paths: Sequence[str], modules: Sequence[str]) -> dict[str, Any]:
    """Imports the modules and describes every registered node type.

    Args:
        module_paths: Folders added to ``sys.path``.
        modules: Module names to import.

    Returns:
        ``{"types": {type: {"inputs": [...], "outputs": [...]}}, "errors": [...],
        "module_paths": [...], "missing_paths": [...]}``: ``errors`` has one
        record per module that failed to import (see
        docs/runner-protocol.md), ``module_paths`` the folders as absolute
        paths and ``missing_paths`` those that do not exist.
    """
    folders, missing = _search_folders(module_paths)
    before = set(sys.modules)
    errors = _import_modules(module_paths, modules)
    types = {
        name: {"inputs": list(cls.inputs), "outputs": list(cls.outputs)}
        for name, cls in sorted(registered_types().items())
    }
    return {
        "types": types,
        "errors": errors,
        "module_paths": folders,
        "missing_paths": missing,
        "files": _loaded_files(set(sys.modules) - before),
    }


def _loaded_files(names: set[str]) -> dict[str, str]:
    """The source files of the modules ``names`` outside the interpreter's
    prefixes and this package, each with the SHA-256 of its contents: what
    the executor's node type cache is keyed by (docs/runner-protocol.md)."""
    skip = tuple(
        os.path.join(os.path.realpath(p), "")
        for p in {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(__file__)}
    )
    files: dict[str, str] = {}
    for name in sorted(names):
        path = getattr(sys.modules.get(name), "__file__", None)
        if not isinstance(path, str):
            continue
        real = os.path.realpath(path)
        if real.startswith(skip) or real in files:
            continue
        try:
            with open(real, "rb") as f:
                files[real] = hashlib.sha256(f.read()).hexdigest()
        except OSError:
            continue
    return files


@contextlib.contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """Sends fd 1 to stderr (so imports cannot corrupt a JSON answer)."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


_HIDDEN_DIRS = (
    os.path.dirname(os.path.abspath(__file__)) + os.sep,
    os.path.dirname(asyncio.__file__) + os.sep,
    os.path.dirname(importlib.__file__) + os.sep,
)


def _node_traceback(error: BaseException) -> str:
    """The traceback of ``error`` without the runner's own leading frames
    (the full one when the error comes from the runner itself)."""
    tb = error.__traceback__
    while tb is not None and (
        tb.tb_frame.f_code.co_filename.startswith(_HIDDEN_DIRS)
        or tb.tb_frame.f_code.co_filename.startswith("<frozen importlib")
    ):
        tb = tb.tb_next
    if tb is None:
        tb = error.__traceback__
    return "".join(traceback.format_exception(type(error), error, tb))


def _session_bytes(session_id: str) -> bytes:
    try:
        raw = bytes.fromhex(session_id)
    except ValueError:
        return b""
    return raw if len(raw) == 16 else b""


class _Runner:
    def __init__(self, spec: NodeSpec) -> None:
        self.spec = spec
        self.control: ControlConnection | None = None
        self.node: MultiprocessNode | None = None
        self.node_cls: type[MultiprocessNode] | None = None
        self.loop = asyncio.new_event_loop()
        self.stop_requested = threading.Event()
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)
        self.channels: list[Channel] = []
        self.subscribers: list[tuple[str, Subscriber]] = []
        self.publishers: dict[str, Publisher] = {}
        self.publish_lock = threading.Lock()
        self._allocated: list[RuntimeData] = []  # by the current process() call
        self.session_id = _session_bytes(spec.session_id)
        self.received = 0
        self.sent = 0
        self.bytes_in = 0
        self.bytes_out = 0
        self._current_input: RuntimeData | None = None
        # The state file (see _open_state): per input subscriber the last
        # delivery counter finished, then per output the last one sent.
        self._state_map: mmap.mmap | None = None
        self._state: memoryview | None = None
        self._lost_reported: list[int] = []
        self._out_slot: dict[str, int] = {}
        # The state slot of the input being handled (see _emit).
        self._current_slot = -1
        # The running initialize(), cancelled by a stop request (read by the
        # control thread: a close during start-up must not wait for the load).
        self._init_task: asyncio.Task[None] | None = None
        # Status pairs: see _status. Guarded by _status_lock.
        self._status_lock = threading.Lock()
        self._status_open = False
        self._status_armed = False
        self._last_status = -_STATUS_INTERVAL
        self._busy = False
        self._waiting = False
        self._calls = 0
        self._call_started = 0.0
        self._status_kick = threading.Event()
        self._status_thread: threading.Thread | None = None
        self._watchdog: threading.Timer | None = None
        # The WaitSet of _wait (built by _build_waitset once the channels are
        # open): the wake pipe's attachment and one per subscriber.
        self.waitset: Any = None
        self.wake_fd: Any = None
        self.wake_guard: Any = None
        self.waitset_guards: list[tuple[Any, Subscriber]] = []

    # -- control ---------------------------------------------------------

    def send(self, message: RunnerMessage) -> None:
        if self.control is not None:
            self.control.send(message)

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            os.write(self.wake_w, b"w")

    def _start_watchdog(self) -> None:
        if self._watchdog is None:
            self._watchdog = threading.Timer(_EXIT_BOUND, os._exit, args=(0,))
            self._watchdog.daemon = True
            self._watchdog.start()

    def request_stop(self, bounded: bool) -> None:
        self.stop_requested.set()
        if bounded:
            self._start_watchdog()
        task = self._init_task
        if task is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closed
                self.loop.call_soon_threadsafe(task.cancel)
        self._wake()

    def _on_control(self, message: ExecutorMessage) -> None:
        if message["type"] == "ping":
            self.send(ToExecutorPong(type="pong", id=message["id"]))
        elif message["type"] == "shutdown":
            self.request_stop(bounded=False)
        elif message["type"] == "stats":
            self.send(
                ToExecutorStats(
                    type="stats",
                    id=message["id"],
                    received=self.received,
                    sent=self.sent,
                    bytes_in=self.bytes_in,
                    bytes_out=self.bytes_out,
                )
            )

    def _on_eof(self) -> None:
        self.request_stop(bounded=True)

    def _on_signal(self, signum: int, _frame: object) -> None:
        self.request_stop(bounded=True)

    def _progress(self, fraction: float | None, message: str) -> None:
        self.send(ToExecutorProgress(type="progress", fraction=fraction, message=message))

    # -- start -----------------------------------------------------------

    def _init_error(self, error: str, tb: str) -> int:
        self._close_channels()
        self.send(ToExecutorInitError(type="init_error", error=error, traceback=tb))
        text = f"init error: {error}\n{tb}" if tb else f"init error: {error}"
        print(text, file=sys.stderr, end="" if text.endswith("\n") else "\n")
        return 1

    def _open_channels(self) -> None:
        spec = self.spec
        env = IoxEnv(prefix=spec.iox_prefix, root=spec.iox_root)
        by_name: dict[str, Channel] = {}

        def channel(name: str) -> Channel:
            ch = by_name.get(name)
            if ch is None:
                ch = Channel.open_or_create(
                    env,
                    name,
                    capacity=spec.channel_capacity,
                    max_subscribers=spec.max_subscribers,
                )
                by_name[name] = ch
                self.channels.append(ch)
            return ch

        assert self.node_cls is not None
        # Ports are read in the order the node type declares them (each pass
        # over the inputs takes the first port's waiting data first).
        declared = self.node_cls.inputs
        ordered = sorted(
            spec.inputs.items(),
            key=lambda item: declared.index(item[0]) if item[0] in declared else len(declared),
        )
        for port, names in ordered:
            if port not in self.node_cls.inputs:
                raise ValueError(
                    f"node type {spec.node_type!r} has no input port {port!r} "
                    f"(inputs: {', '.join(self.node_cls.inputs) or 'none'})"
                )
            for name in names:
                self.subscribers.append((port, channel(name).subscriber()))
        for port, name in spec.outputs.items():
            if port not in self.node_cls.outputs:
                raise ValueError(
                    f"node type {spec.node_type!r} has no output port {port!r} "
                    f"(outputs: {', '.join(self.node_cls.outputs) or 'none'})"
                )
            self.publishers[port] = channel(name).publisher(max_payload=spec.max_payload_bytes)
            self.publishers[port].on_wait = self._waiting_for_reader
        self._open_state()

    def _open_state(self) -> None:
        """Maps the node's state file, which outlives this process: a runner
        restarted after a crash seeds its subscribers with the delivery
        counters its previous process finished (the first message then shows
        exactly what was lost in between) and its publishers with the ones it
        sent (their readers see no false gap). docs/runner-protocol.md, "Restarts"."""
        spec = self.spec
        slots = len(self.subscribers) + len(self.publishers)
        if slots == 0:
            return
        path = os.path.join(spec.iox_root, f"{RUNNER_STATE_FILE_PREFIX}{spec.node_id}.bin")
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            if os.fstat(fd).st_size != slots * 8:
                os.ftruncate(fd, 0)  # another layout: start over
                os.ftruncate(fd, slots * 8)
            self._state_map = mmap.mmap(fd, slots * 8)
        finally:
            os.close(fd)
        self._state = memoryview(self._state_map).cast("Q")
        for i, (_, sub) in enumerate(self.subscribers):
            sub.delivery = self._state[i]
        self._lost_reported = [0] * len(self.subscribers)
        for j, (port, pub) in enumerate(sorted(self.publishers.items())):
            slot = len(self.subscribers) + j
            pub.delivery = self._state[slot]
            self._out_slot[port] = slot

    def run(self) -> int:
        spec = self.spec
        asyncio.set_event_loop(self.loop)
        try:
            self.control = ControlConnection.connect(spec.control_socket)
        except OSError as e:
            print(
                f"cannot connect to the control socket {spec.control_socket}: {e}",
                file=sys.stderr,
            )
            return 1
        self.send(ToExecutorHello(type="hello", node_id=spec.node_id, pid=os.getpid()))
        self.control.start_reader(self._on_control, self._on_eof)
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_signal)
        # The C-level handler writes to the pipe, which wakes the WaitSet.
        signal.set_wakeup_fd(self.wake_w, warn_on_full_buffer=False)

        try:
            errors = _import_modules(spec.module_paths, spec.modules)
            folders, missing = _search_folders(spec.module_paths)
            cls = get_node_class(spec.node_type)
            if errors:
                # Fails even when the type was found: a module that failed
                # half-way may have registered some of its types only.
                message = describe_import_errors(errors, folders, missing)
                if cls is None:
                    message += f"\nNode type {spec.node_type!r} is not registered."
                return self._init_error(message, "".join(str(e["traceback"]) for e in errors))
            if cls is None:
                known = sorted(registered_types())
                return self._init_error(
                    describe_unknown_type(spec.node_type, known, spec.modules, folders, missing), ""
                )
            self.node_cls = cls
            node = cls(spec.node_id, spec.config)
            node.restart_attempt = spec.restart_attempt
            node._attach(progress=self._progress, emit=self._emit, allocate=self._allocate)
            self.node = node
            self._open_channels()
            self._build_waitset()
        except Exception as e:  # noqa: BLE001 - any failure here is an init failure
            return self._init_error(f"{type(e).__name__}: {e}", _node_traceback(e))

        try:
            self._init_task = self.loop.create_task(node.initialize())
            if self.stop_requested.is_set():
                self._init_task.cancel()
            self.loop.run_until_complete(self._init_task)
        except asyncio.CancelledError:
            if not self.stop_requested.is_set():
                return self._init_error("CancelledError: initialize() was cancelled", "")
        except BaseException as e:
            if isinstance(e, KeyboardInterrupt):
                raise
            return self._init_error(f"{type(e).__name__}: {e}", _node_traceback(e))
        finally:
            self._init_task = None

        if not self.stop_requested.is_set():
            self.send(ToExecutorReady(type="ready"))
            self._serve()
        return self._stop()

    def _stop(self) -> int:
        assert self.node is not None
        try:
            self.loop.run_until_complete(self.node.cleanup())
        except BaseException:  # noqa: BLE001 - a failing cleanup still ends with bye
            with contextlib.suppress(BaseException):
                traceback.print_exc()
        self._status(False)
        self.send(ToExecutorBye(type="bye"))
        self._close_channels()
        return 0

    def _close_channels(self) -> None:
        # Ports closed now leave their services at once: a subscriber that
        # lingered until dead-node cleanup would hold its publisher's credits.
        guards = [g for g, _ in self.waitset_guards]
        if self.wake_guard is not None:
            guards.append(self.wake_guard)
        for guard in guards:
            with contextlib.suppress(Exception):
                guard.delete()
        self.waitset_guards = []
        self.wake_guard = None
        for _, sub in self.subscribers:
            with contextlib.suppress(Exception):
                sub.close()
        for pub in self.publishers.values():
            with contextlib.suppress(Exception):
                pub.close()
        for ch in self.channels:
            with contextlib.suppress(Exception):
                ch.close()

    # -- waiting ---------------------------------------------------------

    def _build_waitset(self) -> None:
        self.waitset = (
            iox2.WaitSetBuilder.new()
            .signal_handling_mode(iox2.SignalHandlingMode.Disabled)
            .create(iox2.ServiceType.Ipc)
        )
        self.wake_fd = iox2.FileDescriptor.non_owning_new(self.wake_r)
        self.wake_guard = self.waitset.attach_notification_fd(self.wake_fd)
        self.waitset_guards = []
        for _, sub in self.subscribers:
            guard = self.waitset.attach_notification(sub.listener)
            self.waitset_guards.append((guard, sub))

    def _wait(self) -> None:
        """Blocks (GIL released) until input, a control message or a signal.

        A subscriber's notifications are not drained here: the hot path goes
        straight from the wake-up to ``try_receive``, and every subscriber is
        drained (its credit requests answered) by the ``try_receive`` that
        finds it empty, before the next wait (see ``_serve``). A notification
        left undrained only makes the next wait return at once."""
        assert self.waitset is not None
        ids, _result = self.waitset.wait_and_process()
        for attachment in ids:
            if attachment.has_event_from(self.wake_guard):
                with contextlib.suppress(OSError):
                    while os.read(self.wake_r, 512):
                        pass

    def _serve(self) -> None:
        while not self.stop_requested.is_set():
            got = False
            for index, (port, sub) in enumerate(self.subscribers):
                if self.stop_requested.is_set():
                    return
                try:
                    rd = sub.try_receive()
                except WireFormatError as e:
                    # Not a valid message (already released): report, go on.
                    self._send_process_error(e, f"Invalid message on input {port!r}: ")
                    got = True
                    continue
                if rd is None:
                    continue
                got = True
                self._current_slot = index
                self._handle(port, rd)
                self._finished(index, sub)
            if got:
                continue
            if asyncio.all_tasks(self.loop):
                # The node has background tasks: keep its loop running while
                # another thread waits.
                self.loop.run_until_complete(self.loop.run_in_executor(None, self._wait))
            else:
                self._wait()

    def _finished(self, index: int, sub: Subscriber) -> None:
        """Records that the message ``sub`` delivered last was handled, and
        reports what a gap before it lost."""
        state = self._state
        if state is not None:
            state[index] = sub.delivery
        if sub.lost != self._lost_reported[index]:
            count = sub.lost - self._lost_reported[index]
            self._lost_reported[index] = sub.lost
            self.send(ToExecutorLost(type="lost", channel=sub.channel_name, count=count))

    # -- processing ------------------------------------------------------

    def _status(self, processing: bool) -> None:
        """Marks a process() call as started or returned. The hot path sends
        nothing: the status thread reports a call as ``processing`` once it
        has run for ``_STATUS_AFTER`` (at most one pair per
        ``_STATUS_INTERVAL``), and the call's end then sends ``ready``. A call
        that returns sooner costs no control message (docs/runner-protocol.md,
        "Status")."""
        with self._status_lock:
            self._busy = processing
            if processing:
                self._calls += 1
                self._call_started = time.monotonic()
                if not self._status_armed:
                    self._status_armed = True
                    if self._status_thread is None:
                        self._status_thread = threading.Thread(
                            target=self._status_loop, name="rmp-status", daemon=True
                        )
                        self._status_thread.start()
                    self._status_kick.set()
            elif self._status_open:
                self._status_open = False
                self.send(_STATUS_READY)

    def _waiting_for_reader(self, waiting: bool) -> None:
        """A publish of the current call waits for a reader (backpressure):
        the executor's process() timer stops while it waits (``waiting``),
        and the call's own time starts again when the wait ends."""
        with self._status_lock:
            self._waiting = waiting
            if not self._busy:
                return
            if waiting:
                if self._status_open:
                    self.send(_STATUS_WAITING)
            else:
                self._call_started = time.monotonic()
                if self._status_open:
                    self._last_status = self._call_started
                    self.send(_STATUS_PROCESSING)

    def _status_loop(self) -> None:
        """The status thread: asleep (no CPU) until a call starts after an
        idle second; then it looks every ``_STATUS_AFTER`` at most, without
        being woken per call (a wake-up would contend for the GIL with the
        call it reports)."""
        while True:
            self._status_kick.wait()
            self._status_kick.clear()
            seen = -1
            idle_since = time.monotonic()
            while True:
                with self._status_lock:
                    now = time.monotonic()
                    if self._calls != seen or self._busy:
                        seen = self._calls
                        idle_since = now
                    elif now - idle_since >= _STATUS_IDLE:
                        self._status_armed = False  # the next call kicks
                        break
                    # A call already shown needs no look until it ends.
                    wake = now + (_STATUS_INTERVAL if self._status_open else _STATUS_AFTER)
                    if self._busy and not self._status_open and not self._waiting:
                        due = max(
                            self._call_started + _STATUS_AFTER,
                            self._last_status + _STATUS_INTERVAL,
                        )
                        if now >= due:
                            self._last_status = now
                            self._status_open = True
                            self.send(_STATUS_PROCESSING)
                        else:
                            wake = due
                time.sleep(max(0.0, wake - time.monotonic()))

    def _handle(self, port: str, rd: RuntimeData) -> None:
        assert self.node is not None
        self.received += 1
        self.bytes_in += rd.nbytes
        try:
            rd.port = port
        except AttributeError:  # a RuntimeData subclass without the slot
            pass
        self._current_input = rd
        self._status(True)
        try:
            self._deliver(self.node.process(rd))
        except PublishCancelledError:
            pass  # stopping: the output is dropped, as unread inputs are
        except Exception as e:  # noqa: BLE001 - reported, and the node keeps running
            self._send_process_error(e)
        finally:
            self._current_input = None
            rd.release()
            # Allocated but not sent: give the chunks back (a no-op for sent ones).
            allocated, self._allocated = self._allocated, []
            for out in allocated:
                out.release()
            self._status(False)

    def _send_process_error(self, e: BaseException, context: str = "") -> None:
        self.send(
            ToExecutorProcessError(
                type="process_error",
                error=f"{context}{type(e).__name__}: {e}",
                traceback=_node_traceback(e),
            )
        )

    def _deliver(self, result: Any) -> None:
        if isinstance(result, RuntimeData) or result is None:
            self._deliver_value(result)
        elif inspect.isasyncgen(result) or isinstance(result, AsyncIterator):
            self.loop.run_until_complete(self._consume_async(result))
        elif inspect.isawaitable(result):
            value = self.loop.run_until_complete(_as_coroutine(result))
            if inspect.isasyncgen(value) or inspect.isgenerator(value):
                self._deliver(value)
            else:
                self._deliver_value(value)
        elif inspect.isgenerator(result):
            try:
                for item in result:
                    self._deliver_item(item)
            finally:
                result.close()
        else:
            self._deliver_value(result)

    async def _consume_async(self, agen: AsyncIterator[Any]) -> None:
        try:
            async for item in agen:
                self._deliver_item(item)
        finally:
            aclose = getattr(agen, "aclose", None)
            if aclose is not None:
                await aclose()

    def _deliver_item(self, item: Any) -> None:
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
            self._emit(item[0], item[1])
        elif isinstance(item, RuntimeData):
            self._emit(self._default_port(), item)
        elif item is not None:
            raise TypeError(
                f"process() yielded {type(item).__name__}; yield RuntimeData or (port, RuntimeData)"
            )

    def _deliver_value(self, value: Any) -> None:
        if value is None:
            return
        if isinstance(value, RuntimeData):
            self._emit(self._default_port(), value, last=True)
        elif isinstance(value, Mapping):
            for port, data in value.items():
                if data is not None:
                    self._emit(port, data)
        elif isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str):
            self._emit(value[0], value[1])
        else:
            raise TypeError(
                f"process() returned {type(value).__name__}; return RuntimeData, "
                "None or a dict {port: RuntimeData}"
            )

    def _default_port(self) -> str:
        assert self.node_cls is not None
        if not self.node_cls.outputs:
            raise ValueError(f"node type {self.spec.node_type!r} has no output port")
        return self.node_cls.outputs[0]

    def _check_output(self, port: str) -> None:
        assert self.node_cls is not None
        if port not in self.node_cls.outputs:
            raise ValueError(
                f"node type {self.spec.node_type!r} has no output port {port!r} "
                f"(outputs: {', '.join(self.node_cls.outputs) or 'none'})"
            )

    def _allocate(self, port: str, like: RuntimeData) -> RuntimeData:
        self._check_output(port)
        publisher = self.publishers.get(port)
        if publisher is None:
            return like._blank()  # the port is not connected
        with self.publish_lock:
            out = publisher.allocate(
                like, timeout=self.spec.publish_timeout_secs, stop=self.stop_requested.is_set
            )
        if self._current_input is not None:
            self._allocated.append(out)
        return out

    def _emit(self, port: str, data: RuntimeData, last: bool = False) -> None:
        self._check_output(port)
        if not isinstance(data, RuntimeData):
            raise TypeError(f"output on {port!r} is {type(data).__name__}, not RuntimeData")
        publisher = self.publishers.get(port)
        if publisher is None:
            return  # the port is not connected in this pipeline
        if not any(data.session_id):
            current = self._current_input
            sid = current.session_id if current is not None else b""
            data.session_id = sid if any(sid) else self.session_id or data.session_id
        with self.publish_lock:
            # A stop (control socket closed, signal, shutdown) ends a wait for
            # space: the reader may be a dead Deno process.
            stop = self.stop_requested.is_set
            timeout = self.spec.publish_timeout_secs
            state = self._state
            if state is None:
                publisher.publish(data, timeout=timeout, stop=stop)
            else:
                # The state says "sent" before the send: a process that dies
                # before it is sent leaves its readers a gap of one in the
                # counter, which they report as lost; one that dies after it
                # leaves no gap. Either way the count is exact. The input of
                # a call whose only output this is is finished with it.
                slot = self._out_slot[port]
                state[slot] = publisher.next_delivery
                if last and self._current_slot >= 0:
                    state[self._current_slot] = self.subscribers[self._current_slot][1].delivery
                try:
                    publisher.publish(data, timeout=timeout, stop=stop)
                finally:
                    state[slot] = publisher.delivery  # the same, unless the send failed
        self.sent += 1
        self.bytes_out += data.nbytes


async def _as_coroutine(awaitable: Any) -> Any:
    return await awaitable


def run_node(spec: NodeSpec) -> int:
    """Hosts the node described by ``spec`` until it is told to stop.

    Args:
        spec: The runner spec.

    Returns:
        The exit code (0 after a clean stop, 1 after an init failure).
    """
    return _Runner(spec).run()


def _setup_stdio() -> None:
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            with contextlib.suppress(Exception):
                reconfigure(line_buffering=True, errors="backslashreplace")
    logging.basicConfig(
        stream=sys.stderr,
        level=os.environ.get("RMP_LOG_LEVEL", "INFO").upper(),
        format="%(levelname)s %(name)s: %(message)s",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """The command line (see the module documentation).

    Args:
        argv: Arguments (default ``sys.argv[1:]``).

    Returns:
        The exit code.
    """
    parser = argparse.ArgumentParser(prog="python -m remotemedia_multiprocess.runner")
    parser.add_argument("--spec", help="the runner spec file (JSON)")
    parser.add_argument("--list-types", action="store_true", help="print the node types as JSON")
    parser.add_argument(
        "--module-path", action="append", default=[], help="folder with node modules"
    )
    parser.add_argument("--module", action="append", default=[], help="node module to import")
    args = parser.parse_args(argv)
    _setup_stdio()
    if args.list_types:
        with _stdout_to_stderr():
            listing = list_types(args.module_path, args.module)
        sys.stdout.write(json.dumps(listing) + "\n")
        sys.stdout.flush()
        return 0
    if not args.spec:
        parser.error("one of --spec or --list-types is required")
    raw: Any = None
    try:
        with open(args.spec, encoding="utf-8") as f:
            raw = json.load(f)
        spec = NodeSpec.from_json(raw)
    except (OSError, ValueError) as e:
        message = f"Cannot read the runner spec {args.spec}: {e}"
        print(message, file=sys.stderr)
        _report_unreadable_spec(raw, message)
        return 1
    # A shared lock on the session's isolation: no sweeper removes its files
    # while this runner maps them (docs/channel-protocol.md, "Isolation").
    hold_isolation(spec.iox_root)
    code = run_node(spec)
    # Exit now: a node's leftover non-daemon threads must not keep the
    # process (and its iceoryx2 resources) alive.
    with contextlib.suppress(Exception):
        sys.stdout.flush()
    with contextlib.suppress(Exception):
        sys.stderr.flush()
    os._exit(code)


def _report_unreadable_spec(raw: Any, message: str) -> None:
    """Tells the executor why, as an init error, when the spec parsed far
    enough to name the node and the control socket (a spec of another
    version, say); the executor then reports it instead of a bare exit code."""
    if not isinstance(raw, Mapping):
        return
    node_id, path = raw.get("node_id"), raw.get("control_socket")
    if not isinstance(node_id, str) or not isinstance(path, str):
        return
    try:
        conn = ControlConnection.connect(path, timeout=2.0)
    except OSError:
        return
    try:
        conn.send(ToExecutorHello(type="hello", node_id=node_id, pid=os.getpid()))
        conn.send(ToExecutorInitError(type="init_error", error=message, traceback=""))
    finally:
        conn.close()


if __name__ == "__main__":
    # main()'s code is the exit status (1 when the spec cannot be read).
    sys.exit(main())
