"""The egress and ingress bridges, for real: two iceoryx2 isolations (two
"hosts") in this process, two Zenoh peers over TCP on 127.0.0.1 (no Zenoh
shared memory), channel ``a.out`` on both sides."""

from __future__ import annotations

import gc
import shutil
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

zenoh = pytest.importorskip(
    "zenoh", reason="eclipse-zenoh is not installed (pip install 'remotemedia-multiprocess[hosts]')"
)

from remotemedia_multiprocess._iox import IoxEnv, new_isolated_env, remove_env_files
from remotemedia_multiprocess.channel import Channel, Publisher, Subscriber
from remotemedia_multiprocess.errors import BackpressureTimeoutError
from remotemedia_multiprocess.hosts._zenoh import (
    TlsFiles,
    close_bounded,
    credit_key,
    data_key,
    open_session,
    session_config,
)
from remotemedia_multiprocess.hosts.bridge import FRAGMENT_BYTES, Egress, Ingress
from remotemedia_multiprocess.runtime_data import RuntimeData

SESSION = "s0123"
CHANNEL = "a.out"
MAX_PAYLOAD = 8 * 1024 * 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(check: object, timeout: float = 5.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


@dataclass
class Hosts:
    """Host A (the writer, with the egress) and host B (the reader, with the
    ingress), each with its own isolation, channel and Zenoh session."""

    capacity: int
    env_a: IoxEnv
    env_b: IoxEnv
    za: zenoh.Session
    zb: zenoh.Session
    channels: list[Channel] = field(default_factory=list)
    bridges: list[Egress | Ingress] = field(default_factory=list)
    lost: list[tuple[str, str, int]] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)

    def channel(self, env: IoxEnv) -> Channel:
        # A node of its own, as another process of that host would have.
        ch = Channel.open_or_create(IoxEnv(env.prefix, env.root), CHANNEL, capacity=self.capacity)
        self.channels.append(ch)
        return ch

    def writer(self) -> Publisher:
        return self.channel(self.env_a).publisher()

    def reader(self) -> Subscriber:
        return self.channel(self.env_b).subscriber()

    def egress(self) -> Egress:
        eg = Egress(
            self.za,
            SESSION,
            self.channel(self.env_a),
            on_lost=lambda ch, n: self.lost.append(("egress", ch, n)),
            on_error=self.errors.append,
        )
        self.bridges.append(eg)
        return eg

    def ingress(self) -> Ingress:
        ing = Ingress(
            self.zb,
            SESSION,
            self.channel(self.env_b),
            max_payload=MAX_PAYLOAD,
            on_lost=lambda ch, n: self.lost.append(("ingress", ch, n)),
            on_error=self.errors.append,
        )
        self.bridges.append(ing)
        return ing

    def raw_publisher(self) -> zenoh.Publisher:
        """A third publisher on the data key (as an egress would put), once
        the ingress matches it: tests inject samples with it."""
        raw = self.za.declare_publisher(
            data_key(SESSION, CHANNEL),
            congestion_control=zenoh.CongestionControl.BLOCK,
            reliability=zenoh.Reliability.RELIABLE,
        )
        wait_for(lambda: raw.matching_status.matching, what="the ingress to match")
        return raw

    def bridge(self) -> tuple[Egress, Ingress]:
        """The ingress first (the egress takes nothing until it is there)."""
        ing = self.ingress()
        return self.egress(), ing


def _open_pair() -> tuple[zenoh.Session, zenoh.Session]:
    port = free_port()
    zb = open_session(listen=[f"tcp/127.0.0.1:{port}"])
    za = open_session(connect=[f"tcp/127.0.0.1:{port}"])
    wait_for(lambda: list(za.info.peers_zid()), what="the peers to connect")
    return za, zb


@pytest.fixture
def hosts(request: pytest.FixtureRequest) -> Iterator[Hosts]:
    capacity = getattr(request, "param", 4)
    env_a, env_b = new_isolated_env(), new_isolated_env()
    za, zb = _open_pair()
    h = Hosts(capacity, env_a, env_b, za, zb)
    try:
        yield h
    finally:
        for b in h.bridges:
            b.close()
        for ch in h.channels:
            ch.close()
        assert close_bounded(za) and close_bounded(zb)
        for env in (env_a, env_b):
            env.close()
        gc.collect()
        for env in (env_a, env_b):
            remove_env_files(env)
    assert not h.errors, h.errors


