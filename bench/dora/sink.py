"""dora-rs sink of bench:hops (bench/dora_hops.ts): takes each message as a
numpy view (zero copy), reads now - the stamp in its first 8 bytes and
touches one byte, acknowledges it, and writes ``{"bytes": [...], "ns":
[...]}`` to ``HOPS_RESULT`` once ``HOPS_TOTAL`` messages came.
"""

from __future__ import annotations

import json
import os
import struct
import time

import pyarrow as pa
from dora import Node

_STAMP = struct.Struct("<Q")


def main() -> None:
    total = int(os.environ["HOPS_TOTAL"])
    node = Node()
    sizes: list[int] = []
    ns: list[int] = []
    ack = pa.array([1], type=pa.uint8())
    for event in node:
        if event["type"] != "INPUT":
            if event["type"] == "STOP":
                break
            continue
        if event["id"] != "data":
            continue
        now = time.monotonic_ns()
        view = event["value"].to_numpy(zero_copy_only=True)
        _ = view[-1]  # touch one byte
        (stamp,) = _STAMP.unpack_from(view, 0)
        ns.append(now - stamp)
        sizes.append(int(view.nbytes))
        del view, event
        node.send_output("ack", ack)
        if len(ns) == total:
            break
    with open(os.environ["HOPS_RESULT"], "w", encoding="utf-8") as f:
        json.dump({"bytes": sizes, "ns": ns}, f)


if __name__ == "__main__":
    main()
