"""Node types for the benchmarks."""

from __future__ import annotations

import struct
import time

import numpy as np
from remotemedia_multiprocess.node import MultiprocessNode, register_node
from remotemedia_multiprocess.runtime_data import RuntimeData


@register_node("inplace_forward")
class InPlaceForward(MultiprocessNode):
    """Allocates an output like its input in shared memory and sends it,
    writing no payload byte: the cost of a session hop with no copy at all
    (the ``echo`` node copies its input into the output loan)."""

    def process(self, data: RuntimeData) -> RuntimeData:
        return self.allocate("out", like=data)


# -- bench:hops (bench/hops_report.ts) ---------------------------------------
#
# Every hop is stamped by the producer's publisher when the message is handed
# over (``timestamp_ns`` 0 is stamped at publish time) and read when the
# consumer's process() starts, holding the whole payload (it touches one byte).

_SIZE = struct.Struct("<Q")
_RESULT = struct.Struct("<QQ")
_templates: dict[int, RuntimeData] = {}


def _template(size: int) -> RuntimeData:
    """A binary message of ``size`` bytes to allocate like (never written:
    np.empty maps no page)."""
    t = _templates.get(size)
    if t is None:
        t = _templates[size] = RuntimeData.binary(np.empty(size, np.uint8))
    return t


def _result(latency_ns: int, size: int) -> RuntimeData:
    return RuntimeData.binary(np.frombuffer(_RESULT.pack(latency_ns, size), np.uint8))


@register_node("hop_source")
class HopSource(MultiprocessNode):
    """On a trigger whose 8-byte payload is a size N, allocates an N-byte
    binary output in place and sends it (its publisher stamps it)."""

    def process(self, data: RuntimeData) -> RuntimeData:
        (size,) = _SIZE.unpack(bytes(data.payload[:8]))
        return self.allocate("out", like=_template(size))


@register_node("hop_relay")
class HopRelay(MultiprocessNode):
    """Allocates an output like its input (no byte copied) carrying the
    input's stamp, so the last node of a chain measures the whole chain."""

    def process(self, data: RuntimeData) -> RuntimeData:
        _ = data.payload[-1] if data.nbytes else 0
        out = self.allocate("out", like=data)
        out.timestamp_ns = data.timestamp_ns
        return out


@register_node("hop_sink")
class HopSink(MultiprocessNode):
    """Measures now - stamp when process() starts (touching one byte) and
    answers 16 bytes: the latency in ns and the size received."""

    def process(self, data: RuntimeData) -> RuntimeData:
        now = time.monotonic_ns()
        _ = data.payload[-1] if data.nbytes else 0
        return _result(now - data.timestamp_ns, data.nbytes)
