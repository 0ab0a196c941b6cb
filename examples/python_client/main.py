"""A Python program running a pipeline through the Deno executor
(`deno task example:progress`): it prints each node's start-up progress,
sends a text over shared memory and prints the reply.

    in ──> asr (slow_loader, 2 s) ──> echo ──> out
"""

from __future__ import annotations

import time
from pathlib import Path

from remotemedia_multiprocess import Pipeline, RuntimeData
from remotemedia_multiprocess.client import ProgressEvent, Session

ROOT = Path(__file__).resolve().parents[2]


def show(p: ProgressEvent) -> None:
    fraction = "" if p["fraction"] is None else f"{round(p['fraction'] * 100)}%"
    print(
        f"  [{p['elapsedMs']:>5} ms] {p['nodeId']:<6} {p['phase']:<8} {fraction:>4} {p['message']}"
    )


def main() -> None:
    pipeline = (
        Pipeline("init-with-progress")
        .add_node("slow_loader", "asr", {"seconds": 2, "steps": 5})
        .add_node("echo", "echo")
        .add_input("in", "asr", "in")
        .connect("asr", "out", "echo", "in")
        .add_output("out", "echo", "out")
    )
    started = time.monotonic()
    with Session(
        pipeline,
        modules=["demo_nodes"],
        module_paths=[str(ROOT / "examples" / "nodes")],
        on_progress=show,
    ) as session:
        session.initialize()
        print(f"ready after {time.monotonic() - started:.2f} s")
        t0 = time.perf_counter()
        session.send(
            "in", RuntimeData.from_text("hello from Python over shared memory")
        )
        reply = session.receive("out", timeout=10)
        if reply is None:
            raise SystemExit("no reply within 10 s")
        with reply:
            print(
                f"reply: {reply.as_text()!r} ({(time.perf_counter() - t0) * 1000:.1f} ms)"
            )
    print("closed")


if __name__ == "__main__":
    main()
