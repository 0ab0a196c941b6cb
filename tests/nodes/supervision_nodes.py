"""Node types for the supervision tests: they crash, hang, stop or exit on command."""

from __future__ import annotations

import os
import signal
import time

from remotemedia_multiprocess.node import MultiprocessNode, register_node
from remotemedia_multiprocess.runtime_data import RuntimeData


@register_node("supervised")
class Supervised(MultiprocessNode):
    """Echoes text. Commands: "exit3" (os._exit(3)), "exit0" (os._exit(0)),
    "sleep:S" (sleeps S seconds, then echoes), "stop" (SIGSTOP to itself),
    "attempt" (answers "attempt N", N its restart attempt). config
    "delay_ms" sleeps that long before every echo; "fail_restarts" makes
    initialize() raise in every restarted process."""

    async def initialize(self) -> None:
        self.report_progress(0.5, f"loading (attempt {self.restart_attempt})")
        if self.restarted and self.config.get("fail_restarts"):
            raise RuntimeError("this node cannot start twice")

    def process(self, data: RuntimeData) -> RuntimeData | None:
        text = data.as_text()
        if text == "exit3":
            os._exit(3)
        if text == "exit0":
            os._exit(0)
        if text == "stop":
            os.kill(os.getpid(), signal.SIGSTOP)
        if text.startswith("sleep:"):
            time.sleep(float(text.split(":", 1)[1]))
        if text == "attempt":
            return RuntimeData.text(f"attempt {self.restart_attempt} restarted={self.restarted}")
        delay = float(self.config.get("delay_ms", 0))
        if delay:
            time.sleep(delay / 1000)
        return RuntimeData.text(text)
