"""Node types for the crash torture scenario (reliability/crash.ts).

``crash_node`` passes every input through and, when its config says so, dies:

- ``method``: ``none`` (never dies), ``kill9`` (SIGKILL to itself), ``sigsegv``
  (a real invalid memory access: reading address 0), ``os_exit`` (``os._exit(code)``),
  ``exception`` (an exception the runner does not survive, see below),
  ``memory_error`` (a real allocation failure under a lowered address-space
  limit), ``hang_in_init`` (``initialize()`` never returns);
- ``moment``: ``during_init`` (inside ``initialize()``, after ``delay_ms``),
  ``after_ready`` (a thread started by ``initialize()`` dies ``delay_ms`` after
  it returned), ``mid_stream`` (inside ``process()`` of the ``at``-th input);
- ``stamp``: a file where the node writes the wall-clock time (ms since the
  epoch) just before it dies, so Deno can measure the detection latency.

What "an uncaught exception" means at each moment (Python has no other way
for an exception to end a process):

- during init: an exception raised from ``initialize()``; the runner reports
  it as an ``init_error`` and exits 1 (``NodeInitError`` in Deno);
- mid stream: a ``BaseException`` that is not an ``Exception`` raised from
  ``process()`` (what ``asyncio.CancelledError`` or ``SystemExit`` from a
  library are): the runner catches only ``Exception`` there, so it escapes the
  runner and the process exits 1 (``ProcessCrashError``); an ordinary
  ``Exception`` from ``process()`` is a ``process_error`` and the node lives on;
- after ready there is no code of the node on the main thread, and an
  exception in another thread does not end a Python process: not a case.

``memory_error`` mid stream is a ``MemoryError`` (an ``Exception``) from
``process()``: by design the runtime reports it as a ``process_error`` and the
node keeps running; the scenario checks exactly that.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import resource
import signal
import threading
import time

from remotemedia_multiprocess.node import MultiprocessNode, register_node
from remotemedia_multiprocess.runtime_data import RuntimeData


class FatalNodeError(BaseException):
    """Escapes the runner's ``except Exception`` around ``process()``."""


def _stamp(path: str | None) -> None:
    if not path:
        return
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, f"{time.time() * 1000:.3f}".encode())
    finally:
        os.close(fd)


def _exhaust_memory() -> None:
    """Raises a real MemoryError: an allocation larger than a lowered
    address-space limit. The limit is restored before returning or raising."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/statm", encoding="ascii") as f:
        mapped = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    limit = mapped + 256 * 1024 * 1024
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    try:
        block = bytearray(1024 * 1024 * 1024)
        del block
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    raise RuntimeError("a 1 GiB allocation under a 256 MiB headroom limit succeeded")


def _die(method: str, code: int, stamp: str | None, *, main_thread: bool) -> None:
    """Ends this process (or raises) the way ``method`` says."""
    _stamp(stamp)
    if method == "kill9":
        os.kill(os.getpid(), signal.SIGKILL)
    elif method == "sigsegv":
        ctypes.string_at(0)
    elif method == "os_exit":
        os._exit(code)
    elif method == "exception":
        if not main_thread:
            raise RuntimeError("exception is not a case off the main thread")
        raise FatalNodeError("crash_node: fatal error escaping process()")
    elif method == "memory_error":
        _exhaust_memory()
    # Reached only by methods that raise nothing here.
    time.sleep(5)
    os._exit(99)


@register_node("crash_node")
class CrashNode(MultiprocessNode):
    """Passes inputs through; dies as its config says (see the module doc)."""

    def __init__(self, node_id: str, config: dict | None = None) -> None:
        super().__init__(node_id, config)
        self.method = str(self.config.get("method", "none"))
        self.moment = str(self.config.get("moment", "none"))
        self.delay = float(self.config.get("delay_ms", 0)) / 1000
        self.at = int(self.config.get("at", 1))
        self.code = int(self.config.get("code", 3))
        self.stamp = self.config.get("stamp")
        self.seen = 0

    async def initialize(self) -> None:
        if self.method == "none" or self.moment == "before_connect":
            return
        if self.method == "hang_in_init":
            self.report_progress(0.5, "hanging")
            if self.config.get("blocking"):
                # Blocks the runner's loop: not even a shutdown gets through.
                time.sleep(3600)  # noqa: ASYNC251 - the point: a blocked loop
            await asyncio.sleep(3600)
            return
        if self.moment == "during_init":
            self.report_progress(0.5, "about to die")
            await asyncio.sleep(self.delay)
            if self.method == "exception":
                _stamp(self.stamp)
                raise RuntimeError("crash_node: initialize() failed on purpose")
            _die(self.method, self.code, self.stamp, main_thread=True)
        elif self.moment == "after_ready":

            def later() -> None:
                time.sleep(self.delay)
                _die(self.method, self.code, self.stamp, main_thread=False)

            threading.Thread(target=later, daemon=True).start()

    def process(self, data: RuntimeData) -> RuntimeData:
        self.seen += 1
        if (
            self.moment == "mid_stream"
            and self.seen == self.at
            and self.method != "none"
        ):
            _die(self.method, self.code, self.stamp, main_thread=True)
        return data
