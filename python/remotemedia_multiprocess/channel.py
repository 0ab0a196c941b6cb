"""Channels over iceoryx2 shared memory (docs/channel-protocol.md).

A channel ``N`` is three iceoryx2 services: publish-subscribe ``N`` (byte
slices, one RuntimeData message per sample), event ``N/data`` (publishers
notify DATA and CREDIT_REQUEST, subscribers listen) and event ``N/freed``
(subscribers notify FREED, publishers listen).

Flow control uses credits: a publisher owns exactly ``capacity`` chunks, a
chunk comes back only when every subscriber released it, so a loan failing
for lack of chunks means "full". The publisher then asks for credit and waits
(the GIL is released while it waits); subscribers answer without a
notification per message.

Example:
    >>> from remotemedia_multiprocess._iox import new_isolated_env, remove_env_files
    >>> env = new_isolated_env()
    >>> ch = Channel.open_or_create(env, "doc")
    >>> sub, pub = ch.subscriber(), ch.publisher()
    >>> pub.publish(RuntimeData.text("hi"))
    >>> with sub.receive(timeout=1.0) as rd:
    ...     rd.text
    'hi'
    >>> ch.close(); env.close(); remove_env_files(env)
"""

from __future__ import annotations

import contextlib
import ctypes
import operator
import struct
import threading
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import iceoryx2 as iox2
import numpy as np
import numpy.typing as npt

from ._bells import BellRinger
from ._contracts import (
    CHANNEL_CREDIT_REQUEST_INTERVAL_SECS,
    CHANNEL_DEFAULT_CAPACITY,
    CHANNEL_DEFAULT_MAX_PAYLOAD_BYTES,
    CHANNEL_DEFAULT_MAX_SUBSCRIBERS,
    CHANNEL_EVENTS,
    CHANNEL_INITIAL_MAX_SLICE_LEN,
    CHANNEL_MAX_OPEN_LOANS,
    CHANNEL_MAX_PUBLISHERS,
    CHANNEL_PAYLOAD_ALIGNMENT,
    WIRE_OFFSETS,
)
from ._iox import IoxEnv
from .errors import (
    BackpressureTimeoutError,
    ChannelError,
    PublishCancelledError,
    WireFormatError,
)
from .runtime_data import HEADER_LEN, RuntimeData

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = [
    "CREDIT_REQUEST",
    "DATA",
    "DEFAULT_CAPACITY",
    "DEFAULT_INITIAL_MAX_SLICE_LEN",
    "DEFAULT_MAX_PAYLOAD",
    "DEFAULT_MAX_SUBSCRIBERS",
    "FREED",
    "INTERNAL_WAKE",
    "MAX_LOANED_SAMPLES",
    "MAX_PUBLISHERS",
    "PAYLOAD_ALIGNMENT",
    "Channel",
    "Loan",
    "Publisher",
    "RawSample",
    "Subscriber",
]

# -- protocol constants (docs/channel-protocol.md) ---------------------------

DATA = CHANNEL_EVENTS["data"]
"""``N/data`` event: a sample was sent."""
CREDIT_REQUEST = CHANNEL_EVENTS["credit_request"]
"""``N/data`` event: a publisher is out of chunks."""
INTERNAL_WAKE = CHANNEL_EVENTS["internal_wake"]
"""Event used only to wake a thread of the same process."""
FREED = CHANNEL_EVENTS["freed"]
"""``N/freed`` event: a sample was released after a CREDIT_REQUEST."""

DEFAULT_CAPACITY = CHANNEL_DEFAULT_CAPACITY
"""Subscriber buffer, borrowed samples and publisher chunks per channel."""
DEFAULT_MAX_SUBSCRIBERS = CHANNEL_DEFAULT_MAX_SUBSCRIBERS
MAX_PUBLISHERS = CHANNEL_MAX_PUBLISHERS
"""One real publisher plus one for tests that inject raw samples."""
PAYLOAD_ALIGNMENT = CHANNEL_PAYLOAD_ALIGNMENT
"""Service ``payload_alignment``. A service setting: every side must agree."""
DEFAULT_INITIAL_MAX_SLICE_LEN = CHANNEL_INITIAL_MAX_SLICE_LEN
DEFAULT_MAX_PAYLOAD = CHANNEL_DEFAULT_MAX_PAYLOAD_BYTES
"""Largest sample a publisher loans (a 64 MiB payload plus the header)."""
MAX_LOANED_SAMPLES = CHANNEL_MAX_OPEN_LOANS

# A waiting publisher repeats its CREDIT_REQUEST (and re-checks for chunks) at
# most this often: it bounds the cost of a subscriber that never drains its
# events, without two processes ping-ponging.
_REQUEST_INTERVAL_S = CHANNEL_CREDIT_REQUEST_INTERVAL_SECS
_MIN_BACKOFF_S = 0.0005

# The binding's public loan/assume_init/payload wrappers inspect typing
# information on every call (1-3 us each, several times that on a cold cache
# right after a wake-up). The per-message path calls the native methods they
# wrap; the names belong to the pinned iceoryx2 version and fall back to the
# public wrappers if a version drops them.
_native_loan_slice = getattr(iox2.Publisher, "__loan_slice_uninit", None)
_native_assume_init = getattr(iox2.SampleMutUninit, "__assume_init", None)
_HAS_NATIVE_SLICE_LEN = hasattr(iox2.Sample, "__slice_len")
_native_slice_len = operator.attrgetter("__slice_len")


