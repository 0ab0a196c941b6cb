"""Node types used by python/tests/test_runner.py (real runner processes)."""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

from remotemedia_multiprocess.node import MultiprocessNode, register_node
from remotemedia_multiprocess.runtime_data import RuntimeData


@register_node("t_echo")
class TEcho(MultiprocessNode):
    """Returns its input; writes a marker file from cleanup() when configured."""

    async def cleanup(self) -> None:
        marker = self.config.get("cleanup_marker")
        if marker:
            Path(marker).write_text("cleaned up")

    def process(self, data: RuntimeData) -> RuntimeData:
        return data


@register_node("t_progress")
class TProgress(MultiprocessNode):
    async def initialize(self) -> None:
        for i in range(1, 5):
            await asyncio.sleep(0.01)
            self.report_progress(i / 4, f"step {i}")
        self.report_progress(None, "finishing")

    def process(self, data: RuntimeData) -> RuntimeData:
        return data


@register_node("t_flaky")
class TFlaky(MultiprocessNode):
    """Raises on the text "boom", upper-cases any other text."""

    async def process(self, data: RuntimeData) -> RuntimeData:
        text = data.as_text()
        if text == "boom":
            raise RuntimeError("exploded on purpose")
        return RuntimeData.text(text.upper())


@register_node("t_init_fail")
class TInitFail(MultiprocessNode):
    async def initialize(self) -> None:
        self.report_progress(0.5, "about to fail")
        raise ValueError("model file missing on purpose")


@register_node("t_printer")
class TPrinter(MultiprocessNode):
    """Prints protocol-looking lines and logs, then echoes."""

    async def initialize(self) -> None:
        print('{"type":"ready"}')
        print("printed during initialize")
        logging.getLogger("t_printer").warning("logged during initialize")

    def process(self, data: RuntimeData) -> RuntimeData:
        print(f"processing {data.as_text()}")
        print("no newline yet", end="")
        print(" ... now")
        print("to stderr", file=sys.stderr)
        return data


@register_node("t_stream")
class TStream(MultiprocessNode):
    """Async generator: yields config["n"] texts (default 5) per input."""

    async def process(self, data: RuntimeData) -> AsyncIterator[RuntimeData]:
        text = data.as_text()
        for i in range(int(self.config.get("n", 5))):
            await asyncio.sleep(0)
            yield RuntimeData.text(f"{text}-{i}")


@register_node("t_sync_stream")
class TSyncStream(MultiprocessNode):
    """Sync generator yielding (port, data) pairs on two ports."""

    outputs = ("out", "side")

    def process(self, data: RuntimeData) -> Iterator[tuple[str, RuntimeData]]:
        text = data.as_text()
        yield ("out", RuntimeData.text(f"{text}-a"))
        yield ("side", RuntimeData.text(f"{text}-side"))
        yield ("out", RuntimeData.text(f"{text}-b"))


@register_node("t_two_inputs")
class TTwoInputs(MultiprocessNode):
    """Tags each input with the port it arrived on."""

    inputs = ("left", "right")

    def process(self, data: RuntimeData) -> dict[str, RuntimeData]:
        return {"out": RuntimeData.text(f"{data.port}:{data.as_text()}")}


@register_node("t_slow")
class TSlow(MultiprocessNode):
    """Blocks in process() for as many seconds as the input text says, or
    config["seconds"] when it is not a number."""

    def process(self, data: RuntimeData) -> RuntimeData:
        try:
            seconds = float(data.as_text())
        except ValueError:
            seconds = float(self.config.get("seconds", 5))
        time.sleep(seconds)
        return data


@register_node("t_ticker")
class TTicker(MultiprocessNode):
    """A background task started in initialize() emits config["n"] ticks."""

    inputs = ()

    async def initialize(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._tick())

    async def _tick(self) -> None:
        for i in range(int(self.config.get("n", 5))):
            await asyncio.sleep(0.02)
            self.emit("out", RuntimeData.text(f"tick {i}"))

    async def cleanup(self) -> None:
        self._task.cancel()