def mixed(i: int) -> RuntimeData:
    """Message ``i`` of a stream of mixed kinds and sizes (64 B .. 1 MiB)."""
    rng = np.random.default_rng(i)
    size = [64, 1000, 4096, 65536, 300_000, 1 << 20][i % 6 if i % 10 else 5]
    if i % 3 == 0:
        rd = RuntimeData.audio(rng.integers(-(2**15), 2**15, size // 2, dtype=np.int16), 16000)
    elif i % 3 == 1:
        rd = RuntimeData.tensor(rng.random(size // 4, dtype=np.float32))
    else:
        rd = RuntimeData.binary(rng.integers(0, 256, size, dtype=np.uint8).tobytes())
    rd.session_id = bytes([i % 256]) * 16
    return rd


def test_a_stream_of_mixed_sizes_arrives_in_order_and_intact(hosts: Hosts) -> None:
    reader = hosts.reader()
    egress, ingress = hosts.bridge()
    writer = hosts.writer()
    n = 200
    got: list[tuple[int, str, int, bytes, bytes]] = []
    failed: list[BaseException] = []

    def read() -> None:
        try:
            for _ in range(n):
                rd = reader.receive(timeout=10)
                assert rd is not None
                with rd:
                    got.append(
                        (rd.sequence, rd.kind, rd.timestamp_ns, rd.session_id, rd.as_bytes())
                    )
        except BaseException as e:  # noqa: BLE001 - the test reports it
            failed.append(e)

    t = threading.Thread(target=read)
    t.start()
    stamps = []
    for i in range(n):
        rd = mixed(i)
        rd.timestamp_ns = 1_000_000 + i  # kept as sent: the bridge forwards the header
        writer.publish(rd, timeout=10)
        stamps.append(rd.timestamp_ns)
    t.join(20)
    assert not t.is_alive() and not failed, failed
    assert [g[0] for g in got] == list(range(1, n + 1))
    for i, (_seq, kind, ts, sid, payload) in enumerate(got):
        want = mixed(i)
        assert (kind, ts, sid) == (want.kind, stamps[i], want.session_id)
        assert payload == want.as_bytes(), f"message {i} differs"
    assert reader.lost == 0 and reader.delivery == n  # the ingress's own counter, no gap
    assert egress.sent == n and ingress.delivered == n and ingress.lost == egress.lost == 0
    wait_for(lambda: egress.credited == n, what="the last credit")
    assert hosts.lost == []


@pytest.mark.parametrize("hosts", [1, 4, 8], indirect=True, ids=["C1", "C4", "C8"])
def test_a_stalled_remote_reader_stops_the_writer_after_3c_and_loses_nothing(
    hosts: Hosts,
) -> None:
    c = hosts.capacity
    reader = hosts.reader()
    egress, ingress = hosts.bridge()
    writer = hosts.writer()
    window: list[int] = []
    sampling = True

    def sample_window() -> None:
        while sampling:
            window.append(egress.sent - egress.credited)
            time.sleep(0.001)

    sampler = threading.Thread(target=sample_window)
    sampler.start()
    published = 0
    started = time.monotonic()
    with pytest.raises(BackpressureTimeoutError):
        while published < 10 * c:
            writer.publish(RuntimeData.text(f"m{published}"), timeout=1.0)
            published += 1
    elapsed = time.monotonic() - started
    sampling = False
    sampler.join(5)
    # C in B's channel, C in the ingress queue (the egress window), C in A's channel.
    assert published == 3 * c, published
    assert 1.0 <= elapsed < 5.0
    assert max(window) <= c and egress.sent - egress.credited == c
    assert ingress.delivered == c and ingress.queued == c
    texts = []
    for _ in range(published):
        with reader.receive(timeout=5) as rd:
            assert rd is not None
            texts.append(rd.text)
    assert texts == [f"m{i}" for i in range(published)]
    assert reader.receive(timeout=0.05) is None and reader.lost == 0
    wait_for(lambda: egress.credited == egress.sent == published, what="every credit")
    writer.publish(RuntimeData.text("after"), timeout=5)  # the window is open again
    with reader.receive(timeout=5) as rd:
        assert rd is not None and rd.text == "after"


def test_losses_are_counted_on_the_wire_and_upstream(hosts: Hosts) -> None:
    reader = hosts.reader()
    ingress = hosts.ingress()
    # A third publisher on the data key, skipping bridge sequence 3.
    raw = hosts.raw_publisher()
    for seq in (1, 2, 4):
        raw.put(RuntimeData.text(f"w{seq}").encode(), attachment=seq.to_bytes(8, "little"))
    for want in ("w1", "w2", "w4"):
        with reader.receive(timeout=5) as rd:
            assert rd is not None and rd.text == want
    assert reader.lost == 0  # the ingress stamps its own counter: the gap is its report
    assert ingress.lost == 1 and hosts.lost == [("ingress", CHANNEL, 1)]
    raw.undeclare()

    # Upstream: a's publisher's delivery counter jumps by 3 before the egress.
    hosts.lost.clear()
    egress = hosts.egress()
    writer = hosts.writer()
    writer.publish(RuntimeData.text("u1"))
    writer.delivery += 3  # as if three messages never reached the egress
    writer.publish(RuntimeData.text("u2"))
    for want in ("u1", "u2"):
        with reader.receive(timeout=5) as rd:
            assert rd is not None and rd.text == want
    # A new egress starts its sequence at 1: a restart, not a loss.
    assert egress.lost == 3 and hosts.lost == [("egress", CHANNEL, 3)]


def test_large_messages_cross_in_fragments_in_place_or_queued(hosts: Hosts) -> None:
    """Messages over FRAGMENT_THRESHOLD cross as pieces: with the reader keeping
    up they are copied straight into a loaned chunk; with the reader behind
    they are assembled and queue behind the others. Both arrive whole, in
    order, between small ones."""
    reader = hosts.reader()
    egress, ingress = hosts.bridge()
    writer = hosts.writer()
    big = 3 * FRAGMENT_BYTES + 7

    def message(i: int) -> RuntimeData:
        rng = np.random.default_rng(1000 + i)
        size = big if i % 2 else 64
        return RuntimeData.binary(rng.integers(0, 256, size, dtype=np.uint8).tobytes())

    n = 24
    got: list[bytes] = []

    def read() -> None:
        for i in range(n):
            if i == 0:
                time.sleep(1.0)  # behind: the first messages queue in the ingress
            rd = reader.receive(timeout=20)
            assert rd is not None
            with rd:
                got.append(rd.as_bytes())

    t = threading.Thread(target=read)
    t.start()
    for i in range(n):
        writer.publish(message(i), timeout=20)
    t.join(60)
    assert not t.is_alive()
    assert len(got) == n
    for i, payload in enumerate(got):
        assert payload == message(i).as_bytes(), f"message {i} differs"
    assert reader.lost == 0 and ingress.lost == 0 and ingress.delivered == n
    wait_for(lambda: egress.credited == n, what="the last credit")


def test_a_message_missing_a_fragment_is_counted_lost(hosts: Hosts) -> None:
    reader = hosts.reader()
    ingress = hosts.ingress()
    raw = hosts.raw_publisher()
    whole = RuntimeData.binary(bytes(range(256)) * (FRAGMENT_BYTES // 128)).encode()
    frag = struct.Struct("<QQQ")
    # Message 1: only its first piece arrives. Message 2: whole.
    raw.put(whole[:FRAGMENT_BYTES], attachment=frag.pack(1, 0, len(whole)))
    for offset in range(0, len(whole), FRAGMENT_BYTES):
        raw.put(
            whole[offset : offset + FRAGMENT_BYTES],
            attachment=frag.pack(2, offset, len(whole)),
        )
    with reader.receive(timeout=5) as rd:
        assert rd is not None and rd.as_bytes() == bytes(range(256)) * (FRAGMENT_BYTES // 128)
    wait_for(lambda: ingress.lost == 1, what="the loss to be counted")
    assert hosts.lost == [("ingress", CHANNEL, 1)] and ingress.delivered == 1
    assert not reader.has_samples()
    raw.undeclare()


def test_credits_wait_for_their_subscriber_and_refused_messages_are_credited(
    hosts: Hosts,
) -> None:
    """An ingress whose egress is not there yet keeps its credits until the
    egress's credit subscriber appears; a message its channel refuses (too
    short to be one) is reported, counted and credited, so the window does
    not shrink."""
    reader = hosts.reader()
    ingress = hosts.ingress()
    raw = hosts.raw_publisher()
    raw.put(b"short", attachment=(1).to_bytes(8, "little"))
    raw.put(RuntimeData.text("ok").encode(), attachment=(2).to_bytes(8, "little"))
    with reader.receive(timeout=5) as rd:
        assert rd is not None and rd.text == "ok"
    assert ingress.rejected == 1 and ingress.delivered == 1
    assert len(hosts.errors) == 1 and isinstance(hosts.errors[0], ValueError)
    hosts.errors.clear()
    credits: list[int] = []
    sub = hosts.za.declare_subscriber(
        credit_key(SESSION, CHANNEL),
        lambda s: credits.append(int.from_bytes(s.payload.to_bytes(), "little")),
    )
    wait_for(lambda: credits == [2], what="the held-back credit")
    sub.undeclare()
    raw.undeclare()


def bridge_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("rmp-")]


def test_close_returns_quickly_from_every_state_and_leaves_no_thread(hosts: Hosts) -> None:
    before = set(threading.enumerate())
    reader = hosts.reader()  # never reads (kept: a collected subscriber is gone)
    egress, ingress = hosts.bridge()
    writer = hosts.writer()
    c = hosts.capacity
    for i in range(3 * c):
        writer.publish(RuntimeData.text(f"m{i}"), timeout=5)
    wait_for(lambda: ingress.queued == c, what="the ingress queue to fill")
    assert reader.has_samples() and len(bridge_threads()) == 2
    for bridge in (egress, ingress):  # the egress waits for credit, the ingress for a chunk
        started = time.monotonic()
        bridge.close(timeout=2.0)
        assert time.monotonic() - started < 2.0
    assert bridge_threads() == []
    assert set(threading.enumerate()) <= before
    # Idle bridges close as quickly (the egress waiting for a sample).
    egress, ingress = hosts.bridge()
    time.sleep(0.1)
    for bridge in (egress, ingress):
        started = time.monotonic()
        bridge.close()
        assert time.monotonic() - started < 2.0
    assert bridge_threads() == []


def test_session_config_sets_what_every_host_needs() -> None:
    conf = session_config(
        listen=["tls/127.0.0.1:7447"],
        connect=["tls/127.0.0.2:7447"],
        lease_secs=2.5,
    )
    assert conf.get_json("mode") == '"peer"'
    assert conf.get_json("scouting/multicast/enabled") == "false"
    assert conf.get_json("scouting/gossip/enabled") == "false"
    assert conf.get_json("transport/shared_memory/enabled") == "false"
    assert conf.get_json("transport/link/tx/lease") == "2500"
    assert conf.get_json("transport/link/tx/keep_alive") == "4"
    assert data_key("s1", "asr.out") == "rmp/s1/ch/asr.out"
    assert credit_key("s1", "in.audio") == "rmp/s1/ch/in.audio/credit"


def _certificates(tmp: Path) -> dict[str, str]:
    """A test CA and two certificates it signed (server, client) for 127.0.0.1."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=tmp)

    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "1",
            "-subj", "/CN=rmp-test-ca")  # fmt: skip
    (tmp / "ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for name in ("server", "client"):
        openssl(
            "req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", "/CN=localhost"
        )
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", f"{name}.pem", "-days", "1", "-extfile", "ext")  # fmt: skip
    return {p.name: str(p) for p in tmp.iterdir()}


def _connects(server: TlsFiles, client: TlsFiles, within: float) -> bool:
    port = free_port()
    zb = open_session(listen=[f"tls/127.0.0.1:{port}"], tls=server)
    za = open_session(connect=[f"tls/127.0.0.1:{port}"], tls=client)
    try:
        wait_for(lambda: list(za.info.peers_zid()), timeout=within)
        return True
    except AssertionError:
        return False
    finally:
        assert close_bounded(za) and close_bounded(zb)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl to make certificates")
def test_tls_and_mutual_tls(tmp_path: Path) -> None:
    f = _certificates(tmp_path)
    ca = f["ca.pem"]
    server = TlsFiles(cert=f["server.pem"], key=f["server.key"])
    assert _connects(server, TlsFiles(root_ca=ca), within=5)
    mutual = TlsFiles(root_ca=ca, cert=f["server.pem"], key=f["server.key"])
    client = TlsFiles(root_ca=ca, cert=f["client.pem"], key=f["client.key"])
    assert _connects(mutual, client, within=5)
    # A listener with a CA requires a client certificate signed by it.
    assert not _connects(mutual, TlsFiles(root_ca=ca), within=1)
