"""A node module that prints while it is imported (stdout must stay clean
for --list-types)."""

import os

from remotemedia_multiprocess.node import MultiprocessNode, register_node

print("noisy module imported")
os.write(1, b"raw fd 1 write during import\n")


@register_node("t_noisy")
class TNoisy(MultiprocessNode):
    pass
