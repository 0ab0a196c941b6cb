"""What cutting a big message into Zenoh samples would save a bridge
(``bench/hosts_chunk_probe.ts``): plain Zenoh between two namespaces, with
the copies a bridge makes in Python, whole or per chunk.

``chunk_probe.py echo <listen> <seconds> <max-bytes>``: the far peer (the
ingress's place). ``chunk_probe.py ping <connect> <warmup> <gap-ms> <mode>
<chunk> <size>:<iterations>...``: the near peer (the egress's place). Modes:

- ``bare``: a prebuilt ``ZBytes`` put whole, the echo copies nothing (what
  ``zenoh_netns`` measures);
- ``whole``: what ``hosts/bridge.py`` does today: ``bytes(view)`` of the
  source buffer (the iceoryx2 sample), ``put`` of those bytes (``ZBytes``
  copies them); the echo ``payload.to_bytes()`` then copies into its
  destination buffer (the loan);
- ``fresh``: a new ``ZBytes`` per message, built before the stamp (from
  a copy of the source), the echo copies nothing: is a fresh buffer slower
  to send than ``bare``'s reused one?
- ``sender``: ``whole``'s copies at the sender only, the echo copies
  nothing;
- ``chunked``: the same copies per ``<chunk>`` bytes, each chunk its own
  sample (attachment: sequence, stamp, offset, total), so the copies of one
  chunk overlap the transfer of the others; the echo copies each chunk into
  place and stamps when the last byte is in.

The stamp is taken before the first copy (the egress's take) and read when
the whole message is in the destination buffer (the ingress's send). One
JSON line per size: ``{"bytes", "one_way_us"}``. Every wait is bounded.
"""

from __future__ import annotations

import json
import queue
import struct
import sys
import time

import numpy as np
import zenoh
from _common import open_session, publisher

DATA_KEY = "rmp/bench/chunks/data"
ACK_KEY = "rmp/bench/chunks/ack"
# sequence (negative: a probe), stamp ns, offset, total bytes
ATTACH = struct.Struct("<qQQQ")
ACK = struct.Struct("<qQQ")  # sequence, one-way ns, bytes
ACK_TIMEOUT_S = 30.0


def echo(endpoint: str, seconds: float, max_bytes: int) -> None:
    session = open_session([endpoint], [])
    ack = publisher(session, ACK_KEY)
    dst = np.ones(max_bytes, np.uint8)  # the loan: pages touched already
    view = memoryview(dst)
    got = {"seq": None, "bytes": 0}

    def on_data(sample) -> None:  # sample: zenoh.Sample
        seq, stamp, off, total = ATTACH.unpack(sample.attachment.to_bytes())
        payload = sample.payload
        if seq < 0 or off == total:  # a probe, or bare: nothing copied
            ack.put(ACK.pack(seq, time.monotonic_ns() - stamp, len(payload)))
            return
        data = payload.to_bytes()
        view[off : off + len(data)] = data
        if got["seq"] != seq:
            got["seq"], got["bytes"] = seq, 0
        got["bytes"] += len(data)
        if got["bytes"] == total:
            ack.put(ACK.pack(seq, time.monotonic_ns() - stamp, total))

    sub = session.declare_subscriber(DATA_KEY, on_data)
    print("ready", flush=True)
    time.sleep(seconds)
    sub.undeclare()
    session.close()


def ping(endpoint: str, warmup: int, gap_s: float, mode: str, chunk: int, plan) -> None:
    session = open_session([], [endpoint])
    acks: queue.SimpleQueue[tuple[int, int, int]] = queue.SimpleQueue()
    sub = session.declare_subscriber(
        ACK_KEY, lambda s: acks.put(ACK.unpack(s.payload.to_bytes()))
    )
    pub = publisher(session, DATA_KEY)

    def wait_ack(seq: int, timeout: float) -> tuple[int, int]:
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                raise TimeoutError(seq)
            got, one_way, size = acks.get(timeout=left)
            if got == seq:
                return one_way, size

    end = time.monotonic() + 30
    probe = -1
    while True:
        pub.put(b"p", attachment=ATTACH.pack(probe, time.monotonic_ns(), 0, 0))
        try:
            wait_ack(probe, 0.2)
            break
        except (TimeoutError, queue.Empty):
            if time.monotonic() > end:
                sys.exit(f"chunk_probe: the echo at {endpoint} never answered")
            probe -= 1

    seq = 0
    for size, iterations in plan:
        src = np.ones(size, np.uint8)  # the iceoryx2 sample
        view = memoryview(src)
        prebuilt = zenoh.ZBytes(bytes(size))
        one_way_us: list[float] = []
        for i in range(warmup + iterations):
            t0 = time.monotonic_ns()
            if mode == "bare":
                pub.put(prebuilt, attachment=ATTACH.pack(seq, t0, size, size))
            elif mode == "fresh":
                fresh = zenoh.ZBytes(bytes(view))
                t0 = time.monotonic_ns()
                pub.put(fresh, attachment=ATTACH.pack(seq, t0, size, size))
                del fresh
            elif mode == "sender":
                pub.put(bytes(view), attachment=ATTACH.pack(seq, t0, size, size))
            elif mode == "whole":
                pub.put(bytes(view), attachment=ATTACH.pack(seq, t0, 0, size))
            else:
                for off in range(0, size, chunk):
                    pub.put(
                        bytes(view[off : off + chunk]),
                        attachment=ATTACH.pack(seq, t0, off, size),
                    )
            try:
                one_way, got = wait_ack(seq, ACK_TIMEOUT_S)
            except (TimeoutError, queue.Empty):
                sys.exit(
                    f"chunk_probe: no ack for {size} bytes within {ACK_TIMEOUT_S} s"
                )
            if got != size:
                sys.exit(f"chunk_probe: the echo got {got} bytes, sent {size}")
            if i >= warmup:
                one_way_us.append(one_way / 1000)
            seq += 1
            if gap_s:
                time.sleep(gap_s)
        print(json.dumps({"bytes": size, "one_way_us": one_way_us}), flush=True)
    sub.undeclare()
    session.close()


if __name__ == "__main__":
    if sys.argv[1] == "echo":
        echo(sys.argv[2], float(sys.argv[3]), int(sys.argv[4]))
    else:
        ping(
            sys.argv[2],
            int(sys.argv[3]),
            float(sys.argv[4]) / 1000,
            sys.argv[5],
            int(sys.argv[6]),
            [tuple(int(x) for x in a.split(":")) for a in sys.argv[7:]],
        )
