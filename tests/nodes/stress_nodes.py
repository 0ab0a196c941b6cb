"""Node types for tests/no_loss_test.ts: a source, a checking pass-through and a
checking sink of numbered, checksummed messages.

The stream (the same from Deno and from ``stress_source``): data messages
``1..N`` then one json end marker. A data message is a ``gray8`` video frame
of ``width = len(payload)``, ``height = 1`` whose header ``sequence`` is its
number ``i`` and whose ``frame_number`` is ``i << 32 | crc32(payload)``. The
end marker is ``{"end": N, "bytes": sum of payload lengths, "crc_sum": sum
of the CRCs}`` (exact in a JS number below 2**21 messages) plus ``"hops"``: the reports of the checking nodes
it went through.

Every reader checks each message against the previous ones (:class:`Checker`)
and pauses at random (config ``seed``, ``pause_p``, ``pause_ms``) while it
holds the input, so its publisher fills the channel and must wait.
"""

from __future__ import annotations

import math
import random
import time
import zlib
from collections.abc import Iterator
from typing import Any

import numpy as np
from remotemedia_multiprocess.node import MultiprocessNode, register_node
from remotemedia_multiprocess.runtime_data import RuntimeData

_MAX_ERRORS = 10  # first errors kept in a report


class Checker:
    """Counts lost, duplicated, reordered and corrupted messages of a stream."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.received = 0
        self.duplicated = 0
        self.reordered = 0
        self.corrupted = 0
        self.bytes = 0
        self.crc_sum = 0
        self.last = 0
        self.seen = bytearray(1024)
        self.errors: list[str] = []

    def _error(self, message: str) -> None:
        if len(self.errors) < _MAX_ERRORS:
            self.errors.append(message)

    def check(self, rd: RuntimeData) -> None:
        """Checks one data message."""
        seq = rd.sequence
        self.received += 1
        crc = zlib.crc32(rd.payload)
        if rd.kind != "video" or rd.frame_number != (seq << 32 | crc):
            self.corrupted += 1
            self._error(f"#{seq}: frame_number {rd.frame_number:#x}, payload crc {crc:#x}")
        self.bytes += rd.nbytes
        self.crc_sum += crc
        if seq >= len(self.seen):
            self.seen.extend(bytes(max(seq + 1, 2 * len(self.seen)) - len(self.seen)))
        if self.seen[seq]:
            self.duplicated += 1
            self._error(f"#{seq} again after #{self.last}")
        elif seq < self.last:
            self.reordered += 1
            self._error(f"#{seq} after #{self.last}")
        self.seen[seq] = 1
        self.last = max(self.last, seq)

    def report(self, end: dict[str, Any]) -> dict[str, Any]:
        """The report once the end marker ``end`` arrived."""
        n = int(end["end"])
        unique = sum(self.seen[1 : n + 1])
        return {
            "reader": self.name,
            "expected": n,
            "received": self.received,
            "lost": n - unique,
            "duplicated": self.duplicated,
            "reordered": self.reordered,
            "corrupted": self.corrupted,
            "totals_match": self.bytes == end["bytes"] and self.crc_sum == end["crc_sum"],
            "errors": self.errors,
        }


class _Pauses:
    """Random pauses of a reader: with probability ``pause_p`` per message,
    sleeps up to ``pause_ms`` (uniform)."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.rng = random.Random(int(config.get("seed", 0)))
        self.p = float(config.get("pause_p", 0))
        self.max_s = float(config.get("pause_ms", 0)) / 1000.0

    def maybe(self) -> None:
        if self.p and self.rng.random() < self.p:
            time.sleep(self.rng.uniform(0, self.max_s))


@register_node("stress_sink")
class StressSink(MultiprocessNode):
    """Checks every message; answers the end marker with its report (json on
    ``out``, the upstream reports in ``hops``)."""

    def __init__(self, node_id: str, config: dict[str, Any] | None = None) -> None:
        super().__init__(node_id, config)
        self.checker = Checker(node_id)
        self.pauses = _Pauses(self.config)

    def process(self, data: RuntimeData) -> RuntimeData | None:
        if data.kind == "json":
            end = data.as_json()
            report = self.checker.report(end)
            self.checker = Checker(self.node_id)
            return RuntimeData.json({"hops": [*end.get("hops", []), report]})
        self.checker.check(data)
        self.pauses.maybe()
        return None


@register_node("stress_pass")
class StressPass(StressSink):
    """Checks every message and forwards it unchanged (one copy into the next
    channel); adds its report to the end marker it forwards."""

    def process(self, data: RuntimeData) -> RuntimeData | None:
        if data.kind == "json":
            end = data.as_json()
            report = self.checker.report(end)
            self.checker = Checker(self.node_id)
            return RuntimeData.json({**end, "hops": [*end.get("hops", []), report]})
        self.checker.check(data)
        self.pauses.maybe()
        return data


def sizes(
    rng: random.Random, count: int, big_p: float, small_max: int, big_max: int
) -> Iterator[int]:
    """Payload sizes: log-uniform on [1, small_max], or with probability
    ``big_p`` log-uniform on [small_max, big_max] (the same rule as the test)."""
    for _ in range(count):
        lo, hi = (small_max, big_max) if rng.random() < big_p else (1, small_max)
        yield min(hi, int(math.exp(rng.uniform(math.log(lo), math.log(hi + 1)))))


@register_node("stress_source")
class StressSource(MultiprocessNode):
    """On a json command ``{"count", "seed", "big_p", "small_max", "big_max"}``
    sends ``count`` numbered messages of random sizes, then the end marker."""

    def process(self, data: RuntimeData) -> Iterator[RuntimeData]:
        cmd = data.as_json()
        rng = random.Random(int(cmd["seed"]))
        big_max = int(cmd["big_max"])
        # Payloads are slices of one random pool, at random offsets.
        pool = np.random.default_rng(int(cmd["seed"])).integers(
            0, 256, big_max + (1 << 20), dtype=np.uint8
        )
        total = crc_sum = 0
        stream = sizes(rng, int(cmd["count"]), float(cmd["big_p"]), int(cmd["small_max"]), big_max)
        for seq, n in enumerate(stream, 1):
            at = rng.randrange(len(pool) - n + 1)
            payload = pool[at : at + n]
            crc = zlib.crc32(payload)
            total += n
            crc_sum += crc
            yield RuntimeData.video(
                payload, n, 1, "gray8", frame_number=seq << 32 | crc, sequence=seq
            )
        yield RuntimeData.json({"end": int(cmd["count"]), "bytes": total, "crc_sum": crc_sum})
