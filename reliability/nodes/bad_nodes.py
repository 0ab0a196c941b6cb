"""Node types of the reliability suite's bad input and isolation scenarios:
nodes that misbehave on purpose, and probes that report what a node sees."""

from __future__ import annotations

import importlib
import json
import os
import sys
import time

from remotemedia_multiprocess.node import MultiprocessNode, register_node
from remotemedia_multiprocess.runtime_data import RuntimeData


@register_node("bad_echo")
class BadEcho(MultiprocessNode):
    """Echoes its input: the bystander and the healthy half of cases."""

    def process(self, data: RuntimeData) -> RuntimeData:
        return data


@register_node("bad_wrong_type")
class BadWrongType(MultiprocessNode):
    """Returns config["what"] instead of RuntimeData: a dict of an unknown port
    ("dict"), a dict of the right port with an int ("dict_port"), a str or an int."""

    def process(self, data: RuntimeData) -> object:
        what = self.config.get("what", "dict")
        if what == "str":
            return "not runtime data"
        if what == "int":
            return 42
        if what == "dict_port":
            return {"out": 42}
        return {"text": data.text}


@register_node("bad_init_spin")
class BadInitSpin(MultiprocessNode):
    """initialize() never returns and never awaits (a busy loader)."""

    async def initialize(self) -> None:
        while True:
            time.sleep(0.05)  # noqa: ASYNC251 - blocking on purpose: a busy loader


@register_node("bad_flood")
class BadFlood(MultiprocessNode):
    """On any input writes config["mib"] MiB to config["stream"], with newlines
    only when config["newlines"] is set, then echoes the input."""

    def process(self, data: RuntimeData) -> RuntimeData:
        stream = (
            sys.stdout
            if self.config.get("stream", "stdout") == "stdout"
            else sys.stderr
        )
        block = "x" * 65536
        if self.config.get("newlines"):
            block = ("y" * 99 + "\n") * 655
        for _ in range(int(float(self.config.get("mib", 1)) * 16)):
            stream.write(block)
        stream.write("\n")
        stream.flush()
        return data


@register_node("bad_process_raises")
class BadProcessRaises(MultiprocessNode):
    """Raises on text "raise", echoes anything else."""

    def process(self, data: RuntimeData) -> RuntimeData:
        if data.kind == "text" and data.text == "raise":
            raise ValueError("bad input in process")
        return data


@register_node("env_report")
class EnvReport(MultiprocessNode):
    """Answers any input with its environment, its sys.path, and whether each
    module of config["probe"] (comma-separated) imports, as JSON text."""

    def process(self, data: RuntimeData) -> RuntimeData:
        imports = {}
        for name in filter(None, str(self.config.get("probe", "")).split(",")):
            try:
                importlib.import_module(name)
                imports[name] = True
            except ImportError:
                imports[name] = False
        return RuntimeData.text(
            json.dumps(
                {
                    "environ": dict(os.environ),
                    "path": sys.path,
                    "cwd": os.getcwd(),
                    "imports": imports,
                }
            )
        )
