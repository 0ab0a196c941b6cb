"""dora-rs source of bench:hops (bench/dora_hops.ts): on a timer tick, when the
previous message was acknowledged, loans an N-byte output in place
(``send_output_raw``), stamps CLOCK_MONOTONIC into its first 8 bytes as the
last write before the send, and sends it. Stays alive until the sink
acknowledged the last message (a source that exits early can lose outputs).

Environment: ``HOPS_SIZES`` (comma-separated), ``HOPS_COUNT`` (messages per
size, warm-up included).
"""

from __future__ import annotations

import os
import struct
import time

import numpy as np
from dora import Node

_STAMP = struct.Struct("<Q")


def main() -> None:
    sizes = [int(s) for s in os.environ["HOPS_SIZES"].split(",")]
    count = int(os.environ["HOPS_COUNT"])
    plan = [size for size in sizes for _ in range(count)]
    node = Node()
    waiting = False
    sent = 0
    for event in node:
        if event["type"] != "INPUT":
            if event["type"] == "STOP":
                break
            continue
        if event["id"] == "ack":
            waiting = False
            if sent == len(plan):
                break
        elif event["id"] == "tick" and not waiting and sent < len(plan):
            size = plan[sent]
            with node.send_output_raw("data", size) as buf:
                _STAMP.pack_into(np.frombuffer(buf, np.uint8), 0, time.monotonic_ns())
            waiting = True
            sent += 1


if __name__ == "__main__":
    main()
