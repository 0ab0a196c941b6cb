"""Channels over real iceoryx2 shared memory, in one process (two nodes or
two threads). Every test has its own isolated environment (see conftest)."""

from __future__ import annotations

import gc
import hashlib
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from remotemedia_multiprocess._iox import IoxEnv, remove_env_files
from remotemedia_multiprocess.channel import Channel, Publisher, Subscriber
from remotemedia_multiprocess.errors import (
    BackpressureTimeoutError,
    ChannelError,
    PublishCancelledError,
    WireFormatError,
)
from remotemedia_multiprocess.runtime_data import HEADER_LEN, RuntimeData

SIZES = [1, 1024, 1024 * 1024]


def second_node(env: IoxEnv) -> IoxEnv:
    """Another iceoryx2 node in the same environment (like another process)."""
    return IoxEnv(env.prefix, env.root)


def pair(
    env: IoxEnv, name: str, capacity: int = 8
) -> tuple[Channel, Channel, Publisher, Subscriber]:
    ch_sub = Channel.open_or_create(env, name, capacity=capacity)
    ch_pub = Channel.open_or_create(second_node(env), name, capacity=capacity)
    return ch_pub, ch_sub, ch_pub.publisher(), ch_sub.subscriber()


def make(kind: str, size: int) -> RuntimeData:
    rng = np.random.default_rng(size)
    if kind == "audio":
        return RuntimeData.audio(
            rng.integers(-(2**15), 2**15, max(size // 2, 1), dtype=np.int16), 16000
        )
    if kind == "video":
        return RuntimeData.video(rng.integers(0, 256, size, dtype=np.uint8), size, 1, "gray8")
    if kind == "text":
        return RuntimeData.text("x" * size, language="en")
    if kind == "tensor":
        return RuntimeData.tensor(rng.integers(0, 256, size, dtype=np.uint8))
    if kind == "json":
        return RuntimeData.json("y" * max(size - 2, 0))
    return RuntimeData.binary(rng.integers(0, 256, size, dtype=np.uint8).tobytes())


def digest(rd: RuntimeData) -> str:
    return hashlib.sha256(rd.as_bytes()).hexdigest()


@pytest.mark.parametrize("size", SIZES, ids=["1B", "1KiB", "1MiB"])
@pytest.mark.parametrize("kind", ["audio", "video", "text", "tensor", "json", "binary"])
def test_roundtrip_every_kind(iox_env: IoxEnv, kind: str, size: int) -> None:
    ch_pub, ch_sub, pub, sub = pair(iox_env, f"rt_{kind}_{size}")
    sent = make(kind, size)
    sent.session_id = bytes(range(16))
    pub.publish(sent, timeout=5)
    with sub.receive(timeout=5) as got:
        assert got is not None
        assert got.kind == kind
        assert got.nbytes == sent.nbytes
        assert digest(got) == digest(sent)
        assert got.session_id == bytes(range(16))
        assert got.sequence == 1 and got.timestamp_ns > 0
        assert got.owner is not None
    ch_pub.close()
    ch_sub.close()


def test_payload_is_a_view_of_the_sample(iox_env: IoxEnv) -> None:
    ch_pub, ch_sub, pub, sub = pair(iox_env, "zc")
    arr = np.arange(256 * 1024, dtype=np.float32)
    pub.publish(RuntimeData.tensor(arr))
    rd = sub.receive(timeout=5)
    assert rd is not None
    sample = rd.owner
    start = int(sample.payload_ptr)
    length = int(sample.payload().len())
    addr = rd.array.__array_interface__["data"][0]
    assert addr == start + HEADER_LEN
    assert start <= addr and addr + rd.array.nbytes <= start + length
    assert addr % 8 == 0  # chunks are 8-byte aligned; the header is 128 bytes
    assert not rd.array.flags.writeable  # the subscriber mapping is read-only
    np.testing.assert_array_equal(rd.array, arr)
    # A view kept past the message keeps the sample: nothing is released yet.
    view = rd.array[10:20]
    del rd, sample
    gc.collect()
    assert sub.held == 1
    np.testing.assert_array_equal(view, arr[10:20])
    del view
    gc.collect()
    assert sub.held == 0
    ch_pub.close()
    ch_sub.close()


def test_delivery_counter_gaps_are_counted_as_lost(iox_env: IoxEnv) -> None:
    ch_pub, ch_sub, pub, sub = pair(iox_env, "gaps")
    seen = []
    for skip in (0, 0, 4, 0):
        # A seeded counter is what a restarted runner's publisher does.
        pub.delivery += skip
        pub.publish(RuntimeData.text("x"))
        with sub.receive(timeout=5) as rd:
            assert rd is not None
        seen.append((sub.delivery, sub.lost))
    assert seen == [(1, 0), (2, 0), (7, 4), (8, 4)]
    # Raw samples carry no counter (0) and do not count; a publisher that
    # started over (counter behind) is not a loss this reader can count.
    raw = RuntimeData.text("raw")
    buf = bytearray(raw.encoded_size())
    raw.encode_into(memoryview(buf))
    pub.publish_bytes(buf)
    pub.delivery = 0
    pub.publish(RuntimeData.text("again"))
    for _ in range(2):
        with sub.receive(timeout=5) as rd:
            assert rd is not None
    assert (sub.delivery, sub.lost) == (1, 4)
    ch_pub.close()
    ch_sub.close()


def test_loan_writes_in_place(iox_env: IoxEnv) -> None:
    ch_pub, ch_sub, pub, sub = pair(iox_env, "loan")
    msg = RuntimeData.binary(b"abc")
    loan = pub.loan(msg.encoded_size())
    assert np.asarray(loan.buffer).__array_interface__["data"][0] == loan.payload_ptr
    msg.encode_into(loan.buffer)
    assert loan.send() == 1
    with sub.receive(timeout=5) as rd:
        assert rd is not None and rd.as_bytes() == b"abc"
    ch_pub.close()
    ch_sub.close()


def test_credits(iox_env: IoxEnv) -> None:
    ch_pub, ch_sub, pub, sub = pair(iox_env, "credits", capacity=4)
    msg = RuntimeData.binary(b"x" * 100)
    assert [pub.try_publish(msg) for _ in range(5)] == [True, True, True, True, False]
    first = sub.receive(timeout=5)
    assert first is not None
    assert not pub.try_publish(msg)  # received but still held
    first.release()
    assert pub.try_publish(msg)
    assert not pub.try_publish(msg)
    seqs = []
    for _ in range(4):
        with sub.receive(timeout=5) as rd:
            assert rd is not None
            seqs.append(rd.sequence)
    assert seqs == [2, 3, 4, 5]
    assert sub.receive(timeout=0.05) is None
    ch_pub.close()
    ch_sub.close()


def test_fan_out_returns_a_chunk_once_every_subscriber_released(
    iox_env: IoxEnv,
) -> None:
    ch_pub, ch_sub, pub, sub = pair(iox_env, "fan", capacity=2)
    sub2 = ch_sub.subscriber()
    msg = RuntimeData.binary(b"z")
    assert pub.try_publish(msg) and pub.try_publish(msg)
    assert not pub.try_publish(msg)
    a, b = sub.receive(timeout=5), sub2.receive(timeout=5)
    assert a is not None and b is not None
    a.release()
    assert not pub.try_publish(msg)
    b.release()
    assert pub.try_publish(msg)
    ch_pub.close()
    ch_sub.close()


def consume(sub: Subscriber, n: int, delay: float, out: list[int]) -> Callable[[], None]:
    def run() -> None:
        for _ in range(n):
            rd = sub.receive(timeout=10)
            assert rd is not None
            time.sleep(delay)
            out.append(rd.sequence)
            rd.release()

    return run


def test_publish_blocks_until_a_consumer_releases(iox_env: IoxEnv) -> None:
    ch_pub, ch_sub, pub, sub = pair(iox_env, "block", capacity=4)
    msg = RuntimeData.binary(b"y" * 1000)
    for _ in range(4):
        assert pub.try_publish(msg)
    got: list[int] = []
    consumer = threading.Thread(target=consume(sub, 24, 0.01, got))
    started = time.monotonic()
    consumer.start()
    for _ in range(20):
        pub.publish(msg, timeout=5)  # blocks (GIL released) while the channel is full
    consumer.join(10)
    assert not consumer.is_alive()
    assert got == list(range(1, 25))  # nothing lost, in order
    assert time.monotonic() - started >= 0.2  # it waited for the slow consumer
    ch_pub.close()
    ch_sub.close()


def test_backpressure_timeout_when_nobody_consumes(iox_env: IoxEnv) -> None:
    ch_pub, ch_sub, pub, sub = pair(iox_env, "stalled", capacity=2)
    msg = RuntimeData.binary(b"w")
    pub.publish(msg)
    pub.publish(msg)
    started = time.monotonic()
    with pytest.raises(BackpressureTimeoutError) as info:
        pub.publish(msg, timeout=0.3)
    elapsed = time.monotonic() - started
    assert 0.3 <= elapsed < 2.0
    assert info.value.timeout_s == 0.3 and info.value.channel == "stalled"
    assert isinstance(info.value, ChannelError)
    # Nothing already sent was lost.
    for seq in (1, 2):
        with sub.receive(timeout=5) as rd:
            assert rd is not None and rd.sequence == seq
    pub.publish(msg, timeout=1)
    ch_pub.close()
    ch_sub.close()


def test_a_publish_waiting_for_space_gives_up_once_stop_is_true(iox_env: IoxEnv) -> None:
    # A stopping runner must not wait out its publish timeout for a reader
    # that may be dead (its Deno process killed with -9).
    ch_pub, ch_sub, pub, _sub = pair(iox_env, "stopping", capacity=2)
    msg = RuntimeData.binary(b"x" * 64)
    pub.publish(msg)
    pub.publish(msg)
    stop_at = time.monotonic() + 0.2
    started = time.monotonic()
    with pytest.raises(PublishCancelledError) as info:
        pub.publish(msg, timeout=10, stop=lambda: time.monotonic() >= stop_at)
    elapsed = time.monotonic() - started
    assert isinstance(info.value, ChannelError)
    assert "stopping" in str(info.value) and info.value.channel == "stopping"
    assert 0.2 <= elapsed < 1.5
    with pytest.raises(PublishCancelledError):
        pub.allocate(msg, timeout=10, stop=lambda: True)
    ch_pub.close()
    ch_sub.close()


def test_corrupt_header_then_the_subscriber_keeps_working(iox_env: IoxEnv) -> None:
    ch_pub, ch_sub, pub, sub = pair(iox_env, "corrupt", capacity=4)
    raw = ch_pub.publisher()  # the second publisher the protocol allows
    good = RuntimeData.text("ok").encode()
    raw.publish_bytes(b"XXXX" + good[4:])
    raw.publish_bytes(good[:100])
    raw.publish_bytes(good)
    with pytest.raises(WireFormatError) as info:
        sub.receive(timeout=5)
    assert info.value.reason == "bad_magic"
    with pytest.raises(WireFormatError) as info:
        sub.receive(timeout=5)
    assert info.value.reason == "too_short"
    assert sub.held == 0  # bad samples were released
    with sub.receive(timeout=5) as rd:
        assert rd is not None and rd.text == "ok"
    pub.publish(RuntimeData.text("still"))
    with sub.receive(timeout=5) as rd:
        assert rd is not None and rd.text == "still"
    ch_pub.close()
    ch_sub.close()


def test_receive_raw(iox_env: IoxEnv) -> None:
    ch_pub, ch_sub, pub, sub = pair(iox_env, "raw")
    pub.publish_bytes(b"\x01\x02\x03")
    with sub.receive_raw(timeout=5) as s:
        assert s is not None and bytes(s.data) == b"\x01\x02\x03"
        assert s.data.readonly
    assert sub.held == 0
    assert sub.receive_raw(timeout=0.01) is None
    ch_pub.close()
    ch_sub.close()


def test_bigger_messages_grow_the_chunks_and_keep_order(iox_env: IoxEnv) -> None:
    ch_pub, ch_sub, pub, sub = pair(iox_env, "grow", capacity=4)
    assert pub.max_slice_len == 4096
    out: list[RuntimeData] = []

    def read() -> None:
        for _ in range(3):
            rd = sub.receive(timeout=5)
            if rd is None:
                return
            out.append(rd.copy())
            rd.release()

    reader = threading.Thread(target=read)
    reader.start()
    pub.publish(RuntimeData.binary(b"a"))
    pub.publish(RuntimeData.binary(b"b"))
    big = np.arange(3 * 1024 * 1024, dtype=np.uint8)
    pub.publish(RuntimeData.tensor(big))  # waits until "a" and "b" are released
    reader.join(10)
    assert pub.max_slice_len == 4 * 1024 * 1024
    assert [o.kind for o in out] == ["binary", "binary", "tensor"]
    assert out[0].as_bytes() == b"a" and out[1].as_bytes() == b"b"
    np.testing.assert_array_equal(out[2].array, big)
    with pytest.raises(ChannelError):
        pub.loan(pub.max_payload + 1)
    ch_pub.close()
    ch_sub.close()


def test_receive_timeout_and_held_count(iox_env: IoxEnv) -> None:
    ch = Channel.open_or_create(iox_env, "idle")
    sub = ch.subscriber()
    started = time.monotonic()
    assert sub.receive(timeout=0.1) is None
    assert time.monotonic() - started >= 0.1
    assert sub.try_receive() is None
    ch.close()
    with pytest.raises(ChannelError):
        ch.subscriber()


def test_mismatched_settings_fail_to_open(iox_env: IoxEnv) -> None:
    ch = Channel.open_or_create(iox_env, "settings", capacity=4)
    with pytest.raises(ChannelError):
        Channel.open_or_create(second_node(iox_env), "settings", capacity=16)
    ch.close()


def test_isolated_env_files_are_removed(iox_env: IoxEnv) -> None:
    ch = Channel.open_or_create(iox_env, "files")
    ch.publisher().publish(RuntimeData.binary(b"1"))
    assert list(Path("/dev/shm").glob(f"{iox_env.prefix}*"))
    ch.close()
    iox_env.close()
    remove_env_files(iox_env)
    assert not list(Path("/dev/shm").glob(f"{iox_env.prefix}*"))
    assert not Path(iox_env.root).exists()


@pytest.mark.parametrize("capacity", [1, 2])
def test_threads_stream_without_loss_or_stall(iox_env: IoxEnv, capacity: int) -> None:
    """Credits under contention: a fast producer, a consumer thread, a tiny
    channel. A missed FREED would show as a 20 ms poll per message."""
    ch_pub, ch_sub, pub, sub = pair(iox_env, f"stream{capacity}", capacity=capacity)
    sub2 = ch_sub.subscriber()  # fan-out: both consumers must see everything
    n = 2000
    got: list[int] = []
    got2: list[int] = []
    threads = [
        threading.Thread(target=consume(sub, n, 0, got)),
        threading.Thread(target=consume(sub2, n, 0, got2)),
    ]
    started = time.monotonic()
    for t in threads:
        t.start()
    msg = RuntimeData.binary(b"s" * 64)
    for _ in range(n):
        pub.publish(msg, timeout=10)
    for t in threads:
        t.join(20)
    elapsed = time.monotonic() - started
    assert got == list(range(1, n + 1)) and got2 == got
    assert elapsed < 10, f"{n} messages took {elapsed:.1f} s"
    ch_pub.close()
    ch_sub.close()


def test_try_receive_never_swallows_the_wakeup_of_a_late_sample(iox_env: IoxEnv) -> None:
    """A sample that lands between an empty look and the drain of ``N/data``
    is returned: its notification is gone, so a WaitSet would not wake for it
    (a runner waiting next would hang)."""
    ch_pub, ch_sub, pub, sub = pair(iox_env, "late")
    real_take = sub._take
    published: list[bool] = []

    def take_then_publish() -> object:
        sample = real_take()
        if sample is None and not published:
            published.append(True)
            pub.publish(RuntimeData.text("late"))  # after the look, before the drain
        return sample

    sub._take = take_then_publish  # type: ignore[method-assign]
    rd = sub.try_receive()
    assert published
    assert rd is not None and rd.text == "late"
    rd.release()
    ch_pub.close()
    ch_sub.close()


def test_allocate_writes_in_place_and_publish_copies_nothing(iox_env: IoxEnv) -> None:
    import tracemalloc

    ch_pub, ch_sub, pub, sub = pair(iox_env, "alloc")
    like = RuntimeData.tensor(np.empty((1024, 1024, 2), np.float32))  # 8 MiB
    out = pub.allocate(like)
    loan = pub._own_loan(out)
    assert loan is not None
    assert out.payload.ctypes.data == loan.payload_ptr + HEADER_LEN
    assert out.payload.flags.writeable and out.shape == (1024, 1024, 2)
    out.payload[:] = 0.25
    out.payload[7, 9, 1] = 3.0
    tracemalloc.start()
    pub.publish(out)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 64 * 1024, f"publishing an allocated message allocated {peak} bytes"
    with sub.receive(timeout=2.0) as rd:
        assert rd.shape == (1024, 1024, 2) and rd.dtype == "float32"
        assert float(rd.payload[7, 9, 1]) == 3.0
        assert float(rd.payload.sum()) == 0.25 * (1024 * 1024 * 2 - 1) + 3.0
    assert pub._loans == 0
    ch_pub.close()
    ch_sub.close()


def test_allocate_sends_metadata_set_later_and_unsent_ones_give_their_chunk_back(
    iox_env: IoxEnv,
) -> None:
    ch_pub, ch_sub, pub, sub = pair(iox_env, "alloc-meta", capacity=2)
    like = RuntimeData.video(np.empty((2, 4, 3), np.uint8), 4, 2, "rgb24")
    for _ in range(5):  # more than capacity: each dropped allocation returns its chunk
        pub.allocate(like).release()
    out = pub.allocate(like)
    out.payload[:] = 200
    out.frame_number = 42
    pub.publish(out)
    with sub.receive(timeout=2.0) as rd:
        assert rd.frame_number == 42 and int(rd.payload.min()) == 200
    with pytest.raises(ValueError, match="cannot allocate text"):
        pub.allocate(RuntimeData.text("x"))
    ch_pub.close()
    ch_sub.close()


def test_allocated_message_with_a_replaced_payload_is_copied(iox_env: IoxEnv) -> None:
    ch_pub, ch_sub, pub, sub = pair(iox_env, "alloc-replaced")
    out = pub.allocate(RuntimeData.binary(bytes(16)))
    out.payload = memoryview(b"0123456789abcdef")
    pub.publish(out)
    with sub.receive(timeout=2.0) as rd:
        assert bytes(rd.payload) == b"0123456789abcdef"
    assert pub._loans == 0
    ch_pub.close()
    ch_sub.close()


@pytest.mark.parametrize("readers", [1, 3])
def test_growth_loses_nothing_a_late_reader_has_not_received(iox_env: IoxEnv, readers: int) -> None:
    """Issue 7: subscribers that have not received yet (not even connected
    to the publisher's port) lose nothing when the publisher needs bigger
    chunks: it grows only once every chunk it sent is back."""
    ch_sub = Channel.open_or_create(iox_env, "grow-late", capacity=8)
    subs = [ch_sub.subscriber() for _ in range(readers)]  # before the publisher
    ch_pub = Channel.open_or_create(second_node(iox_env), "grow-late", capacity=8)
    pub = ch_pub.publisher()
    sizes = [1000, 1000, 1000, 10_000, 7, 3 * 1024 * 1024, 5, 3, 100_000, 1]
    payloads = [bytes([i + 1]) * n for i, n in enumerate(sizes)]
    got: list[list[bytes]] = [[] for _ in subs]

    def read(i: int) -> None:
        time.sleep(0.1)  # starts late: the publisher has outgrown its chunks
        for _ in payloads:
            rd = subs[i].receive(timeout=2)
            if rd is None:
                return
            got[i].append(rd.as_bytes())
            rd.release()

    threads = [threading.Thread(target=read, args=(i,)) for i in range(readers)]
    for t in threads:
        t.start()
    for p in payloads:
        pub.publish(RuntimeData.binary(p), timeout=10)
    for t in threads:
        t.join(20)
    assert not any(t.is_alive() for t in threads)
    for g in got:
        assert [len(b) for b in g] == sizes
        assert g == payloads
    assert pub.max_slice_len == 4 * 1024 * 1024
    ch_pub.close()
    ch_sub.close()


def test_a_loan_that_needs_bigger_chunks_is_full_until_every_chunk_is_back(
    iox_env: IoxEnv,
) -> None:
    ch_sub = Channel.open_or_create(iox_env, "grow-full", capacity=4)
    subs = [ch_sub.subscriber(), ch_sub.subscriber()]
    ch_pub = Channel.open_or_create(second_node(iox_env), "grow-full", capacity=4)
    pub = ch_pub.publisher()
    small, big = RuntimeData.binary(b"s" * 1000), RuntimeData.binary(b"b" * 10_000)
    assert pub.try_publish(small) and pub.try_publish(small)
    assert not pub.try_publish(big)  # two chunks are queued in both subscribers
    first = subs[0].receive(timeout=1)
    assert first is not None and first.sequence == 1
    held = subs[1].receive(timeout=1)
    first.release()
    assert not pub.try_publish(big)  # subs[1] still holds sample 1, both queue 2
    assert held is not None
    held.release()
    for sub in subs:
        with sub.receive(timeout=1) as rd:
            assert rd is not None and rd.sequence == 2
    assert pub.max_slice_len == 4096
    assert pub.try_publish(big)  # every chunk is back: grows now
    assert pub.max_slice_len == 16384
    for sub in subs:
        with sub.receive(timeout=1) as rd:
            assert rd is not None and rd.sequence == 3 and rd.nbytes == 10_000
    ch_pub.close()
    ch_sub.close()


@pytest.mark.parametrize("seconds", [0.0, 1e-7, 5e-7])
def test_a_wait_shorter_than_a_microsecond_still_ends(iox_env: IoxEnv, seconds: float) -> None:
    """iceoryx2 0.10 turns a listener timeout under 1 us into SO_RCVTIMEO 0
    ("no timeout"): a publisher whose deadline arithmetic left 0.5 us to
    wait blocked until a FREED that never came, past its own timeout."""
    from remotemedia_multiprocess.channel import _duration

    ch = Channel.open_or_create(iox_env, "short-wait")
    sub = ch.subscriber()
    done = threading.Event()

    def wait() -> None:
        sub.listener.timed_wait(_duration(seconds))
        done.set()

    waiter = threading.Thread(target=wait, daemon=True)
    waiter.start()
    ended = done.wait(1.0)
    if not ended:  # unblock it before failing
        ch.publisher().publish(RuntimeData.text("wake"))
    waiter.join(5)
    assert ended, f"a {seconds} s wait was still blocked after 1 s"
    ch.close()


def test_send_wire_forwards_a_message_with_this_publishers_delivery_counter(
    iox_env: IoxEnv,
) -> None:
    """A bridge forwards the wire bytes it received: everything arrives as
    sent except the delivery counter, which is the forwarding port's own (its
    reader counts that port's gaps)."""
    ch_pub, ch_sub, pub, sub = pair(iox_env, "wire")
    msg = make("audio", 4096)
    msg.session_id = bytes(range(16))
    msg.sequence = 41
    msg.timestamp_ns = 123_456_789
    wire = bytearray(msg.encode())
    wire[12:16] = (77).to_bytes(4, "little")  # the upstream publisher's counter
    pub.delivery = 9
    pub.send_wire(memoryview(wire), timeout=5)
    pub.send_wire(bytes(wire), timeout=5)
    for want in (10, 11):
        with sub.receive_raw(timeout=5) as raw:
            assert raw is not None
            got = bytes(raw.data)
        assert int.from_bytes(got[12:16], "little") == want
        assert got[:12] == wire[:12] and got[16:] == wire[16:]
    assert sub.receive_raw(timeout=0.01) is None
    pub.send_wire(wire)
    with sub.receive(timeout=5) as rd:
        assert rd is not None and rd.sequence == 41 and rd.timestamp_ns == 123_456_789
        assert digest(rd) == digest(msg) and sub.lost == 0
    with pytest.raises(ValueError, match="at least"):
        pub.send_wire(b"short")
    ch_pub.close()
    ch_sub.close()


def test_try_send_wire_never_waits_and_send_wire_waits_like_publish(iox_env: IoxEnv) -> None:
    ch_pub, ch_sub, pub, sub = pair(iox_env, "wire-full", capacity=2)
    msg = RuntimeData.binary(b"q" * 5000)  # bigger than the first chunks: they grow
    msg.sequence = 5
    wire = msg.encode()
    assert [pub.try_send_wire(wire) for _ in range(3)] == [True, True, False]
    started = time.monotonic()
    with pytest.raises(BackpressureTimeoutError):
        pub.send_wire(wire, timeout=0.2)
    assert 0.2 <= time.monotonic() - started < 2.0
    with pytest.raises(PublishCancelledError):
        pub.send_wire(wire, timeout=10, stop=lambda: True)
    got: list[int] = []
    reader = threading.Thread(target=consume(sub, 3, 0.05, got))
    reader.start()
    pub.send_wire(wire, timeout=5)  # waits for the reader to free a chunk
    reader.join(10)
    assert got == [5, 5, 5]  # the wire's own sequence, untouched
    assert pub.delivery == 3 and sub.lost == 0
    ch_pub.close()
    ch_sub.close()
