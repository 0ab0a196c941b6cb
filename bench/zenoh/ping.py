"""The near peer of ``bench:hosts``: ``ping.py <connect-endpoint> <warmup>
<gap-ms> <size>:<iterations>...``.

Connects to the echo, probes until an ack comes back (the route is up), then
per size sends ``warmup + iterations`` pings of that many bytes one at a time, each stamped
(attachment) just before ``put()`` and acknowledged before the next, ``gap-ms``
after the ack. Prints one JSON line per size: ``{"bytes", "one_way_us",
"round_trip_us"}`` (warm-up dropped). Every wait is bounded: a lost ack exits 1.
"""

from __future__ import annotations

import json
import queue
import sys
import time

import zenoh
from _common import ACK, ACK_KEY, PING_KEY, STAMP, open_session, publisher

ACK_TIMEOUT_S = 30.0
PROBE_BOUND_S = 30.0


def main() -> None:
    endpoint = sys.argv[1]
    warmup, gap_s = int(sys.argv[2]), float(sys.argv[3]) / 1000
    plan = [tuple(int(x) for x in arg.split(":")) for arg in sys.argv[4:]]
    session = open_session([], [endpoint])
    acks: queue.SimpleQueue[tuple[int, int, int, int]] = queue.SimpleQueue()

    def on_ack(sample) -> None:  # sample: zenoh.Sample
        now = time.monotonic_ns()
        seq, one_way, size = ACK.unpack(sample.payload.to_bytes())
        acks.put((seq, one_way, size, now))

    sub = session.declare_subscriber(ACK_KEY, on_ack)
    ping = publisher(session, PING_KEY)

    def wait_ack(seq: int, timeout: float) -> tuple[int, int, int]:
        """The ack of ``seq`` (older ones, from probes, are skipped)."""
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"No ack for ping {seq} within {timeout} s")
            got, one_way, size, now = acks.get(timeout=left)
            if got == seq:
                return one_way, size, now

    # The echo's subscription reaches us some time after the connection: probe.
    end = time.monotonic() + PROBE_BOUND_S
    probe = -1
    while True:
        ping.put(b"p", attachment=STAMP.pack(probe, time.monotonic_ns()))
        try:
            wait_ack(probe, 0.2)
            break
        except (TimeoutError, queue.Empty):
            if time.monotonic() > end:
                sys.exit(f"ping.py: the echo at {endpoint} never answered")
            probe -= 1

    seq = 0
    for size, iterations in plan:
        payload = zenoh.ZBytes(bytes(size))  # built once: put() is what is timed
        one_way_us: list[float] = []
        round_trip_us: list[float] = []
        for i in range(warmup + iterations):
            t0 = time.monotonic_ns()
            ping.put(payload, attachment=STAMP.pack(seq, t0))
            try:
                one_way, got, now = wait_ack(seq, ACK_TIMEOUT_S)
            except (TimeoutError, queue.Empty):
                sys.exit(f"ping.py: no ack for {size} bytes within {ACK_TIMEOUT_S} s")
            if got != size:
                sys.exit(f"ping.py: the echo got {got} bytes, sent {size}")
            if i >= warmup:
                one_way_us.append(one_way / 1000)
                round_trip_us.append((now - t0) / 1000)
            seq += 1
            if gap_s:
                time.sleep(gap_s)
        print(
            json.dumps(
                {
                    "bytes": size,
                    "one_way_us": one_way_us,
                    "round_trip_us": round_trip_us,
                }
            ),
            flush=True,
        )
    sub.undeclare()
    session.close()


if __name__ == "__main__":
    main()
