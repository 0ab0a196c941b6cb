"""Bridges: one channel carried from one host to another over Zenoh.

An edge ``a.out -> b.in`` whose nodes run on two hosts keeps its channel
``a.out`` on both: on a's host an **egress** reads it like any subscriber and
puts each message on Zenoh key ``rmp/<session>/ch/<channel>``; on b's host an
**ingress** receives them and publishes them into that host's channel of the
same name (its own isolation). Messages cross as their wire format, header
included (docs/wire-format.md): nothing is decoded or re-encoded.

Protocol
========

Keys (``_zenoh.data_key`` / ``_zenoh.credit_key``):

- ``rmp/<session>/ch/<channel>``: one sample per message. Payload: the whole
  wire message. Attachment: the bridge sequence, ``<Q`` (u64 little endian),
  1, 2, 3, ... per egress. Reliable, ``CongestionControl.BLOCK``.
  A message over ``FRAGMENT_THRESHOLD`` (2 MiB) crosses as pieces of
  ``FRAGMENT_BYTES`` (1 MiB) in order, each with attachment ``<QQQ``
  (sequence, offset, message size), so copies overlap the wire. The ingress
  copies the pieces into a loaned chunk (or, when messages are queued or no
  chunk is free, a buffer that then queues as one message); a message whose
  pieces do not all arrive in place is counted lost once and dropped.
- ``rmp/<session>/ch/<channel>/credit``: payload ``<Q``, the bridge sequence
  of the last message the ingress has handled (published into its channel, or
  refused as invalid): everything up to it is off the wire. Reliable,
  ``BLOCK``.

Egress (a's host), one thread:

1. Waits until Zenoh reports a matching subscriber (the ingress) on the data
   key and ``sent - credited < C`` (C: the channel capacity). Nothing is
   taken before the ingress exists, so nothing is put into the void.
2. Takes the next sample (``Subscriber.receive_raw`` in short slices; idle it
   sleeps in the listener's wait), checks the upstream delivery counter (u32
   at header offset 12; a jump is a loss between a's publisher and the
   egress, reported as ``on_lost(channel, count)``; 0 means unstamped), copies
   the message out, releases the sample and puts the copy with the next
   bridge sequence.
3. While the window is full it takes nothing: a's channel fills and a's
   publisher waits for a chunk and fails with ``BackpressureTimeoutError`` at
   its bound, exactly as with a slow local reader.

Credits: the egress subscribes to the credit key and keeps the largest
sequence seen as ``credited`` (never more than ``sent``), so a lost or
reordered credit costs nothing once a later one arrives. Crediting a sequence rather than counting messages
also keeps the window whole when a message is lost on the wire (a count
would never reach ``sent`` again, and each loss would shrink the window by
one for good).

Ingress (b's host): a Zenoh subscriber on the data key. For each sample, in
order:

1. Checks the bridge sequence: a jump is a loss on the wire (Zenoh's own
   flow control was measured to drop samples silently after a 5 s block),
   reported as ``on_lost(channel, count)``. A sequence 1 is a new egress.
2. Forwards the bytes with ``Publisher.try_send_wire``: its own delivery
   counter is stamped over the upstream one, so b's readers count the
   ingress's gaps (none) while the wire's gaps are counted here. The fast
   path runs in the Zenoh callback itself when nothing is queued and a chunk
   is free. Otherwise (b's reader is slower) the message joins a queue that
   the ingress's thread drains with ``send_wire``, waiting as long as it takes
   (a ``BackpressureTimeoutError`` there only means "still waiting"; it says
   once on stderr that the reader on this host is not consuming). Nothing is
   dropped; once something is queued every later message queues behind it.
   The Zenoh callback never waits (a blocked callback stops every key of
   the session).
3. After each message is handled it puts that message's bridge sequence on
   the credit key (coalesced: a value already put is not put again). Credits
   wait while Zenoh reports no credit subscriber (the egress's), so the one
   that reopens a full window is never put into the void.

Bounds: the egress has at most C messages unacknowledged, so the ingress
queue never holds more than C (its memory is bounded). End to end, an edge
that crosses hosts holds at most C messages in a's channel, C on the wire or
in the ingress queue and C in b's channel: a stalled reader on b makes a's
publisher time out after 3C messages.

Copies: Zenoh 1.10.2's Python ``ZBytes`` accepts only ``bytes``/``bytearray``
and copies them, and has no buffer protocol. So the egress copies the sample
out (``bytes(view)``) and Zenoh copies that again; the ingress gets the
payload with ``to_bytes()`` (one copy, joining fragments) and copies it into
the loaned chunk with one memoryview assignment.

A host that disappears fails the whole session (``HostLostError``), so
neither bridge is restarted within a session; a new egress starts again at
sequence 1, which the ingress takes as a restart, not a loss.
"""

