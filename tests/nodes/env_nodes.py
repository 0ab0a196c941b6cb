"""Node types for the per-environment tests: report which Python environment runs them."""

from __future__ import annotations

import sys

import numpy as np
from remotemedia_multiprocess.node import MultiprocessNode, register_node
from remotemedia_multiprocess.runtime_data import RuntimeData


@register_node("env_report")
class EnvReport(MultiprocessNode):
    """For every input: JSON with this process's numpy version and interpreter,
    and the sum of the input payload computed with that numpy."""

    def process(self, data: RuntimeData) -> RuntimeData:
        return RuntimeData.from_json(
            {
                "node": self.node_id,
                "numpy": np.__version__,
                "executable": sys.executable,
                "sum": int(np.asarray(data.payload, dtype=np.uint8).sum(dtype=np.int64)),
            }
        )
