"""The node SDK: the base class every Python node derives from.

A node is a class registered under a type name. The runner
(``python -m remotemedia_multiprocess.runner``) hosts one instance per
process: it imports the node's module, builds the node with its id and config,
awaits :meth:`MultiprocessNode.initialize`, then calls
:meth:`MultiprocessNode.process` for every input and publishes what it returns.

Example::

    from remotemedia_multiprocess.node import MultiprocessNode, register_node
    from remotemedia_multiprocess.runtime_data import RuntimeData


    @register_node("upper")
    class Upper(MultiprocessNode):
        async def initialize(self) -> None:
            self.report_progress(1.0, "nothing to load")

        def process(self, data: RuntimeData) -> RuntimeData:
            return RuntimeData.text(data.as_text().upper())

``process()`` may be a plain or an ``async def`` function returning one
RuntimeData, ``None`` (no output) or a dict ``{port: RuntimeData}``; or a
(sync or async) generator yielding RuntimeData (sent on the first output port)
or ``(port, RuntimeData)`` pairs, for streaming outputs such as TTS chunks.
Every yielded item is published as soon as it is yielded.
"""

from __future__ import annotations

import logging
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterator,
    Mapping,
)
from typing import TYPE_CHECKING, Any, ClassVar, TypeAlias, TypeVar

if TYPE_CHECKING:
    from .runtime_data import RuntimeData

__all__ = [
    "AllocateSink",
    "EmitSink",
    "MultiprocessNode",
    "NodeRegistrationError",
    "OutputItem",
    "ProcessResult",
    "ProgressSink",
    "get_node_class",
    "register_node",
    "registered_types",
]

OutputItem: TypeAlias = "RuntimeData | tuple[str, RuntimeData]"
"""One item a streaming ``process()`` yields: data for the first output port,
or a ``(port, data)`` pair."""

_Value: TypeAlias = "RuntimeData | Mapping[str, RuntimeData] | None"

ProcessResult: TypeAlias = (
    "_Value | Awaitable[_Value] | Iterator[OutputItem] | AsyncIterator[OutputItem]"
)
"""What ``process()`` may return (see the module documentation)."""

ProgressSink: TypeAlias = "Callable[[float | None, str], None]"
"""Where :meth:`MultiprocessNode.report_progress` sends its reports."""

EmitSink: TypeAlias = "Callable[[str, RuntimeData], None]"
"""Where :meth:`MultiprocessNode.emit` sends its data."""

AllocateSink: TypeAlias = "Callable[[str, RuntimeData], RuntimeData]"
"""What :meth:`MultiprocessNode.allocate` asks for output memory."""


class NodeRegistrationError(ValueError):
    """A type name is invalid or already taken by another class."""


