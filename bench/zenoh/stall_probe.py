"""Peers of ``bench/zenoh/probe.ts stall``: what plain Zenoh does when a
subscriber stalls under ``CongestionControl.BLOCK`` (reliable).

``stall_probe.py sub <listen> <stall-s>``: the first sample's callback sleeps
``stall-s``; once samples stop coming for 2 s after that, prints
``{"received": n}`` and exits.
``stall_probe.py pub <connect> <count> <bytes>``: puts ``count`` samples as fast
as it can, then prints ``{"sent", "seconds", "blocked": [[index, seconds]...]}``
(puts that took over 50 ms).
Both leave with ``os._exit``: a Zenoh session's close can wait on a link that
is gone.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time

import zenoh
from _common import open_session, publisher

KEY = "rmp/bench/stall"


def sub(endpoint: str, stall_s: float) -> None:
    session = open_session([endpoint], [])
    state = {"n": 0, "last": time.monotonic()}
    resumed = threading.Event()

    def on_sample(sample) -> None:  # sample: zenoh.Sample
        state["n"] += 1
        if state["n"] == 1:
            time.sleep(stall_s)
            resumed.set()
        state["last"] = time.monotonic()

    subscriber = session.declare_subscriber(KEY, on_sample)
    print("ready", flush=True)
    resumed.wait(stall_s + 60)
    while time.monotonic() - state["last"] < 2:
        time.sleep(0.2)
    print(json.dumps({"received": state["n"]}), flush=True)
    subscriber.undeclare()
    os._exit(0)


def pub(endpoint: str, count: int, size: int) -> None:
    session = open_session([], [endpoint])
    p = publisher(session, KEY)
    time.sleep(1.5)  # the subscriber's declaration reaches us
    data = zenoh.ZBytes(bytes(size))
    blocked = []
    start = time.monotonic()
    for i in range(count):
        t = time.monotonic()
        p.put(data)
        if time.monotonic() - t > 0.05:
            blocked.append([i, round(time.monotonic() - t, 3)])
    seconds = round(time.monotonic() - start, 3)
    print(
        json.dumps({"sent": count, "seconds": seconds, "blocked": blocked}), flush=True
    )
    os._exit(0)


if __name__ == "__main__":
    if sys.argv[1] == "sub":
        sub(sys.argv[2], float(sys.argv[3]))
    else:
        pub(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
