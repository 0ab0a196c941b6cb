"""Node types for the executor tests: silent loaders, every kind of crash, in-place outputs."""

from __future__ import annotations

import asyncio
import ctypes
import os
import sys

import numpy as np
from remotemedia_multiprocess.node import MultiprocessNode, register_node
from remotemedia_multiprocess.runtime_data import RuntimeData


@register_node("silent_loader")
class SilentLoader(MultiprocessNode):
    """Loads for config["seconds"] without reporting anything."""

    async def initialize(self) -> None:
        await asyncio.sleep(float(self.config.get("seconds", 1)))

    def process(self, data: RuntimeData) -> RuntimeData:
        return data


@register_node("init_raises")
class InitRaises(MultiprocessNode):
    async def initialize(self) -> None:
        raise RuntimeError("model file is corrupt")


@register_node("init_hangs")
class InitHangs(MultiprocessNode):
    async def initialize(self) -> None:
        await asyncio.sleep(3600)


@register_node("crasher")
class Crasher(MultiprocessNode):
    """On input text "exit": os._exit(3); "segv": a segfault; "raise": an exception."""

    def process(self, data: RuntimeData) -> RuntimeData:
        command = data.text
        if command == "exit":
            os._exit(3)
        if command == "stderr-exit":
            print("disk full while writing the cache", file=sys.stderr, flush=True)
            os._exit(3)
        if command == "segv":
            ctypes.string_at(0)
        if command == "raise":
            raise ValueError("bad input in process")
        return data


@register_node("inplace_gain")
class InPlaceGain(MultiprocessNode):
    """Doubles audio into an output allocated in shared memory; a binary input
    is allocated for and dropped (its chunk must come back); text is echoed."""

    def process(self, data: RuntimeData) -> RuntimeData | None:
        if data.kind == "text":
            return data.copy()
        out = self.allocate("out", like=data)
        if data.kind == "binary":
            return None
        np.multiply(data.payload, 2, out=out.payload)
        return out


@register_node("line_printer")
class LinePrinter(MultiprocessNode):
    """On input text "<n>": prints one line of n characters ("0123456789"
    repeated) in 1 MiB writes without a newline until the end, then echoes."""

    def process(self, data: RuntimeData) -> RuntimeData:
        n = int(data.text)
        block = "0123456789" * (1024 * 1024 // 10)
        written = 0
        while written < n:
            part = block[: min(len(block), n - written)]
            sys.stdout.write(part)
            written += len(part)
        sys.stdout.write("\n")
        sys.stdout.flush()
        return data.copy()
