"""Node types for the benchmarks."""

from __future__ import annotations

from remotemedia_multiprocess.node import MultiprocessNode, register_node
from remotemedia_multiprocess.runtime_data import RuntimeData


@register_node("inplace_forward")
class InPlaceForward(MultiprocessNode):
    """Allocates an output like its input in shared memory and sends it,
    writing no payload byte: the cost of a session hop with no copy at all
    (the ``echo`` node copies its input into the output loan)."""

    def process(self, data: RuntimeData) -> RuntimeData:
        return self.allocate("out", like=data)
