"""Example nodes used by the demos and the Deno tests.

Import with ``modules: ["demo_nodes"], modulePaths: ["examples/nodes"]``.

- ``echo``: returns its input unchanged.
- ``cpu_burn``: pure-Python CPU work (holds the GIL), to show that nodes in
  separate processes run in parallel.
- ``slow_loader``: a slow ``initialize()`` that reports its progress.
- ``chunker``: a streaming node; yields its input in several chunks (text:
  one chunk per word; audio: fixed-length chunks; anything else: bytes).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

from remotemedia_multiprocess.node import MultiprocessNode, register_node
from remotemedia_multiprocess.runtime_data import RuntimeData


@register_node("echo")
class Echo(MultiprocessNode):
    """Sends every input back out unchanged."""

    def process(self, data: RuntimeData) -> RuntimeData:
        return data


@register_node("cpu_burn")
class CpuBurn(MultiprocessNode):
    """Spins for ``config["ms"]`` milliseconds (default 20) of pure Python, or
    for ``config["iterations"]`` loop iterations (fixed work), then passes the
    input through."""

    def process(self, data: RuntimeData) -> RuntimeData:
        if "iterations" in self.config:
            # Fixed work (not a time budget): what benchmarks of parallelism need.
            x = 0
            for i in range(int(self.config["iterations"])):
                x += i * i
            return data
        budget = float(self.config.get("ms", 20)) / 1000.0
        end = time.perf_counter() + budget
        x = 0
        while time.perf_counter() < end:
            for i in range(1000):
                x += i * i
        return data


@register_node("slow_loader")
class SlowLoader(MultiprocessNode):
    """Takes ``config["seconds"]`` (default 2) to initialize, in ``config["steps"]``
    (default 10) progress reports, like a model being loaded."""

    async def initialize(self) -> None:
        seconds = float(self.config.get("seconds", 2.0))
        steps = max(1, int(self.config.get("steps", 10)))
        self.report_progress(0.0, "loading model")
        for step in range(1, steps + 1):
            await asyncio.sleep(seconds / steps)
            self.report_progress(step / steps, f"loaded {step}/{steps} shards")

    def process(self, data: RuntimeData) -> RuntimeData:
        return data


@register_node("chunker")
class Chunker(MultiprocessNode):
    """Streams its input out in pieces, like a TTS node streams audio chunks.

    Config: ``chunk_ms`` (audio, default 20), ``chunk_bytes`` (binary, default
    4096), ``delay_ms`` between chunks (default 0).
    """

    async def process(self, data: RuntimeData) -> AsyncIterator[RuntimeData]:
        delay = float(self.config.get("delay_ms", 0)) / 1000.0
        for chunk in self._chunks(data):
            yield chunk
            if delay:
                await asyncio.sleep(delay)

    def _chunks(self, data: RuntimeData) -> list[RuntimeData]:
        # Every chunk is a copy: the input's payload is a view of shared
        # memory that is released once process() finishes.
        if data.kind == "text":
            words = data.as_text().split()
            return [RuntimeData.text(w, language=data.language) for w in words]
        if data.kind == "audio":
            frames = data.payload  # shape (frames, channels)
            rate = int(data.sample_rate or 0)
            step = max(1, rate * int(self.config.get("chunk_ms", 20)) // 1000)
            return [
                RuntimeData.audio(frames[i : i + step].copy(), rate, data.channels)
                for i in range(0, len(frames), step)
            ]
        raw = data.as_bytes()
        size = max(1, int(self.config.get("chunk_bytes", 4096)))
        return [RuntimeData.binary(raw[i : i + size]) for i in range(0, len(raw), size)]
