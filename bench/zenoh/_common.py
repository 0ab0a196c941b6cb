"""What the Zenoh peers of ``bench:hosts`` share (bench/hosts_report.ts).

The measured path is plain Zenoh: a publisher in one peer, a subscriber in the
other, TCP over the veth pair between two network namespaces, reliable, with
``CongestionControl.BLOCK`` (nothing dropped: the publisher waits for room).
"""

from __future__ import annotations

import json
import struct

import zenoh

PING_KEY = "rmp/bench/hosts/ping"
ACK_KEY = "rmp/bench/hosts/ack"
# The ping's attachment: sequence (negative for a probe), CLOCK_MONOTONIC stamp
# in ns taken just before put().
STAMP = struct.Struct("<qQ")
# The echo's answer: sequence, one-way ns (receipt - stamp), payload bytes.
ACK = struct.Struct("<qQQ")


def open_session(listen: list[str], connect: list[str]) -> zenoh.Session:
    """A peer-mode session on exactly these endpoints (no scouting, so the
    peers meet only over the link under test; no Zenoh shared memory, so
    every byte crosses TCP)."""
    conf = zenoh.Config()
    conf.insert_json5("mode", '"peer"')
    conf.insert_json5("listen/endpoints", json.dumps(listen))
    conf.insert_json5("connect/endpoints", json.dumps(connect))
    conf.insert_json5("scouting/multicast/enabled", "false")
    conf.insert_json5("scouting/gossip/enabled", "false")
    conf.insert_json5("transport/shared_memory/enabled", "false")
    return zenoh.open(conf)


def publisher(session: zenoh.Session, key: str) -> zenoh.Publisher:
    """A reliable publisher that blocks (never drops) when the link is full."""
    return session.declare_publisher(
        key,
        congestion_control=zenoh.CongestionControl.BLOCK,
        reliability=zenoh.Reliability.RELIABLE,
    )
