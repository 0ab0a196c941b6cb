"""Node types of the reliability suite's restart scenario: relays that die on command."""

from __future__ import annotations

import ctypes
import os
import pathlib
import signal
import time

from remotemedia_multiprocess.node import MultiprocessNode, register_node
from remotemedia_multiprocess.runtime_data import RuntimeData


@register_node("crash_relay")
class CrashRelay(MultiprocessNode):
    """Forwards every message. A text message "crash:<node id>:<method>" makes
    the named node die (the others forward it): it first writes
    CLOCK_MONOTONIC nanoseconds to ``<config.dir>/<node id>.crash``, so the
    suite can time the detection. Methods: segv (a real invalid read), exit
    (os._exit(7)), abort (SIGABRT), stop (SIGSTOP: caught by the ping health
    check), hang (a process() call that never returns: caught by
    process_timeout_secs). config "delay_ms" slows every message down."""

    def process(self, data: RuntimeData) -> RuntimeData:
        if data.kind == "text":
            text = data.as_text()
            if text.startswith("crash:"):
                _, victim, method = text.split(":", 2)
                if victim == self.node_id:
                    self._die(method)
        delay = float(self.config.get("delay_ms", 0))
        if delay:
            time.sleep(delay / 1000)
        return data

    def _die(self, method: str) -> None:
        folder = pathlib.Path(str(self.config["dir"]))
        (folder / f"{self.node_id}.crash").write_text(str(time.monotonic_ns()))
        if method == "segv":
            ctypes.string_at(0)
        elif method == "exit":
            os._exit(7)
        elif method == "abort":
            os.abort()
        elif method == "stop":
            os.kill(os.getpid(), signal.SIGSTOP)
        elif method == "hang":
            while True:
                time.sleep(3600)
        raise ValueError(f"unknown crash method {method!r}")