def _loan_slice(port: Any, n: int) -> Any:
    if _native_loan_slice is not None:
        return _native_loan_slice(port, n)
    return port.loan_slice_uninit(n)


def _assume_init(sample: Any) -> Any:
    if _native_assume_init is not None:
        return _native_assume_init(sample)
    return sample.assume_init()


def _sample_len(sample: Any) -> int:
    if _HAS_NATIVE_SLICE_LEN:
        return int(_native_slice_len(sample))
    return int(sample.payload().len())


_MAX_WAIT_SLICE_S = 1.0  # lets KeyboardInterrupt through a blocking receive
_MAX_DRAINS = 16  # handle_events: a notifier would have to race every drain

_EVENT_DATA = iox2.EventId.new(DATA)
_EVENT_CREDIT_REQUEST = iox2.EventId.new(CREDIT_REQUEST)
_EVENT_FREED = iox2.EventId.new(FREED)

_READONLY_EMPTY = np.empty(0, dtype=np.uint8)
_READONLY_EMPTY.flags.writeable = False


class _SampleMemory:
    """Exposes ``n`` bytes at ``ptr`` to numpy without copying.

    ``np.asarray`` keeps this object as the array's base, so every view made
    from that array keeps ``keep`` (the sample, or the lease that releases it)
    alive: a view can never outlive its sample.
    """

    __slots__ = ("__array_interface__", "keep")

    def __init__(self, ptr: int, n: int, readonly: bool, keep: Any) -> None:
        self.__array_interface__ = {
            "data": (ptr, readonly),
            "shape": (n,),
            "typestr": "|u1",
            "version": 3,
        }
        self.keep = keep


def _bytes_at(
    ptr: int, n: int, readonly: bool, keep: Any
) -> tuple[npt.NDArray[np.uint8], _SampleMemory | None]:
    if n == 0:
        return (_READONLY_EMPTY if readonly else np.empty(0, dtype=np.uint8)), None
    holder = _SampleMemory(ptr, n, readonly, keep)
    return np.asarray(holder), holder


def _address_of(payload: npt.NDArray[Any] | memoryview) -> int:
    """The address of a payload view's first byte."""
    arr = payload if isinstance(payload, np.ndarray) else np.frombuffer(payload, np.uint8)
    return int(arr.__array_interface__["data"][0])


def _loan_error_kind(e: BaseException) -> str:
    return str(e.args[0]) if e.args else str(e)


# iceoryx2 0.10 hands a listener's timeout to SO_RCVTIMEO in whole
# microseconds, and a zero timeout there means "no timeout": a wait of less
# than 1 us blocks until a notification comes, maybe forever.
_MIN_WAIT_S = 1e-5


def _duration(seconds: float) -> Any:
    """A listener timeout: at least ``_MIN_WAIT_S``, so it never means "forever"."""
    return iox2.Duration.from_secs_f64(max(_MIN_WAIT_S, seconds))


_MAX_WAIT_SLICE = _duration(_MAX_WAIT_SLICE_S)


def _event_values(events: Any) -> list[int]:
    # timed_wait/try_wait return EventActivation objects (an EventId and a count).
    return [int(ev.id.as_value) for ev in events or ()]


_TIMESTAMP = struct.Struct("<Q")
_TIMESTAMP_OFFSET = WIRE_OFFSETS["timestamp_ns"]


def _stamp_now(buffer: memoryview) -> None:
    """Writes CLOCK_MONOTONIC into a written header's ``timestamp_ns``, last
    before the send (as the Deno publisher does): the stamp is the moment the
    message is handed over, after its header and payload are in place."""
    _TIMESTAMP.pack_into(buffer, _TIMESTAMP_OFFSET, time.monotonic_ns())


_DELIVERY = struct.Struct("<I")
_DELIVERY_OFFSET = WIRE_OFFSETS["delivery"]
_DELIVERY_WRAP = 0xFFFFFFFF


def _delivery_gap(last: int, got: int) -> int:
    """Messages missed between delivery counters ``last`` and ``got`` (0 when
    ``got`` follows ``last``, or when it is not ahead of it: a publisher that
    started over, which is not a loss this reader can count)."""
    gap = (got - last - 1) % _DELIVERY_WRAP
    return gap if gap < _DELIVERY_WRAP // 2 else 0


def _wire_view(data: memoryview | bytes | bytearray) -> memoryview:
    """``data`` as flat bytes; a wire message has at least its header (the
    delivery counter is stamped into it)."""
    mv = memoryview(data).cast("B")
    if len(mv) < HEADER_LEN:
        raise ValueError(f"a wire message has at least {HEADER_LEN} bytes, got {len(mv)}")
    return mv


def _next_pow2(n: int) -> int:
    return 1 << max(0, n - 1).bit_length()


