"""Baselines for bench/ipc_report.ts.

pipe: reads length-prefixed payloads from stdin (whole payload) and answers one byte.
floor PATH: connects to a Unix stream socket and echoes single bytes.
"""

import socket
import sys

if sys.argv[1] == "pipe":
    stdin = sys.stdin.buffer
    stdout = sys.stdout.buffer
    while True:
        header = stdin.read(8)
        if len(header) < 8:
            break
        n = int.from_bytes(header, "little")
        buf = bytearray(n)
        view = memoryview(buf)
        got = 0
        while got < n:
            r = stdin.readinto(view[got:])
            if not r:
                sys.exit(0)
            got += r
        stdout.write(b"k")
        stdout.flush()
else:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sys.argv[2])
    while True:
        b = s.recv(1)
        if not b:
            break
        s.sendall(b)
