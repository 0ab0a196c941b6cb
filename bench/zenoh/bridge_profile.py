"""Where the time of a bridged hop goes (``bench/hosts_profile.ts``).

``bridge_profile.py driver <ns0> <ns1> <address1> <port> <capacity> <warmup>
<gap-ms> <size>:<iterations>...`` (run it as root, in any namespace):

- makes two iceoryx2 isolations ("host 0" and "host 1") with channel
  ``a.out`` in each, as a session and an agent would;
- starts ``bridge_profile.py ingress`` in network namespace ``ns1`` (a Zenoh
  peer listening on ``tcp/<address1>:<port>``, the real
  ``hosts.bridge.Ingress``) and ``bridge_profile.py egress`` in ``ns0`` (a
  peer connecting to it, the real ``hosts.bridge.Egress``): one process each,
  as the session's hosts link and the agent run them;
- is itself the producer (a publisher on host 0's channel: allocate, then
  publish, which stamps CLOCK_MONOTONIC as ``hop_source`` does) and the
  consumer (a subscriber on host 1's channel, blocked in ``receive`` as a
  runner is, touching the last byte), paced one message at a time.

Nothing of the bridges is changed: the egress gets a channel whose
subscriber, and a Zenoh session whose publisher, are thin wrappers that take
stamps around ``receive_raw`` and ``put`` (the wrapper builds the
``zenoh.ZBytes`` itself, timed, and hands it to the real ``put``: what
``put(bytes)`` does inside); in the ingress process ``Ingress._on_sample``
and ``Publisher.try_send_wire`` are wrapped the same way. Stamps, all
CLOCK_MONOTONIC (namespaces share it), per message:

- ``t0``  the producer's publisher hands the message over (header stamp);
- ``t1``  the egress's ``receive_raw`` returns it;
- ``t2``  the egress calls ``put`` (after its delivery check, the copy out of
  the sample, the release);
- ``t3``  ``zenoh.ZBytes(payload)`` built (the copy ``put(bytes)`` makes);
- ``t4``  ``put`` returns;
- ``t5``  the ingress's Zenoh callback starts;
- ``t6``  ``try_send_wire`` starts (after ``payload.to_bytes()``);
- ``t7``  ``try_send_wire`` returns (copy into the loan, sent, notified);
- ``t8``  the ingress's callback returns (after its credit ``put``);
- ``t9``  the consumer's ``receive`` returns it.

``RMP_PROFILE_VARIANT=defer_credit`` (an experiment, not the bridge's
protocol): the ingress's credit ``put`` leaves its Zenoh callback for a
thread that puts it 0.5 ms later (coalesced), off the consumer's wake-up.

Prints one JSON line per size: ``{"bytes", "stamps": [[t0..t9], ...]}``
(warm-up dropped). Every wait is bounded: a lost message exits 1.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from typing import Any

import numpy as np

CHANNEL = "a.out"
SESSION = "profile"
READY_S = 30.0
MESSAGE_S = 30.0


def now() -> int:
    return time.monotonic_ns()


# -- egress process -------------------------------------------------------------


def egress(prefix: str, root: str, connect: str, capacity: int) -> None:
    import zenoh
    from remotemedia_multiprocess._iox import IoxEnv
    from remotemedia_multiprocess.channel import Channel
    from remotemedia_multiprocess.hosts._zenoh import open_session
    from remotemedia_multiprocess.hosts.bridge import Egress

    taken: list[int] = []
    puts: list[tuple[int, int, int]] = []

    class TimedSubscriber:
        def __init__(self, sub: Any) -> None:
            self._sub = sub

        def receive_raw(self, timeout: float | None = None) -> Any:
            raw = self._sub.receive_raw(timeout)
            if raw is not None:
                taken.append(now())
            return raw

        def close(self) -> None:
            self._sub.close()

    class TimedChannel:
        def __init__(self, ch: Channel) -> None:
            self._ch = ch
            self.name = ch.name
            self.capacity = ch.capacity

        def subscriber(self) -> TimedSubscriber:
            return TimedSubscriber(self._ch.subscriber())

    class TimedPublisher:
        def __init__(self, pub: Any) -> None:
            self._pub = pub

        def put(self, payload: Any, **kw: Any) -> None:
            t2 = now()
            z = zenoh.ZBytes(payload)
            t3 = now()
            self._pub.put(z, **kw)
            puts.append((t2, t3, now()))

        def __getattr__(self, name: str) -> Any:
            return getattr(self._pub, name)

    class TimedSession:
        def __init__(self, zs: Any) -> None:
            self._zs = zs

        def declare_publisher(self, *a: Any, **kw: Any) -> TimedPublisher:
            return TimedPublisher(self._zs.declare_publisher(*a, **kw))

        def __getattr__(self, name: str) -> Any:
            return getattr(self._zs, name)

    zs = open_session(connect=[connect])
    channel = Channel.open_or_create(IoxEnv(prefix, root), CHANNEL, capacity)
    eg = Egress(TimedSession(zs), SESSION, TimedChannel(channel))  # type: ignore[arg-type]
    end = time.monotonic() + READY_S
    while not eg._matched:  # the ingress's subscriber reached us
        if time.monotonic() > end:
            sys.exit("egress: no ingress within 30 s")
        time.sleep(0.01)
    print("ready", flush=True)
    sys.stdin.readline()  # the driver says when it is done
    eg.close()
    print(json.dumps({"taken": taken, "puts": puts, "lost": eg.lost}), flush=True)
    os._exit(0)  # no Zenoh teardown to wait for


# -- ingress process --------------------------------------------------------------


def ingress(
    prefix: str, root: str, listen: str, capacity: int, max_payload: int
) -> None:
    from remotemedia_multiprocess._iox import IoxEnv
    from remotemedia_multiprocess.channel import Channel, Publisher
    from remotemedia_multiprocess.hosts._zenoh import open_session
    from remotemedia_multiprocess.hosts.bridge import Ingress

    callbacks: list[tuple[int, int]] = []
    forwards: list[tuple[int, int]] = []
    queued: list[int] = []
    on_sample = Ingress._on_sample
    try_send_wire = Publisher.try_send_wire

    def timed_on_sample(self: Ingress, sample: Any) -> None:
        t5 = now()
        on_sample(self, sample)
        callbacks.append((t5, now()))

    def timed_try_send_wire(self: Publisher, data: Any) -> bool:
        t6 = now()
        sent = try_send_wire(self, data)
        forwards.append((t6, now()))
        if not sent:
            queued.append(len(forwards) - 1)
        return sent

    Ingress._on_sample = timed_on_sample  # type: ignore[method-assign]
    Publisher.try_send_wire = timed_try_send_wire  # type: ignore[method-assign]
    if os.environ.get("RMP_PROFILE_VARIANT") == "defer_credit":
        # The experiment: the callback's credit put handed to a thread that
        # puts it 0.5 ms later (after the consumer has woken), coalesced.
        put_credit = Ingress._put_credit
        pending = threading.Event()
        owner: list[Ingress] = []

        def deferred(self: Ingress) -> None:
            if threading.current_thread().name == "deferred-credit":
                put_credit(self)
                return
            owner[:] = [self]
            pending.set()

        def worker() -> None:
            while True:
                pending.wait()
                time.sleep(0.0005)
                pending.clear()
                if owner:
                    deferred(owner[0])

        Ingress._put_credit = deferred  # type: ignore[method-assign]
        threading.Thread(target=worker, name="deferred-credit", daemon=True).start()
    zs = open_session(listen=[listen])
    channel = Channel.open_or_create(IoxEnv(prefix, root), CHANNEL, capacity)
    ing = Ingress(zs, SESSION, channel, max_payload=max_payload)
    print("ready", flush=True)
    sys.stdin.readline()
    ing.close()
    print(
        json.dumps(
            {
                "callbacks": callbacks,
                "forwards": forwards,
                "queued": queued,
                "lost": ing.lost,
            }
        ),
        flush=True,
    )
    os._exit(0)


# -- driver -------------------------------------------------------------------------


def _wait_ready(proc: subprocess.Popen[str], what: str) -> None:
    line: list[str] = []
    t = threading.Thread(
        target=lambda: line.append(proc.stdout.readline()), daemon=True
    )  # type: ignore[union-attr]
    t.start()
    t.join(READY_S)
    if not line or not line[0].startswith("ready"):
        proc.kill()
        sys.exit(f"driver: {what} did not start ({line})")


def _finish(proc: subprocess.Popen[str], what: str) -> dict[str, Any]:
    try:
        out, _ = proc.communicate("done\n", timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        sys.exit(f"driver: {what} did not report")
    return json.loads(out.strip().splitlines()[-1])


def driver(argv: list[str]) -> None:
    from remotemedia_multiprocess._iox import IoxEnv, new_isolated_env, remove_env_files
    from remotemedia_multiprocess.channel import Channel
    from remotemedia_multiprocess.runtime_data import RuntimeData

    ns0, ns1, address1, port = argv[0], argv[1], argv[2], int(argv[3])
    capacity, warmup, gap_s = int(argv[4]), int(argv[5]), float(argv[6]) / 1000
    plan = [tuple(int(x) for x in a.split(":")) for a in argv[7:]]
    max_payload = max(s for s, _ in plan) + 4096
    env0, env1 = new_isolated_env(), new_isolated_env()
    ch0 = Channel.open_or_create(IoxEnv(env0.prefix, env0.root), CHANNEL, capacity)
    ch1 = Channel.open_or_create(IoxEnv(env1.prefix, env1.root), CHANNEL, capacity)
    consumer = ch1.subscriber()
    me = os.path.abspath(__file__)
    endpoint = f"tcp/{address1}:{port}"
    procs: list[subprocess.Popen[str]] = []

    def spawn(ns: str, args: list[str]) -> subprocess.Popen[str]:
        p = subprocess.Popen(
            ["ip", "netns", "exec", ns, sys.executable, me, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        procs.append(p)
        return p

    try:
        ing = spawn(
            ns1,
            [
                "ingress",
                env1.prefix,
                env1.root,
                endpoint,
                str(capacity),
                str(max_payload),
            ],
        )
        _wait_ready(ing, "the ingress")
        eg = spawn(ns0, ["egress", env0.prefix, env0.root, endpoint, str(capacity)])
        _wait_ready(eg, "the egress")
        producer = ch0.publisher(max_payload=max_payload)
        results: list[tuple[int, list[int], list[int]]] = []  # size, t0s, t9s
        for size, iterations in plan:
            like = RuntimeData.binary(np.empty(size, np.uint8))
            t0s: list[int] = []
            t9s: list[int] = []
            for _ in range(warmup + iterations):
                out = producer.allocate(like)
                producer.publish(out)  # stamps t0 in the header
                rd = consumer.receive(timeout=MESSAGE_S)
                t9 = now()
                if rd is None:
                    sys.exit(f"driver: a message of {size} bytes was lost")
                with rd:
                    _ = rd.payload[-1]
                    if rd.nbytes != size:
                        sys.exit(f"driver: got {rd.nbytes} bytes, sent {size}")
                    t0s.append(rd.timestamp_ns)
                t9s.append(t9)
                if gap_s:
                    time.sleep(gap_s)
            results.append((size, t0s, t9s))
        e = _finish(eg, "the egress")
        i = _finish(ing, "the ingress")
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        for ch in (ch0, ch1):
            ch.close()
        for env in (env0, env1):
            env.close()
            remove_env_files(env)
    n = sum(len(t0s) for _, t0s, _ in results)
    counts = (len(e["taken"]), len(e["puts"]), len(i["callbacks"]), len(i["forwards"]))
    if counts != (n, n, n, n) or e["lost"] or i["lost"] or i["queued"]:
        sys.exit(
            f"driver: {n} messages but stamps {counts}, {e['lost']=} {i['lost']=} {i['queued']=}"
        )
    k = 0
    for size, t0s, t9s in results:
        stamps = []
        for j in range(len(t0s)):
            t2, t3, t4 = e["puts"][k]
            t5, t8 = i["callbacks"][k]
            t6, t7 = i["forwards"][k]
            if j >= warmup:
                stamps.append(
                    [t0s[j], e["taken"][k], t2, t3, t4, t5, t6, t7, t8, t9s[j]]
                )
            k += 1
        print(json.dumps({"bytes": size, "stamps": stamps}), flush=True)


if __name__ == "__main__":
    role = sys.argv[1]
    if role == "egress":
        egress(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
    elif role == "ingress":
        ingress(
            sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6])
        )
    elif role == "driver":
        driver(sys.argv[2:])
    else:
        sys.exit(f"unknown role {role}")