class Channel:
    """One channel: its three services, opened or created with the protocol's
    settings. Create publishers and subscribers from it.

    Use :meth:`open_or_create`; the constructor is internal.
    """

    def __init__(
        self,
        node: Any,
        name: str,
        capacity: int,
        max_subscribers: int,
        pubsub: Any,
        data_event: Any,
        freed_event: Any,
        env: IoxEnv | None,
    ) -> None:
        self.name = name
        self.capacity = capacity
        self.max_subscribers = max_subscribers
        self._node = node
        self._env = env  # keeps the node's environment alive
        self._pubsub = pubsub
        self._data_event = data_event
        self._freed_event = freed_event
        self._ports: weakref.WeakSet[Publisher | Subscriber] = weakref.WeakSet()
        self._closed = False

    @classmethod
    def open_or_create(
        cls,
        env: IoxEnv | Any,
        name: str,
        capacity: int = DEFAULT_CAPACITY,
        max_subscribers: int = DEFAULT_MAX_SUBSCRIBERS,
        *,
        payload_alignment: int = PAYLOAD_ALIGNMENT,
    ) -> Channel:
        """Opens channel ``name``, creating its services if they do not exist.

        Args:
            env: An :class:`IoxEnv` (its node is used) or an iceoryx2 node.
            name: The channel name ``N``.
            capacity: C: subscriber buffer, borrowed samples and chunks per
                publisher.
            max_subscribers: S.
            payload_alignment: The service payload alignment (protocol: 1).

        Raises:
            ChannelError: When iceoryx2 refuses (for example, an existing
                service with other settings).
        """
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        if max_subscribers < 1:
            raise ValueError(f"max_subscribers must be >= 1, got {max_subscribers}")
        node = env.node if isinstance(env, IoxEnv) else env
        try:
            pubsub = (
                node.service_builder(iox2.ServiceName.new(name))
                .publish_subscribe(iox2.Slice[ctypes.c_uint8])
                .payload_alignment(iox2.Alignment.new(payload_alignment))
                .enable_safe_overflow(False)
                .subscriber_max_buffer_size(capacity)
                .subscriber_max_borrowed_samples(capacity)
                .history_size(0)
                .max_subscribers(max_subscribers)
                .max_publishers(MAX_PUBLISHERS)
                .open_or_create()
            )
            data_event = (
                node.service_builder(iox2.ServiceName.new(f"{name}/data")).event().open_or_create()
            )
            freed_event = (
                node.service_builder(iox2.ServiceName.new(f"{name}/freed")).event().open_or_create()
            )
        except Exception as e:  # iceoryx2 raises its own exception types
            raise ChannelError(
                f"cannot open or create channel {name!r}: {type(e).__name__}: {e}",
                channel=name,
            ) from e
        return cls(
            node,
            name,
            capacity,
            max_subscribers,
            pubsub,
            data_event,
            freed_event,
            env if isinstance(env, IoxEnv) else None,
        )

    def _check_open(self) -> None:
        if self._closed:
            raise ChannelError(f"channel {self.name!r} is closed", channel=self.name)

    def publisher(
        self,
        *,
        initial_max_slice_len: int = DEFAULT_INITIAL_MAX_SLICE_LEN,
        max_payload: int = DEFAULT_MAX_PAYLOAD,
    ) -> Publisher:
        """A new publisher on this channel (see :class:`Publisher`)."""
        self._check_open()
        pub = Publisher(self, initial_max_slice_len=initial_max_slice_len, max_payload=max_payload)
        self._ports.add(pub)
        return pub

    def subscriber(self) -> Subscriber:
        """A new subscriber on this channel (see :class:`Subscriber`)."""
        self._check_open()
        sub = Subscriber(self)
        self._ports.add(sub)
        return sub

    def close(self) -> None:
        """Closes every port made from this channel and drops the services."""
        if self._closed:
            return
        self._closed = True
        for port in list(self._ports):
            port.close()
        self._pubsub = self._data_event = self._freed_event = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Channel({self.name!r}, capacity={self.capacity})"


class Loan:
    """A loaned sample being written: fill :attr:`buffer`, then :meth:`send`
    (or :meth:`discard`)."""

    __slots__ = ("__weakref__", "_publisher", "_sample", "buffer", "size")

    buffer: memoryview
    """Writable bytes of the sample (exactly ``size`` long)."""

    def __init__(self, publisher: Publisher, sample: Any, size: int) -> None:
        self._publisher = publisher
        self._sample = sample
        self.size = size
        arr, _ = _bytes_at(sample.payload_ptr, size, False, sample)
        self.buffer = memoryview(arr)

    @property
    def payload_ptr(self) -> int:
        """Address of the sample's first byte (for zero-copy checks)."""
        if self._sample is None:
            raise ChannelError("the loan was already sent or discarded")
        return int(self._sample.payload_ptr)

    def send(self) -> int:
        """Sends the sample and notifies DATA.

        Returns:
            How many subscribers received it.
        """
        sample, self._sample = self._sample, None
        if sample is None:
            raise ChannelError("the loan was already sent or discarded")
        with contextlib.suppress(BufferError):
            self.buffer.release()
        pub = self._publisher
        pub._loans -= 1
        try:
            delivered = _assume_init(sample).send()
        except Exception as e:
            raise ChannelError(
                f"send failed: {type(e).__name__}: {e}", channel=pub.channel_name
            ) from e
        delivered = int(delivered)
        if pub._bells is not None:
            pub._bells.ring(delivered)  # first: the shortest way to wake Deno
        pub._notify_data()
        return delivered

    def discard(self) -> None:
        """Gives the sample back unsent. Idempotent."""
        sample, self._sample = self._sample, None
        if sample is None:
            return
        with contextlib.suppress(BufferError):
            self.buffer.release()
        self._publisher._loans -= 1
        sample.delete()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.discard()