from __future__ import annotations

import contextlib
import struct
import sys
import threading
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import zenoh
from zenoh.handlers import Callback

from ..channel import (
    _DELIVERY,
    _DELIVERY_OFFSET,
    Channel,
    Loan,
    Publisher,
    Subscriber,
    _delivery_gap,
)
from ..errors import BackpressureTimeoutError, ChannelError, PublishCancelledError
from ._zenoh import credit_key, data_key

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["Egress", "Ingress"]

_SEQ = struct.Struct("<Q")
_CREDIT = struct.Struct("<Q")
# A fragment's attachment: bridge sequence, offset in the message, message size.
_FRAGMENT = struct.Struct("<QQQ")
# Messages larger than FRAGMENT_THRESHOLD cross as FRAGMENT_BYTES pieces, so
# that copying one piece overlaps the wire carrying the one before (measured
# at 16 MiB: 24.5-37 ms of copies whole, 11-12 ms in 1 MiB pieces; nothing
# gained at 1 MiB, and a 1 MiB payload plus its header in two pieces lost).
FRAGMENT_BYTES = 1 << 20
FRAGMENT_THRESHOLD = 2 << 20

# How long the egress's wait for a sample lasts before it looks at its stop
# flag again: bounds close(), costs a few wake-ups a second when idle.
_RECEIVE_SLICE_S = 0.25
# The ingress thread's wait for a chunk: a timeout only repeats the wait.
_SEND_SLICE_S = 1.0


def _report_error(where: str) -> Callable[[BaseException], None]:
    def report(e: BaseException) -> None:
        print(f"rmp {where}: {type(e).__name__}: {e}", file=sys.stderr, flush=True)

    return report


def _undeclare(entity: Any) -> None:
    """Undeclares a Zenoh entity; one that is gone already (closed session,
    or in use by a put in another thread) is left to the session."""
    if entity is not None:
        with contextlib.suppress(Exception):
            entity.undeclare()


def _matching_listener(publisher: Any, on_change: Callable[[bool], None]) -> Any:
    """Calls ``on_change(matching)`` from Zenoh's thread whenever subscribers
    of ``publisher``'s key appear or go, and once now with the current state."""
    listener = publisher.declare_matching_listener(
        Callback(lambda status: on_change(bool(status.matching)), indirect=False)
    )
    on_change(bool(publisher.matching_status.matching))
    return listener


