"""Node types of the multi-host tests (tests/hosts_test.ts)."""

from __future__ import annotations

import os
import time

from remotemedia_multiprocess.node import MultiprocessNode, register_node
from remotemedia_multiprocess.runtime_data import RuntimeData


@register_node("where")
class Where(MultiprocessNode):
    """Says where it runs: text "<x>" becomes "<net namespace>|<pid>|<x>"
    (the namespace as /proc/self/ns/net names it); other data passes through."""

    def process(self, data: RuntimeData) -> RuntimeData:
        if data.kind == "text":
            ns = os.readlink("/proc/self/ns/net")
            return RuntimeData.from_text(f"{ns}|{os.getpid()}|{data.text}")
        return data.copy()


@register_node("gate")
class Gate(MultiprocessNode):
    """Holds its first message until the file config["open_file"] exists
    (a consumer that stalls), then passes everything through."""

    def process(self, data: RuntimeData) -> RuntimeData:
        path = str(self.config["open_file"])
        while not os.path.exists(path):
            time.sleep(0.02)
        return data.copy()
