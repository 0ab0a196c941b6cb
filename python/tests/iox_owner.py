"""A process that owns one live isolation, for test_iox.py (the Python twin
of tests/support/isolation_owner.ts).

``python iox_owner.py`` makes an environment with ``new_isolated_env``, opens a
channel and sends a sample (so shared memory exists), prints one JSON line
``{prefix, root, pid, host_pid}`` and answers commands on stdin, one JSON
line each:

- ``sweep <prefix>...``: sweeps those prefixes, prints ``{"removed": n}``;
- ``spawn``: starts ``sleep 60`` with ``close_fds=False`` (only inheritable
  descriptors pass), prints ``{"pid": host pid}``.

PIDs other than ``pid`` are as the parent PID namespace sees them. Uses only
the API that existed before lock files, so it also runs against 69a4b0d.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from remotemedia_multiprocess._iox import new_isolated_env, sweep_stale
from remotemedia_multiprocess.channel import Channel
from remotemedia_multiprocess.runtime_data import RuntimeData

# In a PID namespace without its own /proc, /proc still shows the parent one.
HOST_PID = int(os.readlink("/proc/self"))


def host_pid_of(pid: int) -> int:
    """The parent namespace's PID of our child ``pid``."""
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            status = Path(f"/proc/{name}/status").read_text()
        except OSError:
            continue
        ppid = re.search(r"^PPid:\s+(\d+)", status, re.MULTILINE)
        nspid = re.search(r"^NSpid:\s+(.*)$", status, re.MULTILINE)
        if (
            ppid
            and nspid
            and int(ppid.group(1)) == HOST_PID
            and int(nspid.group(1).split()[-1]) == pid
        ):
            return int(name)
    raise LookupError(f"No child of {HOST_PID} has PID {pid} in its namespace")


def sweep(prefixes: list[str]) -> int:
    try:
        return sweep_stale(prefixes=prefixes)  # type: ignore[call-arg]
    except TypeError:  # 69a4b0d: no scope (run that only in private mounts)
        return sweep_stale()


def say(value: Any) -> None:
    sys.stdout.write(json.dumps(value) + "\n")
    sys.stdout.flush()


def main() -> None:
    env = new_isolated_env()
    channel = Channel.open_or_create(env, "live")
    sub = channel.subscriber()
    pub = channel.publisher()
    pub.publish(RuntimeData.binary(b"x" * 1024))
    say({"prefix": env.prefix, "root": env.root, "pid": os.getpid(), "host_pid": HOST_PID})
    keep = (channel, sub, pub)
    children: list[subprocess.Popen[bytes]] = []
    for line in sys.stdin:
        command, *args = line.split()
        if command == "sweep":
            say({"removed": sweep(args)})
        elif command == "spawn":
            child = subprocess.Popen(
                ["sleep", "60"],
                close_fds=False,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            children.append(child)
            say({"pid": host_pid_of(child.pid)})
    for child in children:
        child.kill()
    del keep


if __name__ == "__main__":
    main()
