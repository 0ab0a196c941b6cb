"""A node module that registers a type and then fails to import (the type
is found, the module is still broken)."""

from remotemedia_multiprocess.node import MultiprocessNode, register_node


@register_node("t_half")
class THalf(MultiprocessNode):
    pass


raise RuntimeError("half-way through the import on purpose")
