"""Node types of the reliability suite's load, backpressure and soak scenarios
(reliability/load.ts, backpressure.ts, soak.ts).

The stream: binary messages numbered ``1..N`` in the header ``sequence``
(never 0: a publisher stamps 0), then one json end marker ``{"end": N}``.
A message's payload carries its own number and checksum (see :func:`check`):

- 12 B or more: ``seq`` (u64 little-endian), ``crc32`` of the rest (u32 LE),
  the rest;
- under 12 B: byte ``i`` is ``(seq + 131 * i) & 0xff`` (too short for a
  prefix, but still tied to its number).

``load_check`` checks each message against its own number and against the
previous one (exactly one more), raises on a bad one (so the session's error
listener hears it) and forwards it unchanged. ``load_slow`` forwards after
sleeping ``sleep_ms`` per message (a slow consumer for backpressure).
"""

from __future__ import annotations

import struct
import time
import zlib
from typing import Any

from remotemedia_multiprocess.node import MultiprocessNode, register_node
from remotemedia_multiprocess.runtime_data import RuntimeData

_PREFIX = struct.Struct("<QI")


def check(seq: int, payload: memoryview) -> str | None:
    """What is wrong with message ``seq`` of payload ``payload``, or None."""
    n = payload.nbytes
    if n >= _PREFIX.size:
        own_seq, crc = _PREFIX.unpack_from(payload, 0)
        if own_seq != seq:
            return f"header sequence {seq} but payload sequence {own_seq}"
        got = zlib.crc32(payload[_PREFIX.size :])
        if got != crc:
            return f"#{seq} ({n} B): crc32 {got:#010x}, payload says {crc:#010x}"
        return None
    want = bytes((seq + 131 * i) & 0xFF for i in range(n))
    if bytes(payload) != want:
        return f"#{seq} ({n} B): bytes {bytes(payload).hex()}, want {want.hex()}"
    return None


@register_node("load_check")
class LoadCheck(MultiprocessNode):
    """Checks every message (own checksum, exactly one after the previous) and
    forwards it unchanged; forwards the end marker with its count added to
    ``hops``, and starts counting again."""

    def __init__(self, node_id: str, config: dict[str, Any] | None = None) -> None:
        super().__init__(node_id, config)
        self.last = 0
        self.received = 0

    def process(self, data: RuntimeData) -> RuntimeData:
        if data.kind == "json":
            end = data.as_json()
            hops = [
                *end.get("hops", []),
                {"node": self.node_id, "received": self.received},
            ]
            self.last = self.received = 0
            return RuntimeData.json({**end, "hops": hops})
        seq = data.sequence
        self.received += 1
        expected = self.last + 1
        self.last = seq
        if seq != expected:
            raise ValueError(
                f"Node {self.node_id} got #{seq} where #{expected} was due"
            )
        problem = check(seq, data.payload)
        if problem is not None:
            raise ValueError(f"Node {self.node_id} got a corrupted message: {problem}")
        return data


@register_node("load_slow")
class LoadSlow(LoadCheck):
    """A ``load_check`` that sleeps ``sleep_ms`` (config) before each message
    it forwards, holding it: its publisher fills the channel and must wait."""

    def process(self, data: RuntimeData) -> RuntimeData:
        if data.kind != "json":
            time.sleep(float(self.config.get("sleep_ms", 1)) / 1000.0)
        return super().process(data)
