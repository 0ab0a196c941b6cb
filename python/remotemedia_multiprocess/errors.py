"""The error hierarchy of the Python side, mirroring ``errors.ts``.

Every error raised for a runtime condition is a :class:`MultiprocessError`;
plain argument mistakes (a negative size, a wrong type) are built-in errors such
as :class:`TypeError` and :class:`ValueError`.
"""

from __future__ import annotations

from typing import Literal, get_args

__all__ = [
    "WIRE_FORMAT_REASONS",
    "BackpressureTimeoutError",
    "ChannelError",
    "MultiprocessError",
    "NodeProcessError",
    "PublishCancelledError",
    "WireFormatError",
    "WireFormatReason",
]

WireFormatReason = Literal[
    "too_short",
    "bad_magic",
    "bad_version",
    "bad_header_len",
    "length_mismatch",
    "unknown_type",
    "bad_metadata",
]
"""Why a RuntimeData header was rejected (see docs/wire-format.md)."""

WIRE_FORMAT_REASONS: tuple[WireFormatReason, ...] = get_args(WireFormatReason)
"""Every reason, in the order a reader checks them."""


class MultiprocessError(Exception):
    """Base class of every error raised by this package.

    Example:
        >>> try:
        ...     raise MultiprocessError("boom", node_id="asr")
        ... except MultiprocessError as e:
        ...     e.node_id
        'asr'
    """

    node_id: str | None
    """The node the error concerns, if any."""

    def __init__(self, message: str, *, node_id: str | None = None) -> None:
        super().__init__(message)
        self.node_id = node_id


class WireFormatError(MultiprocessError):
    """A RuntimeData header or payload that does not follow the wire format.

    Example:
        >>> WireFormatError("bad_magic", "magic is 0x00000000").reason
        'bad_magic'
    """

    reason: WireFormatReason
    """The rule that was broken."""

    def __init__(
        self, reason: WireFormatReason, message: str, *, node_id: str | None = None
    ) -> None:
        if reason not in WIRE_FORMAT_REASONS:
            raise ValueError(f"unknown wire format reason {reason!r}")
        super().__init__(f"{reason}: {message}", node_id=node_id)
        self.reason = reason


class ChannelError(MultiprocessError):
    """A channel operation failed: the channel is closed, a payload is larger
    than the channel allows, or iceoryx2 refused an operation.

    Example:
        >>> ChannelError("closed", channel="audio").channel
        'audio'
    """

    channel: str | None
    """The channel name, if known."""

    def __init__(
        self, message: str, *, channel: str | None = None, node_id: str | None = None
    ) -> None:
        super().__init__(message, node_id=node_id)
        self.channel = channel


class PublishCancelledError(ChannelError):
    """A publish waiting for space was given up because its publisher is
    stopping (``stop()`` became true): the message was not sent.

    Example:
        >>> isinstance(PublishCancelledError("stopping", channel="a"), ChannelError)
        True
    """


class BackpressureTimeoutError(ChannelError):
    """A publish waited longer than its bound for a subscriber to free space:
    the subscriber is dead or stalled. Nothing already sent was lost.

    Example:
        >>> BackpressureTimeoutError("no space", channel="a", timeout_s=5.0).timeout_s
        5.0
    """

    timeout_s: float
    """The bound that passed, in seconds."""

    def __init__(
        self,
        message: str,
        *,
        timeout_s: float,
        channel: str | None = None,
        node_id: str | None = None,
    ) -> None:
        super().__init__(message, channel=channel, node_id=node_id)
        self.timeout_s = timeout_s


class NodeProcessError(MultiprocessError):
    """A node's ``process()`` raised. The node and the pipeline keep running:
    the error is reported (see ``client.Session``), not raised from ``send``
    or ``receive``.

    Example:
        >>> e = NodeProcessError("ValueError: bad", node_id="asr", traceback="Traceback...")
        >>> e.node_id, str(e)
        ('asr', 'ValueError: bad')
    """

    node_id: str
    """The node that raised."""

    traceback: str
    """The Python traceback, from the node's own frames."""

    def __init__(self, message: str, *, node_id: str, traceback: str) -> None:
        super().__init__(message, node_id=node_id)
        self.node_id = node_id
        self.traceback = traceback