class Egress:
    """iceoryx2 subscriber of ``channel`` -> Zenoh key ``data_key(session_id, channel.name)``.

    Starts its thread at once. See the module docstring for the protocol.

    Args:
        zsession: The host's Zenoh session.
        session_id: The pipeline session (the key's second chunk).
        channel: The channel on this host (its capacity is the window).
        on_lost: Called as ``on_lost(channel_name, count)`` when the upstream
            delivery counter jumps (messages lost before the egress).
        on_error: Called with the exception that ended the thread (default:
            printed on stderr).
    """

    sent: int
    """Messages put on Zenoh."""
    credited: int
    """The largest bridge sequence the ingress reported handled."""
    lost: int
    """Messages the upstream delivery counter says never reached the egress."""

    def __init__(
        self,
        zsession: zenoh.Session,
        session_id: str,
        channel: Channel,
        *,
        on_lost: Callable[[str, int], None] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> None:
        self.channel_name = channel.name
        self.capacity = channel.capacity
        self.key = data_key(session_id, channel.name)
        self.sent = 0
        self.credited = 0
        self.lost = 0
        self._on_lost = on_lost
        self._on_error = on_error or _report_error(f"egress {channel.name!r}")
        self._delivery = 0
        self._stop = False
        self._matched = False
        self._cond = threading.Condition()
        self._credits: Any = None
        self._matching: Any = None
        self._sub: Subscriber | None = channel.subscriber()
        self._pub: Any = None
        try:
            self._pub = zsession.declare_publisher(
                self.key,
                congestion_control=zenoh.CongestionControl.BLOCK,
                reliability=zenoh.Reliability.RELIABLE,
            )
            self._credits = zsession.declare_subscriber(
                credit_key(session_id, channel.name), Callback(self._on_credit, indirect=False)
            )
            self._matching = _matching_listener(self._pub, self._on_matching)
        except BaseException:
            self._release_ports()
            _undeclare(self._credits)
            raise
        self._thread = threading.Thread(
            target=self._run, name=f"rmp-egress-{channel.name}", daemon=True
        )
        self._thread.start()

    # -- Zenoh callbacks (Zenoh's thread; never wait) --------------------------

    def _on_credit(self, sample: Any) -> None:
        payload = sample.payload.to_bytes()
        if len(payload) != _CREDIT.size:
            return
        (count,) = _CREDIT.unpack(payload)
        with self._cond:
            # Above ``sent`` it cannot be ours (a stale credit of an earlier
            # writer on this key): it would widen the window past C.
            count = min(count, self.sent)
            if count > self.credited:
                self.credited = count
                self._cond.notify_all()

    def _on_matching(self, matching: bool) -> None:
        with self._cond:
            self._matched = matching
            self._cond.notify_all()

    # -- the thread --------------------------------------------------------------

    def _can_send(self) -> bool:
        return self._matched and self.sent - self.credited < self.capacity

    def _run(self) -> None:
        sub, pub = self._sub, self._pub
        assert sub is not None and pub is not None
        try:
            while True:
                with self._cond:
                    while not self._stop and not self._can_send():
                        self._cond.wait()
                    if self._stop:
                        return
                raw = sub.receive_raw(timeout=_RECEIVE_SLICE_S)
                if raw is None:
                    continue
                if len(raw.data) > FRAGMENT_THRESHOLD:
                    self._put_fragments(raw)
                    continue
                try:
                    self._check_delivery(raw.data)
                    payload = bytes(raw.data)
                finally:
                    raw.release()  # the copy is ours: a's publisher gets its chunk back now
                with self._cond:
                    self.sent += 1
                    seq = self.sent
                pub.put(payload, attachment=_SEQ.pack(seq))
        except BaseException as e:  # noqa: BLE001 - reported: the thread is ending
            if not self._stop:
                self._on_error(e)
        finally:
            self._release_ports()

    def _put_fragments(self, raw: Any) -> None:
        """Puts a message over FRAGMENT_THRESHOLD as FRAGMENT_BYTES pieces (attachment
        ``<QQQ``: sequence, offset, size); the sample is released after the
        last piece is copied out."""
        pub = self._pub
        assert pub is not None
        try:
            data = raw.data
            total = len(data)
            self._check_delivery(data)
            with self._cond:
                self.sent += 1
                seq = self.sent
            for offset in range(0, total, FRAGMENT_BYTES):
                piece = bytes(data[offset : offset + FRAGMENT_BYTES])
                pub.put(piece, attachment=_FRAGMENT.pack(seq, offset, total))
        finally:
            raw.release()

    def _check_delivery(self, data: memoryview) -> None:
        if len(data) < _DELIVERY_OFFSET + _DELIVERY.size:
            return  # not a message; its reader will say so
        got = _DELIVERY.unpack_from(data, _DELIVERY_OFFSET)[0]
        if not got:
            return
        gap = _delivery_gap(self._delivery, got) if self._delivery else 0
        self._delivery = got
        if gap:
            self.lost += gap
            if self._on_lost is not None:
                self._on_lost(self.channel_name, gap)

    def _release_ports(self) -> None:
        pub, self._pub = self._pub, None
        _undeclare(pub)
        sub, self._sub = self._sub, None
        if sub is not None:
            sub.close()

    def close(self, timeout: float = 2.0) -> None:
        """Stops the thread and undeclares the Zenoh entities, within
        ``timeout`` seconds. A message taken but not yet put is dropped (the
        session is ending). A thread still blocked in a put then (Zenoh waits
        up to 5 s for a congested link) cleans up after itself when it ends."""
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        _undeclare(self._matching)
        _undeclare(self._credits)
        self._thread.join(timeout)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Ingress:
    """Zenoh key ``data_key(session_id, channel.name)`` -> iceoryx2 publisher
    of ``channel`` (this host's isolation).

    See the module docstring for the protocol.

    Args:
        zsession: The host's Zenoh session.
        session_id: The pipeline session (the key's second chunk).
        channel: The channel on this host.
        max_payload: The largest message its publisher loans (as the
            channel's writer on the other host).
        on_lost: Called as ``on_lost(channel_name, count)`` when the bridge
            sequence jumps (messages lost on the wire).
        on_error: Called with a message this channel refuses (too big, not
            a message) or an error of the thread (default: printed on
            stderr). Refused messages are counted and credited.
    """

    delivered: int
    """Messages published into the channel on this host."""
    rejected: int
    """Messages refused (reported to ``on_error``)."""
    lost: int
    """Messages the bridge sequence says were lost on the wire."""

    def __init__(
        self,
        zsession: zenoh.Session,
        session_id: str,
        channel: Channel,
        *,
        max_payload: int,
        on_lost: Callable[[str, int], None] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> None:
        self.channel_name = channel.name
        self.key = data_key(session_id, channel.name)
        self.delivered = 0
        self.rejected = 0
        self.lost = 0
        self._on_lost = on_lost
        self._on_error = on_error or _report_error(f"ingress {channel.name!r}")
        self._last_seq = 0
        self._stop = False
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        # Messages waiting for a chunk (bridge sequence, bytes), oldest
        # first; served only by the thread.
        self._queue: deque[tuple[int | None, bytes | bytearray]] = deque()
        self._handled_seq = 0  # the bridge sequence of the last message handled
        # The message whose fragments are arriving: (sequence, size, bytes so
        # far, where they go: a loan of the channel, or a buffer to queue).
        self._partial: tuple[int, int, int, Loan | bytearray] | None = None
        self._credit_matched = False
        self._credit_put = 0  # the last sequence put on the credit key
        self._pub: Publisher | None = channel.publisher(max_payload=max_payload)
        self._credit_pub: Any = None
        self._credit_matching: Any = None
        self._sub: Any = None
        try:
            self._credit_pub = zsession.declare_publisher(
                credit_key(session_id, channel.name),
                congestion_control=zenoh.CongestionControl.BLOCK,
                reliability=zenoh.Reliability.RELIABLE,
            )
            self._credit_matching = _matching_listener(self._credit_pub, self._on_credit_matching)
            self._thread = threading.Thread(
                target=self._run, name=f"rmp-ingress-{channel.name}", daemon=True
            )
            self._thread.start()
            self._sub = zsession.declare_subscriber(
                self.key, Callback(self._on_sample, indirect=False)
            )
        except BaseException:
            self.close()
            raise

    def _stopping(self) -> bool:
        return self._stop

    # -- Zenoh callbacks (Zenoh's thread; never wait) --------------------------

    def _on_sample(self, sample: Any) -> None:
        attachment = sample.attachment
        seq = None
        if attachment is not None:
            raw_seq = attachment.to_bytes()
            if len(raw_seq) == _FRAGMENT.size:
                self._on_fragment(*_FRAGMENT.unpack(raw_seq), sample.payload.to_bytes())
                return
            if len(raw_seq) == _SEQ.size:
                seq = _SEQ.unpack(raw_seq)[0]
        self._on_message(seq, sample.payload.to_bytes())

    def _on_fragment(self, seq: int, offset: int, total: int, data: bytes) -> None:
        """One piece of a large message: copied into place (a loan of the
        channel when nothing is queued and a chunk is free, else a buffer);
        the whole message is then handled as :meth:`_on_message` would."""
        lost = 0
        gap = 0
        error: BaseException | None = None
        done: tuple[int, Loan | bytearray] | None = None
        with self._lock:
            pub = self._pub
            if self._stop or pub is None:
                return
            partial = self._partial
            if offset == 0:
                if partial is not None:  # its last pieces never came
                    lost += 1
                    self._drop_partial()
                # Sequenced when it starts: a message whose first piece was
                # lost is then the gap before the next one, counted once.
                gap = self._sequence(seq)
                target: Loan | bytearray
                loan = None
                if not self._queue and total <= pub.max_payload:
                    try:
                        loan = pub.try_loan(total)
                    except (ValueError, ChannelError):
                        loan = None
                target = loan if loan is not None else bytearray(total)
                partial = self._partial = (seq, total, 0, target)
            elif partial is None or partial[0] != seq or partial[2] != offset:
                # A piece out of place: its message is incomplete.
                if partial is not None and partial[0] == seq:
                    lost += 1
                    self._drop_partial()
                partial = None
            if partial is not None:
                _, size, got, target = partial
                end = got + len(data)
                if end > size:
                    lost += 1
                    self._drop_partial()
                else:
                    buffer = target.buffer if isinstance(target, Loan) else target
                    buffer[got:end] = data
                    self._partial = (seq, size, end, target) if end < size else None
                    if end == size:
                        done = (seq, target)
        if lost:
            with self._lock:
                self.lost += lost
        if (lost or gap) and self._on_lost is not None:
            self._on_lost(self.channel_name, lost + gap)
        if done is None:
            return
        done_seq, target = done
        if isinstance(target, bytearray):
            self._on_message(done_seq, target)
            return
        with self._lock:
            try:
                pub.send_filled_wire(target)
            except (ValueError, ChannelError) as e:
                error = e
                self.rejected += 1
            else:
                self.delivered += 1
            self._handled_seq = done_seq
        if error is not None:
            self._on_error(error)
        self._put_credit()

    def _drop_partial(self) -> None:
        """Forgets the message being assembled (its loan goes back). Lock held."""
        partial, self._partial = self._partial, None
        if partial is not None and isinstance(partial[3], Loan):
            partial[3].discard()

    def _sequence(self, seq: int | None) -> int:
        """Records ``seq`` as the last sequence seen; returns the gap before
        it (messages lost on the wire). Lock held."""
        if seq is None:
            return 0
        gap = 0
        if seq > self._last_seq + 1 and seq != 1:
            gap = seq - self._last_seq - 1
            self.lost += gap
        self._last_seq = seq
        return gap

    def _on_message(self, seq: int | None, data: bytes | bytearray) -> None:
        error: BaseException | None = None
        gap = 0
        with self._lock:
            pub = self._pub
            if self._stop or pub is None:
                return
            gap = self._sequence(seq)
            if self._queue:
                self._queue.append((seq, data))  # behind what waits already: order
                handled = False
            else:
                try:
                    handled = pub.try_send_wire(data)
                except (ValueError, ChannelError) as e:
                    error, handled = e, True
                    self.rejected += 1
                else:
                    if handled:
                        self.delivered += 1
                    else:
                        self._queue.append((seq, data))
                        self._cond.notify()
                if handled and seq is not None:
                    self._handled_seq = seq
        if gap and self._on_lost is not None:
            self._on_lost(self.channel_name, gap)
        if error is not None:
            self._on_error(error)
        if handled:
            self._put_credit()

    def _on_credit_matching(self, matching: bool) -> None:
        with self._lock:
            self._credit_matched = matching
        if matching:
            self._put_credit()  # what was held back while nobody listened

    def _put_credit(self) -> None:
        """Puts the sequence of the last message handled (coalesced: a value
        already put is not put again; reordered puts are harmless, the
        egress keeps the largest)."""
        with self._lock:
            seq = self._handled_seq
            pub = self._credit_pub
            if seq == self._credit_put or not self._credit_matched or pub is None:
                return
            self._credit_put = seq
        try:
            pub.put(_CREDIT.pack(seq))
        except Exception as e:  # noqa: BLE001 - a closing session; reported otherwise
            if not self._stop:
                self._on_error(e)

    # -- the thread --------------------------------------------------------------

    def _run(self) -> None:
        warned = False
        try:
            while True:
                with self._cond:
                    while not self._queue and not self._stop:
                        self._cond.wait()
                    if self._stop:
                        return
                    seq, data = self._queue[0]  # stays queued (later ones queue) until sent
                    pub = self._pub
                assert pub is not None
                error: BaseException | None = None
                try:
                    pub.send_wire(data, timeout=_SEND_SLICE_S, stop=self._stopping)
                except BackpressureTimeoutError:
                    if not warned:
                        warned = True
                        print(
                            f"rmp ingress {self.channel_name!r}: the reader on this host is not "
                            f"consuming; {len(self._queue)} message(s) wait (none is dropped)",
                            file=sys.stderr,
                            flush=True,
                        )
                    continue
                except PublishCancelledError:
                    return
                except (ValueError, ChannelError) as e:
                    error = e
                with self._cond:
                    self._queue.popleft()
                    if error is None:
                        self.delivered += 1
                    else:
                        self.rejected += 1
                    if seq is not None:
                        self._handled_seq = seq
                if error is not None:
                    self._on_error(error)
                else:
                    warned = False
                self._put_credit()
        except BaseException as e:  # noqa: BLE001 - reported: the thread is ending
            if not self._stop:
                self._on_error(e)

    @property
    def queued(self) -> int:
        """Messages waiting for a chunk on this host."""
        return len(self._queue)

    def close(self, timeout: float = 2.0) -> None:
        """Stops receiving, ends the thread (a message still queued is
        dropped: the session is ending) and closes the publisher, within
        ``timeout`` seconds."""
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        sub, self._sub = self._sub, None
        _undeclare(sub)
        _undeclare(self._credit_matching)
        thread = getattr(self, "_thread", None)
        if thread is not None and thread.is_alive():
            thread.join(timeout)  # send_wire looks at the stop flag every 20 ms
        with self._lock:
            credit_pub, self._credit_pub = self._credit_pub, None
            pub = self._pub
            if thread is None or not thread.is_alive():
                self._pub = None
            else:
                pub = None
            self._queue.clear()
            self._drop_partial()
        _undeclare(credit_pub)
        if pub is not None:
            pub.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