class Publisher:
    """Sends RuntimeData on a channel.

    The publisher owns exactly ``capacity`` chunks of ``max_slice_len`` bytes
    (Static allocation). A larger message replaces the iceoryx2 port with one
    whose chunks fit (next power of two, at most ``max_payload``), but only
    once every chunk is back (every subscriber received and released all
    that was sent); until then the loan is "full" like any other, so nothing
    sent is lost or reordered.

    Every send is followed by one DATA notification. When every chunk is held
    by subscribers, :meth:`publish` asks for credit (CREDIT_REQUEST) and waits
    on ``N/freed`` with the GIL released, up to its timeout.
    """

    def __init__(
        self,
        channel: Channel,
        *,
        initial_max_slice_len: int = DEFAULT_INITIAL_MAX_SLICE_LEN,
        max_payload: int = DEFAULT_MAX_PAYLOAD,
    ) -> None:
        if initial_max_slice_len < 1:
            raise ValueError("initial_max_slice_len must be >= 1")
        if max_payload < HEADER_LEN:
            raise ValueError(f"max_payload must be >= {HEADER_LEN}")
        # The port's delivery counter (header offset 12), stamped on every
        # send; readers count its gaps as losses. A restarted runner seeds it
        # from its state file, so its readers see no false gap.
        self.delivery = 0
        # Called with True when a loan starts waiting for a reader to free a
        # chunk and with False when the wait ends (the runner's status: time
        # blocked by backpressure is not the node's own processing time).
        self.on_wait: Callable[[bool], None] | None = None
        self.channel_name = channel.name
        self.capacity = channel.capacity
        self.max_payload = max_payload
        self._channel = channel
        self._seq = 0
        self._loans = 0
        self._port: Any = None
        self._bells = BellRinger(channel._env.root, channel.name) if channel._env else None
        self.max_slice_len = min(initial_max_slice_len, max_payload)
        try:
            self._port = self._create_port(self.max_slice_len)
            self._notifier = channel._data_event.notifier_builder().create()
            self._freed = channel._freed_event.listener_builder().create()
        except Exception as e:
            raise ChannelError(
                f"cannot create a publisher: {type(e).__name__}: {e}",
                channel=channel.name,
            ) from e

    def _create_port(self, slice_len: int) -> Any:
        # Static, not PowerOfTwo: a growing data segment never runs out of
        # chunks (iceoryx2 adds a segment with more chunks instead), which
        # would defeat the credits and block send() on a full subscriber.
        # The port may loan every chunk at once so that _grow can probe;
        # try_loan keeps callers to MAX_LOANED_SAMPLES open loans.
        return (
            self._channel._pubsub.publisher_builder()
            .initial_max_slice_len(slice_len)
            .allocation_strategy(iox2.AllocationStrategy.Static)
            .max_loaned_samples(max(self.capacity, MAX_LOANED_SAMPLES))
            .backpressure_strategy(iox2.BackpressureStrategy.RetryUntilDelivered)
            .override_sample_preallocation(self.capacity)
            .create()
        )

    def _update_connections(self) -> None:
        # Chunks held by subscribers that are gone (closed, or dead nodes
        # that were cleaned up) come back only here; send() does it too, but
        # loan() does not. A failed connection must not fail the loan.
        with contextlib.suppress(Exception):
            self._port.update_connections()

    def _all_chunks_back(self) -> bool:
        """True when every chunk is free: every subscriber received and
        released everything this port sent. Probes by loaning them all."""
        self._update_connections()
        probe: list[Any] = []
        try:
            for _ in range(self.capacity):
                try:
                    probe.append(_loan_slice(self._port, 1))
                except iox2.LoanError as e:
                    if _loan_error_kind(e) == "OutOfMemory":
                        return False
                    raise ChannelError(
                        f"growth probe failed: {_loan_error_kind(e)}", channel=self.channel_name
                    ) from e
            return True
        finally:
            for sample in probe:
                sample.delete()

    def _grow(self, n: int) -> bool:
        """Replaces the port with one whose chunks hold ``n`` bytes, once
        every chunk of the old one is back; False (the caller answers
        "full") while any is out. Deleting a port whose samples are still
        queued loses them: a subscriber that has not connected to the port
        yet (it connects when it receives) never sees them."""
        if self._loans:
            raise ChannelError(
                f"a {n}-byte loan needs bigger chunks, but {self._loans} loan(s) are open",
                channel=self.channel_name,
            )
        if not self._all_chunks_back():
            return False
        new_len = min(max(_next_pow2(n), self.max_slice_len), self.max_payload)
        old = self._port
        self._port = None
        old.delete()  # first: max_publishers is 2, and it holds no chunk
        try:
            self._port = self._create_port(new_len)
        except Exception as e:
            self._port = self._create_port(self.max_slice_len)
            raise ChannelError(
                f"cannot create {new_len}-byte chunks: {type(e).__name__}: {e}",
                channel=self.channel_name,
            ) from e
        self.max_slice_len = new_len
        return True

    def _notify_data(self) -> None:
        self._notifier.notify_with_custom_event_id(_EVENT_DATA)

    def try_loan(self, n: int) -> Loan | None:
        """Loans an ``n``-byte sample, or returns None when the channel is
        full: every chunk is in use or, when ``n`` needs bigger chunks, any
        chunk still is (the port is replaced only once all are back).

        Raises:
            ChannelError: ``n`` exceeds ``max_payload``, too many open loans,
                or the publisher is closed.
        """
        if self._port is None:
            raise ChannelError("the publisher is closed", channel=self.channel_name)
        if n < 0:
            raise ValueError(f"loan size must be >= 0, got {n}")
        if n > self.max_payload:
            raise ChannelError(
                f"a {n}-byte sample exceeds max_payload ({self.max_payload})",
                channel=self.channel_name,
            )
        if self._loans >= MAX_LOANED_SAMPLES:
            raise ChannelError(
                f"loan of {n} bytes failed: ExceedsMaxLoans ({MAX_LOANED_SAMPLES} are open)",
                channel=self.channel_name,
            )
        if n > self.max_slice_len and not self._grow(n):
            return None  # chunks are still out: "full" until they are back
        try:
            sample = _loan_slice(self._port, n)
        except iox2.LoanError as e:
            kind = _loan_error_kind(e)
            if kind != "OutOfMemory":
                raise ChannelError(
                    f"loan of {n} bytes failed: {kind}", channel=self.channel_name
                ) from e
            self._update_connections()
            try:
                sample = _loan_slice(self._port, n)
            except iox2.LoanError as e:
                if _loan_error_kind(e) == "OutOfMemory":
                    return None
                raise ChannelError(
                    f"loan of {n} bytes failed: {_loan_error_kind(e)}", channel=self.channel_name
                ) from e
        self._loans += 1
        return Loan(self, sample, n)

    def loan(self, n: int, timeout: float = 5.0, stop: Callable[[], bool] | None = None) -> Loan:
        """Loans an ``n``-byte sample, waiting up to ``timeout`` seconds for a
        subscriber to free a chunk, or until ``stop()`` is true (checked at
        least every credit request interval, 20 ms).

        Raises:
            BackpressureTimeoutError: No chunk came back within ``timeout``.
            PublishCancelledError: ``stop()`` became true while waiting.
        """
        loan = self.try_loan(n)
        if loan is not None:
            return loan
        on_wait = self.on_wait
        if on_wait is None:
            return self._wait_for_loan(n, timeout, stop)
        on_wait(True)
        try:
            return self._wait_for_loan(n, timeout, stop)
        finally:
            on_wait(False)

    def _wait_for_loan(self, n: int, timeout: float, stop: Callable[[], bool] | None) -> Loan:
        deadline = time.monotonic() + timeout
        next_request = 0.0  # request now
        backoff = 0.0
        while True:
            now = time.monotonic()
            remaining = deadline - now
            if remaining <= 0:
                raise BackpressureTimeoutError(
                    f"channel {self.channel_name!r}: no subscriber freed a sample within {timeout} s "
                    "(subscriber not consuming: dead or stalled)",
                    timeout_s=timeout,
                    channel=self.channel_name,
                )
            if stop is not None and stop():
                # A stopping runner must not wait for a reader that may be
                # dead (its Deno process killed with -9): give up now.
                raise PublishCancelledError(
                    f"channel {self.channel_name!r}: the publish was given up because "
                    "its publisher is stopping",
                    channel=self.channel_name,
                )
            if now >= next_request:
                self._notifier.notify_with_custom_event_id(_EVENT_CREDIT_REQUEST)
                next_request = now + _REQUEST_INTERVAL_S
            # Blocks with the GIL released; drains the FREED events.
            woke = self._freed.timed_wait(_duration(min(remaining, next_request - now)))
            loan = self.try_loan(n)
            if loan is not None:
                return loan
            if woke:
                # A FREED came but no chunk did: with fan-out the answering
                # subscriber's release did not free the chunk (another one
                # still holds it), and that one may have answered earlier and
                # will not answer its release. A new request re-arms every
                # subscriber; the growing pause keeps an idle subscriber
                # (which answers at once) from ping-ponging with us.
                next_request = min(next_request, time.monotonic() + backoff)
                backoff = min(max(backoff * 2, _MIN_BACKOFF_S), _REQUEST_INTERVAL_S)

    def _sequence(self, rd: RuntimeData) -> int:
        seq = rd.sequence
        if not seq:
            self._seq += 1
            seq = self._seq
        return seq

    def allocate(
        self, like: RuntimeData, timeout: float = 5.0, stop: Callable[[], bool] | None = None
    ) -> RuntimeData:
        """A message shaped like ``like`` (kind, metadata, payload shape and
        dtype) whose payload is a writable view of a sample loaned from this
        publisher: fill it in place (``out=`` numpy writes, slices), then
        :meth:`publish` it and nothing is copied. Its session id, sequence and
        timestamp are taken when it is published; metadata set on it before
        then (``frame_number``...) is sent too.

        Releasing it unsent (``release()``, ``with``, or dropping it) gives
        the sample back. At most ``MAX_LOANED_SAMPLES`` can be open at once.
        Do not touch its payload after publishing: the memory is the
        subscribers' then.

        Args:
            like: Any message of the wanted kind and size (only its metadata
                and payload shape are read), e.g. the input of a filter.
            timeout: Seconds to wait for a free chunk.
            stop: Gives the wait up when it returns true (as :meth:`loan`).

        Raises:
            ValueError: For text and json (their payload must be valid
                UTF-8 or JSON, so build them and :meth:`publish`).
            BackpressureTimeoutError: No chunk freed within ``timeout``.
            ChannelError: Too many open loans, or too big.

        Example:
            >>> from remotemedia_multiprocess._iox import new_isolated_env, remove_env_files
            >>> env = new_isolated_env()
            >>> ch = Channel.open_or_create(env, "alloc")
            >>> sub, pub = ch.subscriber(), ch.publisher()
            >>> out = pub.allocate(RuntimeData.tensor(np.empty((2, 3), np.float32)))
            >>> out.payload[:] = 1.5
            >>> pub.publish(out)
            >>> with sub.receive(timeout=1.0) as rd:
            ...     float(rd.payload.sum())
            9.0
            >>> ch.close(); env.close(); remove_env_files(env)
        """
        n, header = like._allocation_header()
        loan = self.loan(HEADER_LEN + n, timeout, stop)
        try:
            loan.buffer[:HEADER_LEN] = header
            return RuntimeData.decode(loan.buffer, loan, loan.discard)
        except BaseException:
            loan.discard()
            raise

    def _own_loan(self, rd: RuntimeData) -> Loan | None:
        """The open loan of this publisher that ``rd`` was allocated in."""
        lease = rd._lease
        owner = None if lease is None else lease.owner
        if isinstance(owner, Loan) and owner._publisher is self and owner._sample is not None:
            return owner
        return None

    def _send_allocated(self, rd: RuntimeData) -> bool:
        """Sends ``rd`` in place when it is an open allocation of this
        publisher: rewrites its header (metadata may have changed) and sends
        the loan. False otherwise, and when its payload is no longer the
        loan's (replaced by another array): the loan is given back then."""
        loan = self._own_loan(rd)
        if loan is None:
            return False
        n = loan.size - HEADER_LEN
        payload = rd.payload
        if payload.nbytes != n or (n and _address_of(payload) != loan.payload_ptr + HEADER_LEN):
            loan.discard()
            return False
        ts = rd.timestamp_ns
        loan.buffer[:HEADER_LEN] = rd._header(self._sequence(rd), ts, n)
        self._stamp_delivery(loan.buffer)
        if not ts:
            _stamp_now(loan.buffer)
        loan.send()
        return True

    @property
    def next_delivery(self) -> int:
        """The delivery counter the next send will stamp."""
        return self.delivery % _DELIVERY_WRAP + 1

    def _stamp_delivery(self, buffer: memoryview) -> None:
        self.delivery = self.next_delivery
        _DELIVERY.pack_into(buffer, _DELIVERY_OFFSET, self.delivery)

    def publish(
        self, rd: RuntimeData, timeout: float = 5.0, stop: Callable[[], bool] | None = None
    ) -> None:
        """Encodes ``rd`` into a loaned sample (one memmove for the payload)
        and sends it; a message from :meth:`allocate` is sent in place. A zero
        ``sequence`` is stamped with this publisher's counter and a zero
        ``timestamp_ns`` with CLOCK_MONOTONIC, in the header only. A wait for
        space ends early when ``stop()`` is true (see :meth:`loan`).

        Raises:
            BackpressureTimeoutError: The channel stayed full for ``timeout`` s.
            PublishCancelledError: ``stop()`` became true while waiting for space.
        """
        if self._send_allocated(rd):
            return
        loan = self.loan(rd.encoded_size(), timeout, stop)
        self._send(loan, rd)

    def try_publish(self, rd: RuntimeData) -> bool:
        """Like :meth:`publish` but never waits: False when the channel is full."""
        if self._send_allocated(rd):
            return True
        loan = self.try_loan(rd.encoded_size())
        if loan is None:
            return False
        self._send(loan, rd)
        return True

    def _send(self, loan: Loan, rd: RuntimeData) -> None:
        try:
            rd.encode_into(loan.buffer, sequence=self._sequence(rd))
        except BaseException:
            loan.discard()
            raise
        self._stamp_delivery(loan.buffer)
        if not rd.timestamp_ns:
            _stamp_now(loan.buffer)
        loan.send()

    def send_wire(
        self,
        data: memoryview | bytes | bytearray,
        timeout: float = 5.0,
        stop: Callable[[], bool] | None = None,
    ) -> None:
        """Forwards a message already in its wire format (header included),
        as a bridge received it: one copy into a loaned sample, this
        publisher's delivery counter stamped over the sender's (readers count
        this port's gaps), everything else unchanged. Waits for space like
        :meth:`publish`.

        Raises:
            ValueError: ``data`` is shorter than a header.
            BackpressureTimeoutError: The channel stayed full for ``timeout`` s.
            PublishCancelledError: ``stop()`` became true while waiting for space.
        """
        mv = _wire_view(data)
        self._send_wire(self.loan(len(mv), timeout, stop), mv)

    def try_send_wire(self, data: memoryview | bytes | bytearray) -> bool:
        """Like :meth:`send_wire` but never waits: False when the channel is full."""
        mv = _wire_view(data)
        loan = self.try_loan(len(mv))
        if loan is None:
            return False
        self._send_wire(loan, mv)
        return True

    def send_filled_wire(self, loan: Loan) -> None:
        """Sends a loan this publisher made and the caller filled with a whole
        wire message (a bridge that copies a message into place piece by
        piece): stamps this publisher's delivery counter, then sends.

        Raises:
            ValueError: The loan is shorter than a header (it is discarded).
        """
        if loan.size < _DELIVERY_OFFSET + _DELIVERY.size:
            loan.discard()
            raise ValueError(f"a {loan.size}-byte loan cannot hold a message header")
        self._stamp_delivery(loan.buffer)
        loan.send()

    def _send_wire(self, loan: Loan, mv: memoryview) -> None:
        try:
            loan.buffer[:] = mv
        except BaseException:
            loan.discard()
            raise
        self._stamp_delivery(loan.buffer)
        loan.send()

    def publish_bytes(self, data: bytes | bytearray | memoryview, timeout: float = 5.0) -> None:
        """Sends raw bytes as a sample, unchecked (tests inject bad headers)."""
        mv = memoryview(data).cast("B")
        loan = self.loan(len(mv), timeout)
        try:
            loan.buffer[:] = mv
        except BaseException:
            loan.discard()
            raise
        loan.send()

    def close(self) -> None:
        """Drops the iceoryx2 ports. Samples already sent stay readable."""
        port, self._port = self._port, None
        if port is None:
            return
        port.delete()
        self._notifier.delete()
        self._freed.delete()
        if self._bells is not None:
            self._bells.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RawSample:
    """A received sample as raw bytes (header included), for tests."""

    __slots__ = ("_release", "data", "payload_ptr")

    data: memoryview
    """The whole sample, read-only."""

    def __init__(self, data: memoryview, payload_ptr: int, release: Any) -> None:
        self.data = data
        self.payload_ptr = payload_ptr
        self._release = release

    def release(self) -> None:
        """Gives the sample back. Idempotent."""
        release, self._release = self._release, None
        if release is not None:
            with contextlib.suppress(BufferError):  # views made from data stay valid... until now
                self.data.release()
            release()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class Subscriber:
    """Receives RuntimeData from a channel, zero copy.

    A received message's payload is a read-only view of the shared memory
    sample. Release it (``release()``, ``with``, or dropping every reference
    to the message and its views) to give the chunk back; at most
    ``capacity`` messages can be held at once.

    :attr:`listener` is the ``N/data`` listener; a caller that waits on it
    itself (a WaitSet) must call :meth:`handle_events` after each wake-up.
    """

    def __init__(self, channel: Channel) -> None:
        self.channel_name = channel.name
        self.capacity = channel.capacity
        # Reentrant: a message garbage-collected while the lock is held releases
        # its sample through the same lock.
        self._lock = threading.RLock()
        self._released_since_answer = False
        self._answer_pending = False
        self._held = 0
        # The last delivery counter seen (0: none yet) and the messages its
        # gaps say this reader missed. A restarted runner seeds ``delivery``
        # with the last one its previous process finished.
        self.delivery = 0
        self.lost = 0
        self._port: Any = None
        try:
            self._port = channel._pubsub.subscriber_builder().create()
            self.listener: Any = channel._data_event.listener_builder().create()
            self._freed_notifier = channel._freed_event.notifier_builder().create()
        except Exception as e:
            raise ChannelError(
                f"cannot create a subscriber: {type(e).__name__}: {e}",
                channel=channel.name,
            ) from e

    # -- credits -------------------------------------------------------------

    def _answer(self) -> None:
        self._freed_notifier.notify_with_custom_event_id(_EVENT_FREED)

    def _credit_request(self) -> None:
        with self._lock:
            port = self._port
            idle = self._held == 0 and (port is None or not port.has_samples())
            if self._released_since_answer or idle:
                self._released_since_answer = False
                answer = True
            else:
                self._answer_pending = True
                answer = False
        if answer:
            self._answer()

    def _released(self) -> None:
        with self._lock:
            self._held -= 1
            self._released_since_answer = True
            answer = self._answer_pending
            if answer:
                self._answer_pending = False
                self._released_since_answer = False
        if answer:
            self._answer()

    def _release_sample(self, sample: Any) -> None:
        try:
            sample.delete()
        finally:
            self._released()

    def _handle(self, events: Any) -> None:
        if CREDIT_REQUEST in _event_values(events):
            self._credit_request()

    def handle_events(self) -> None:
        """Drains ``N/data`` notifications without blocking and answers a
        CREDIT_REQUEST among them.

        Drains until a drain finds nothing: in iceoryx2 0.10 a notification
        that lands while the listener drains can leave it marked "notified"
        with no wake-up byte in its socket, and until the next drain every
        later notification is then coalesced into that missing byte, so a
        WaitSet never wakes for them (seen: a runner asleep with samples
        queued, its publisher timing out). A drain that finds nothing leaves
        no such mark. Blocking waits on the listener itself are not affected
        (they drain a marked listener at once).
        """
        if self._port is None:
            return
        for _ in range(_MAX_DRAINS):
            events = self.listener.try_wait()
            if not events:
                return
            self._handle(events)

    # -- receiving -------------------------------------------------------------

    def _take(self) -> Any:
        if self._port is None:
            raise ChannelError("the subscriber is closed", channel=self.channel_name)
        try:
            sample = self._port.receive()
        except iox2.ReceiveError as e:
            raise ChannelError(
                f"cannot receive: {_loan_error_kind(e)} (release held messages; at most "
                f"{self.capacity} can be held)",
                channel=self.channel_name,
            ) from e
        if sample is not None:
            with self._lock:
                self._held += 1
        return sample

    def _decode(self, sample: Any) -> RuntimeData:
        n = _sample_len(sample)
        arr, holder = _bytes_at(sample.payload_ptr, n, True, None)
        try:
            rd = RuntimeData.decode(arr, sample, lambda: self._release_sample(sample))
        except WireFormatError:
            self._release_sample(sample)
            raise
        got = _DELIVERY.unpack_from(arr, _DELIVERY_OFFSET)[0]
        if got:
            if self.delivery:
                self.lost += _delivery_gap(self.delivery, got)
            self.delivery = got
        if holder is not None:
            holder.keep = rd._lease  # views keep the sample until released
        return rd

    def _take_checked(self) -> Any:
        """The next sample or None. Drains ``N/data`` only when idle or
        behind (a publisher can only be waiting for credit then): skipping
        the drain on the common path saves a system call per message.

        When idle, it takes again after draining: a sample that arrived after
        the first look had its notification drained, and a caller that waits
        next (a WaitSet) would not be woken for it.
        """
        sample = self._take()
        if sample is None:
            self.handle_events()
            return self._take()
        self._drain_if_behind()
        return sample

    def _drain_if_behind(self) -> None:
        """After a take: with more samples queued, a publisher may be waiting
        for credit, so answer it now."""
        if self._port.has_samples():
            self.handle_events()

    def try_receive(self) -> RuntimeData | None:
        """The next message, or None when none is waiting.

        Raises:
            WireFormatError: The sample is not a valid message (it is released;
                the subscriber keeps working).
            ChannelError: ``capacity`` messages are already held.
        """
        sample = self._take_checked()
        if sample is None:
            return None
        return self._decode(sample)

    def _wait(self, deadline: float | None) -> bool:
        """Waits for a notification (GIL released). False once past deadline."""
        if deadline is None:
            self._handle(self.listener.timed_wait(_MAX_WAIT_SLICE))
            return True
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        self._handle(self.listener.timed_wait(_duration(min(remaining, _MAX_WAIT_SLICE_S))))
        return True

    def receive(self, timeout: float | None = None) -> RuntimeData | None:
        """The next message, waiting up to ``timeout`` seconds (forever when
        None) with the GIL released. None when the timeout passes.

        Raises:
            WireFormatError: As :meth:`try_receive`.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        return self._receive_until(deadline, lambda: False)

    def _receive_until(
        self, deadline: float | None, stop: Callable[[], bool]
    ) -> RuntimeData | None:
        """The next message, or None once past ``deadline`` or, when nothing
        is queued, once ``stop()`` is true (checked after every wake-up)."""
        while True:
            sample = self._take()
            if sample is not None:
                self._drain_if_behind()
                return self._decode(sample)
            if stop() or not self._wait(deadline):  # the wait drains N/data itself
                return None

    def receive_raw(self, timeout: float | None = None) -> RawSample | None:
        """The next sample as raw bytes, not decoded (for tests)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            sample = self._take_checked()
            if sample is not None:
                n = _sample_len(sample)
                arr, _ = _bytes_at(sample.payload_ptr, n, True, sample)
                return RawSample(
                    memoryview(arr),
                    int(sample.payload_ptr),
                    lambda s=sample: self._release_sample(s),
                )
            if not self._wait(deadline):
                return None

    def has_samples(self) -> bool:
        """True when a message is waiting."""
        return self._port is not None and bool(self._port.has_samples())

    @property
    def held(self) -> int:
        """How many received messages are not released yet."""
        return self._held

    def close(self) -> None:
        """Drops the iceoryx2 ports. Release held messages first."""
        port, self._port = self._port, None
        if port is None:
            return
        port.delete()
        self.listener.delete()
        self._freed_notifier.delete()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Subscriber:
        return self

    def __next__(self) -> RuntimeData:
        rd = self.receive()
        assert rd is not None  # receive() without timeout only returns data
        return rd
