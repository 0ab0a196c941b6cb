"""Python side of bench/ipc_report.ts: the raw channel hop, no session.

Channels (created by Deno first): ``d2p`` (Deno publishes, we subscribe) and
``p2d`` (we publish, Deno subscribes); ``tput_d2p`` / ``tput_p2d`` for
throughput. The isolation comes from ``RMP_IOX2_PREFIX`` / ``RMP_IOX2_ROOT``.

Modes (argv[1]):
  d2p ITERS SIZE...   receive, record now - header.timestamp_ns, ack (128 B)
  p2d ITERS SIZE...   stamp + send, wait for Deno's ack before the next one
  tput_d2p            count 1 KiB messages until an empty one, ack the count
  tput_p2d SECONDS    send 1 KiB messages (blocking on backpressure), then an
                      empty one whose sequence is the count

Results are JSON lines on stdout.
"""

from __future__ import annotations

import json
import struct
import sys
import time

from remotemedia_multiprocess import Channel, IoxEnv, Publisher, Subscriber
from remotemedia_multiprocess.runtime_data import HEADER_LEN, MAGIC, WIRE_VERSION

WARMUP = 50  # RAW_WARMUP in ipc_report.ts
CAPACITY = 2
_COMMON = struct.Struct("<IHBBIIQQ16sQ")  # the first 56 header bytes
_BINARY = 6
_TS = struct.Struct("<Q")
_ZERO_SESSION = bytes(16)


def header(payload_len: int, sequence: int = 0) -> bytes:
    """A binary-kind header; the timestamp (offset 48) is patched per send."""
    h = bytearray(HEADER_LEN)
    _COMMON.pack_into(
        h, 0, MAGIC, WIRE_VERSION, _BINARY, 0, HEADER_LEN, 0, payload_len, sequence,
        _ZERO_SESSION, 0,
    )  # fmt: skip
    return bytes(h)


def send(pub: Publisher, hdr: bytes, size: int) -> None:
    """Loans header + ``size`` bytes, writes only the header, stamps, sends.

    The payload is left as it is in the chunk: the bench measures the hop.
    """
    loan = pub.loan(HEADER_LEN + size)
    buf = loan.buffer
    buf[:HEADER_LEN] = hdr
    _TS.pack_into(buf, 48, time.monotonic_ns())
    loan.send()


def percentiles(xs: list[float]) -> dict[str, float]:
    s = sorted(xs)
    n = len(s)

    def p(q: float) -> float:
        return round(s[min(n - 1, int(q / 100 * n))], 1)

    return {"p50_us": p(50), "p95_us": p(95), "p99_us": p(99)}


def emit(obj: dict[str, object]) -> None:
    print(json.dumps(obj), flush=True)


def mode_d2p(sub: Subscriber, ack: Publisher, iters: int, sizes: list[int]) -> None:
    ack_hdr = header(0)
    send(ack, ack_hdr, 0)  # ready: our subscriber exists
    for size in sizes:
        us: list[float] = []
        for i in range(iters + WARMUP):
            rd = sub.receive(timeout=30.0)
            now = time.monotonic_ns()
            if rd is None:
                raise TimeoutError(f"no message of {size} bytes")
            ts = rd.timestamp_ns
            rd.release()
            send(ack, ack_hdr, 0)
            if i >= WARMUP:
                us.append((now - ts) / 1000)
        emit({"direction": "deno_to_python", "bytes": size, **percentiles(us)})


def mode_p2d(pub: Publisher, ack: Subscriber, iters: int, sizes: list[int]) -> None:
    for size in sizes:
        hdr = header(size)
        for _ in range(iters + WARMUP):
            send(pub, hdr, size)
            rd = ack.receive(timeout=30.0)
            if rd is None:
                raise TimeoutError(f"no ack for {size} bytes")
            rd.release()


def mode_tput_d2p(sub: Subscriber, ack: Publisher) -> None:
    send(ack, header(0), 0)  # ready
    count = 0
    while True:
        rd = sub.receive(timeout=30.0)
        if rd is None:
            raise TimeoutError("throughput stream stalled")
        empty = rd.nbytes == 0
        rd.release()
        if empty:
            break
        count += 1
    send(ack, header(0, count), 0)


def mode_tput_p2d(pub: Publisher, seconds: float) -> None:
    hdr = header(1024)
    end = time.monotonic() + seconds
    count = 0
    while time.monotonic() < end:
        send(pub, hdr, 1024)
        count += 1
    send(pub, header(0, count), 0)


def main() -> None:
    mode = sys.argv[1]
    env = IoxEnv()  # RMP_IOX2_PREFIX / RMP_IOX2_ROOT from the Deno side
    if mode in ("d2p", "p2d"):
        iters = int(sys.argv[2])
        sizes = [int(s) for s in sys.argv[3:]]
        d2p = Channel.open_or_create(env, "d2p", capacity=CAPACITY, max_subscribers=1)
        p2d = Channel.open_or_create(env, "p2d", capacity=CAPACITY, max_subscribers=1)
        sub = d2p.subscriber()
        pub = p2d.publisher(max_payload=HEADER_LEN + max(sizes))
        if mode == "d2p":
            mode_d2p(sub, pub, iters, sizes)
        else:
            mode_p2d(pub, sub, iters, sizes)
        channels = [d2p, p2d]
    else:
        d2p = Channel.open_or_create(env, "tput_d2p", capacity=8, max_subscribers=1)
        p2d = Channel.open_or_create(env, "tput_p2d", capacity=8, max_subscribers=1)
        sub = d2p.subscriber()
        pub = p2d.publisher()
        if mode == "tput_d2p":
            mode_tput_d2p(sub, pub)
        else:
            mode_tput_p2d(pub, float(sys.argv[2]))
        channels = [d2p, p2d]
    for ch in channels:
        ch.close()
    env.close()


if __name__ == "__main__":
    main()
