"""Stamps around the bridges of a real session (``bench/hosts_profile.ts``).

Imported by a ``sitecustomize.py`` that ``bench/hosts_session.ts`` writes
when it profiles: :func:`install` does nothing unless ``RMP_BENCH_STAMPS``
names a folder. Then, once ``remotemedia_multiprocess.hosts.bridge`` is
imported (the session's hosts link on host 0, the agent on host 1), its
classes are wrapped, their code unchanged:

- ``Egress``: its channel's subscriber and its Zenoh session's publisher are
  thin wrappers; per message it records ``[channel, t0, t1, t2, t3, t4]``:
  the header's stamp (``t0``, the producer's hand-over), ``receive_raw``
  returned (``t1``), ``put`` called (``t2``, after the copy out and the
  release), ``zenoh.ZBytes(payload)`` built (``t3``: the wrapper builds it,
  timed, and hands it to the real ``put``, which is what ``put(bytes)`` does
  inside), ``put`` returned (``t4``);
- ``Ingress``: ``_on_sample`` and ``Publisher.try_send_wire`` are wrapped; per
  message ``[channel, t0, t5, t6, t7, t8]``: callback started, forward
  started (after ``to_bytes``), forward returned, callback returned (after
  the credit ``put``).

All CLOCK_MONOTONIC (network namespaces share it). A daemon thread (started
only in a process that imports the bridges) appends the records to ``$RMP_BENCH_STAMPS/<kind>-<pid>.jsonl`` every 200 ms, so the
hot path only appends to a list.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import json
import os
import struct
import sys
import threading
import time
from typing import Any

_MODULE = "remotemedia_multiprocess.hosts.bridge"
_FLUSH_S = 0.2
_records: dict[str, list[list[Any]]] = {"egress": [], "ingress": []}
_lock = threading.Lock()
_local = threading.local()


def now() -> int:
    return time.monotonic_ns()


def _flusher(folder: str) -> None:
    while True:
        time.sleep(_FLUSH_S)
        _flush(folder)


def _flush(folder: str) -> None:
    with _lock:
        taken = {k: v for k, v in _records.items() if v}
        for k in taken:
            _records[k] = []
    for kind, rows in taken.items():
        with open(f"{folder}/{kind}-{os.getpid()}.jsonl", "a") as f:
            f.write("".join(json.dumps(r) + "\n" for r in rows))


def _record(kind: str, row: list[Any]) -> None:
    with _lock:
        _records[kind].append(row)


def _patch(bridge: Any) -> None:
    import zenoh
    from remotemedia_multiprocess.channel import _TIMESTAMP_OFFSET, Publisher

    stamp = struct.Struct("<Q")

    class Timed:
        """One egress's stamps of the message in flight."""

        def __init__(self, name: str) -> None:
            self.name = name
            self.t0 = 0
            self.t1 = 0

    class TimedSubscriber:
        def __init__(self, sub: Any, timed: Timed) -> None:
            self._sub = sub
            self._timed = timed

        def receive_raw(self, timeout: float | None = None) -> Any:
            raw = self._sub.receive_raw(timeout)
            if raw is not None:
                self._timed.t1 = now()
                data = raw.data
                if len(data) >= _TIMESTAMP_OFFSET + 8:
                    self._timed.t0 = stamp.unpack_from(data, _TIMESTAMP_OFFSET)[0]
            return raw

        def __getattr__(self, name: str) -> Any:
            return getattr(self._sub, name)

    class TimedChannel:
        def __init__(self, channel: Any, timed: Timed) -> None:
            self._channel = channel
            self._timed = timed

        def subscriber(self) -> TimedSubscriber:
            return TimedSubscriber(self._channel.subscriber(), self._timed)

        def __getattr__(self, name: str) -> Any:
            return getattr(self._channel, name)

    class TimedPublisher:
        def __init__(self, pub: Any, timed: Timed) -> None:
            self._pub = pub
            self._timed = timed

        def put(self, payload: Any, **kw: Any) -> None:
            t2 = now()
            z = zenoh.ZBytes(payload)
            t3 = now()
            self._pub.put(z, **kw)
            t = self._timed
            _record("egress", [t.name, t.t0, t.t1, t2, t3, now()])

        def __getattr__(self, name: str) -> Any:
            return getattr(self._pub, name)

    class TimedSession:
        def __init__(self, zs: Any, timed: Timed) -> None:
            self._zs = zs
            self._timed = timed
            self._data_key: str | None = None

        def declare_publisher(self, key: Any, *a: Any, **kw: Any) -> Any:
            pub = self._zs.declare_publisher(key, *a, **kw)
            # The egress declares its data publisher first (credits are a subscriber).
            if self._data_key is None:
                self._data_key = str(key)
                return TimedPublisher(pub, self._timed)
            return pub

        def __getattr__(self, name: str) -> Any:
            return getattr(self._zs, name)

    egress_init = bridge.Egress.__init__

    def timed_egress_init(
        self: Any, zsession: Any, session_id: str, channel: Any, **kw: Any
    ) -> None:
        timed = Timed(channel.name)
        egress_init(
            self,
            TimedSession(zsession, timed),
            session_id,
            TimedChannel(channel, timed),
            **kw,
        )

    on_sample = bridge.Ingress._on_sample
    try_send_wire = Publisher.try_send_wire

    def timed_on_sample(self: Any, sample: Any) -> None:
        t5 = now()
        _local.forward = None
        on_sample(self, sample)
        t8 = now()
        fwd = _local.forward
        if fwd is not None:
            _record("ingress", [self.channel_name, fwd[0], t5, fwd[1], fwd[2], t8])

    def timed_try_send_wire(self: Any, data: Any) -> bool:
        t6 = now()
        sent = try_send_wire(self, data)
        t7 = now()
        t0 = stamp.unpack_from(data, _TIMESTAMP_OFFSET)[0] if sent else 0
        _local.forward = (t0, t6, t7) if sent else None
        return sent

    bridge.Egress.__init__ = timed_egress_init
    bridge.Ingress._on_sample = timed_on_sample
    Publisher.try_send_wire = timed_try_send_wire
    folder = os.environ["RMP_BENCH_STAMPS"]
    threading.Thread(
        target=_flusher, args=(folder,), name="bench-stamps", daemon=True
    ).start()


class _Finder(importlib.abc.MetaPathFinder):
    """Wraps the bridges once their module is loaded."""

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name != _MODULE:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        loader = spec.loader
        exec_module = loader.exec_module

        def exec_and_patch(module: Any) -> None:
            exec_module(module)
            _patch(module)

        loader.exec_module = exec_and_patch  # type: ignore[method-assign]
        return spec


def install() -> None:
    """Wraps the bridges of this process when ``RMP_BENCH_STAMPS`` is set."""
    if os.environ.get("RMP_BENCH_STAMPS"):
        sys.meta_path.insert(0, _Finder())
