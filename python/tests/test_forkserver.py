"""The fork server when its executor is gone (killed with -9)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid


def test_a_fork_server_whose_executor_died_exits_quietly() -> None:
    # Its exit reports then go to a closed pipe: that is the executor's death,
    # not an error to print a traceback for (found by the reliability suite's
    # deno_kill9: the killed program's terminal showed a BrokenPipeError).
    with tempfile.TemporaryDirectory(prefix="rmp-forkserver-test-") as folder:
        log_path = os.path.join(folder, "logs.sock")
        logs = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        logs.bind(log_path)
        logs.listen(4)
        server = subprocess.Popen(
            [sys.executable, "-m", "remotemedia_multiprocess._forkserver"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            assert server.stdin is not None and server.stdout is not None
            assert json.loads(server.stdout.readline())["ready"] is True
            # A runner without --spec: argparse makes it exit 2 at once.
            request = {
                "id": 1,
                "args": [],
                "env": dict(os.environ),
                "cwd": folder,
                "log_socket": log_path,
                "token": str(uuid.uuid4()),
            }
            server.stdin.write((json.dumps(request) + "\n").encode())
            server.stdin.flush()
            answer = json.loads(server.stdout.readline())
            assert answer["id"] == 1 and answer["pid"] > 0
            # The executor is gone: nobody reads the child's exit report.
            server.stdout.close()
            deadline = time.monotonic() + 10
            while server.poll() is None and time.monotonic() < deadline:
                time.sleep(0.02)
            assert server.poll() is not None, "the fork server still runs"
            assert server.stderr is not None
            stderr = server.stderr.read().decode()
            assert "Traceback" not in stderr, stderr
        finally:
            if server.poll() is None:
                server.kill()
            server.wait(timeout=10)
            for stream in (server.stdin, server.stderr):
                if stream is not None:
                    stream.close()
            logs.close()