class MultiprocessNode:
    """Base class of a node hosted in its own process.

    Subclasses override :meth:`initialize`, :meth:`process` and
    :meth:`cleanup` and may declare their ports with the ``inputs`` and
    ``outputs`` class attributes.

    Attributes:
        node_id: The id of this node in its pipeline.
        config: The node's configuration (a JSON object).
        logger: A logger named after the node id (its records go to stderr,
            which the executor reports line by line, tagged with the node id).
        restart_attempt: 0 in the node's first process; ``n`` in the process
            of its ``n``-th restart (set before :meth:`initialize` runs), so a
            node can tell it was restarted (see also :attr:`restarted`).

    Example::

        @register_node("gain")
        class Gain(MultiprocessNode):
            def process(self, data: RuntimeData) -> RuntimeData:
                samples = data.as_numpy() * float(self.config.get("gain", 1.0))
                return RuntimeData.audio(samples, data.sample_rate, data.channels)
    """

    inputs: ClassVar[tuple[str, ...]] = ("in",)
    """Input port names. Each input RuntimeData carries its port in ``.port``.
    When several ports have data waiting, the runner takes them in this order."""

    outputs: ClassVar[tuple[str, ...]] = ("out",)
    """Output port names; the first is where plain return values go."""

    node_type: ClassVar[str | None] = None
    """The registered type name (set by :func:`register_node`)."""

    def __init__(self, node_id: str, config: Mapping[str, Any] | None = None) -> None:
        """Builds the node; heavy work belongs in :meth:`initialize`.

        Args:
            node_id: The node's id in its pipeline.
            config: The node's configuration (copied).
        """
        self.node_id: str = node_id
        self.config: dict[str, Any] = dict(config or {})
        self.logger: logging.Logger = logging.getLogger(f"remotemedia.node.{node_id}")
        self.restart_attempt: int = 0
        self._progress_sink: ProgressSink | None = None
        self._emit_sink: EmitSink | None = None
        self._allocate_sink: AllocateSink | None = None

    @property
    def restarted(self) -> bool:
        """True when this process is a restart of the node (after a crash or a
        failed health check, by its restart policy)."""
        return self.restart_attempt > 0

    def _attach(self, progress: ProgressSink, emit: EmitSink, allocate: AllocateSink) -> None:
        """Connects the node to the runner hosting it. Internal to the runner
        (``runner._Runner``): node code never calls it.

        Args:
            progress: Where :meth:`report_progress` goes.
            emit: What :meth:`emit` calls.
            allocate: What :meth:`allocate` calls.
        """
        self._progress_sink = progress
        self._emit_sink = emit
        self._allocate_sink = allocate

    async def initialize(self) -> None:
        """Loads models and other resources; runs once before any input.

        Call :meth:`report_progress` from here to show loading progress. An
        exception fails the node's start with its traceback.
        """

    def process(self, data: RuntimeData) -> ProcessResult:
        """Handles one input (see the module documentation for return values).

        The default passes the input through to the first output port. The
        input (and any zero-copy view of it) is valid until ``process()``
        returns or, for a generator, until it finishes: keep ``data.copy()``
        (or a copy of its array) to use it later.

        Args:
            data: The input; ``data.port`` names the input port.

        Returns:
            The output(s), or None.
        """
        return data

    async def cleanup(self) -> None:
        """Releases resources; runs once when the node stops."""

    def report_progress(self, fraction: float | None, message: str = "") -> None:
        """Reports initialization progress to the executor.

        Args:
            fraction: Progress in ``[0, 1]`` (clamped), or None when unknown.
            message: A short human-readable description.
        """
        if fraction is not None:
            fraction = min(1.0, max(0.0, float(fraction)))
        sink = self._progress_sink
        if sink is None:
            self.logger.info("progress %s: %s", fraction, message)
        else:
            sink(fraction, str(message))

    def emit(self, port: str, data: RuntimeData) -> None:
        """Publishes ``data`` on an output port right now, from any node code.

        It blocks while downstream is full (bounded by the pipeline's publish
        timeout, then raises).

        Args:
            port: An output port name (one of ``outputs``).
            data: What to send.

        Raises:
            RuntimeError: When the node is not hosted by a runner.
            ValueError: When ``port`` is not an output port of this node.
        """
        sink = self._emit_sink
        if sink is None:
            raise RuntimeError(f"node {self.node_id!r} is not connected to channels")
        sink(port, data)

    def allocate(self, port: str, like: RuntimeData) -> RuntimeData:
        """A message for output ``port`` shaped like ``like`` (kind, metadata,
        payload shape and dtype), whose payload is a writable view of shared
        memory: write the result into it (``np.multiply(x, g,
        out=out.payload)``, slice assignment, a model's ``out=``) and return or
        emit it, and it reaches the next node without being copied. Metadata
        set on it before then (``frame_number``...) is sent too; text and
        json cannot be allocated.

        A message not sent by the end of the ``process()`` call that
        allocated it is given back. An unconnected port gets a plain
        in-memory message, so node code is the same either way.

        Args:
            port: An output port name (one of ``outputs``).
            like: Any message of the wanted kind and size, e.g. the input.

        Returns:
            The message to fill.

        Raises:
            RuntimeError: When the node is not hosted by a runner.
            ValueError: For an unknown port, or a text or json ``like``.

        Example::

            def process(self, data: RuntimeData) -> RuntimeData:
                out = self.allocate("out", like=data)
                np.multiply(data.payload, 0.5, out=out.payload, casting="unsafe")
                return out
        """
        sink = self._allocate_sink
        if sink is None:
            raise RuntimeError(f"node {self.node_id!r} is not connected to channels")
        return sink(port, like)


_registry: dict[str, type[MultiprocessNode]] = {}

_N = TypeVar("_N", bound=type[MultiprocessNode])


def register_node(type_name: str) -> Callable[[_N], _N]:
    """Class decorator registering a node class under ``type_name``.

    Registering the same class again (a module imported twice) is allowed;
    another class under a taken name is an error.

    Args:
        type_name: The type name pipelines refer to.

    Returns:
        The decorator (it returns the class unchanged, with ``node_type`` set).

    Raises:
        NodeRegistrationError: On an empty name, a non-node class, or a
            name already taken by another class.

    Example::

        @register_node("echo")
        class Echo(MultiprocessNode):
            pass
    """
    if not isinstance(type_name, str) or not type_name:
        raise NodeRegistrationError("a node type name must be a non-empty string")

    def decorate(cls: _N) -> _N:
        if not (isinstance(cls, type) and issubclass(cls, MultiprocessNode)):
            raise NodeRegistrationError(
                f"@register_node({type_name!r}) needs a MultiprocessNode subclass"
            )
        previous = _registry.get(type_name)
        if previous is not None and previous is not cls:
            same_origin = (
                previous.__module__ == cls.__module__ and previous.__qualname__ == cls.__qualname__
            )
            if not same_origin:
                raise NodeRegistrationError(
                    f"node type {type_name!r} is already registered by "
                    f"{previous.__module__}.{previous.__qualname__}"
                )
        for attr in ("inputs", "outputs"):
            ports = getattr(cls, attr)
            if isinstance(ports, str) or not all(isinstance(p, str) and p for p in ports):
                raise NodeRegistrationError(
                    f"{cls.__qualname__}.{attr} must be a sequence of port names"
                )
            setattr(cls, attr, tuple(ports))
        cls.node_type = type_name
        _registry[type_name] = cls
        return cls

    return decorate


def registered_types() -> dict[str, type[MultiprocessNode]]:
    """All registered node classes by type name (a copy).

    Returns:
        ``{type_name: class}``.
    """
    return dict(_registry)


def get_node_class(type_name: str) -> type[MultiprocessNode] | None:
    """The class registered under ``type_name``, or None.

    Args:
        type_name: A node type name.

    Returns:
        The class or None.
    """
    return _registry.get(type_name)
