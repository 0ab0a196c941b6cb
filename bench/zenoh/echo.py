"""The far peer of ``bench:hosts``: ``echo.py <listen-endpoint> <seconds>``.

Listens on the endpoint (e.g. ``tcp/10.231.0.2:7447``), and for every ping
sample answers a 24-byte ack: the ping's sequence, the one-way time (its
CLOCK_MONOTONIC receipt minus the ping's stamp; network namespaces share the
monotonic clock) and the payload size. Zenoh hands a sample to the callback
only whole (reassembled), so receipt means the payload is all here. Prints
``ready`` once subscribed; exits after ``<seconds>`` (a bound: the bench kills
it sooner).
"""

from __future__ import annotations

import sys
import time

from _common import ACK, ACK_KEY, PING_KEY, STAMP, open_session, publisher


def main() -> None:
    endpoint, seconds = sys.argv[1], float(sys.argv[2])
    session = open_session([endpoint], [])
    ack = publisher(session, ACK_KEY)

    def on_ping(sample) -> None:  # sample: zenoh.Sample
        now = time.monotonic_ns()
        payload = sample.payload
        seq, stamp = STAMP.unpack(sample.attachment.to_bytes())
        ack.put(ACK.pack(seq, now - stamp, len(payload)))

    sub = session.declare_subscriber(PING_KEY, on_ping)
    print("ready", flush=True)
    time.sleep(seconds)
    sub.undeclare()
    session.close()


if __name__ == "__main__":
    main()
