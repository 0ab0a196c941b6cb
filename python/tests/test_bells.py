"""Direct doorbells: a publisher rings the Unix sockets Deno subscribers link
under ``<root>bells/<channel>/``. Real sockets and real channels; the Deno
side of the same behaviour is tested in tests/channel_test.ts."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from remotemedia_multiprocess import _bells
from remotemedia_multiprocess._bells import BellRinger, bell_directory_name
from remotemedia_multiprocess._iox import IoxEnv
from remotemedia_multiprocess.channel import Channel
from remotemedia_multiprocess.runtime_data import RuntimeData

# The same vectors as tests/channel_test.ts ("bell directory names").
NAME_VECTORS = [
    ("asr.out", "asr%2Eout"),
    ("a/b", "a%2Fb"),
    ("tts_in-0", "tts_in-0"),
    ("ü", "%C3%BC"),
    ("..", "%2E%2E"),
]


@pytest.mark.parametrize(("name", "encoded"), NAME_VECTORS)
def test_bell_directory_names_match_deno(name: str, encoded: str) -> None:
    assert bell_directory_name(name) == encoded


class Bell:
    """A listening socket linked as a bell, like a Deno context's."""

    def __init__(self, root: str, channel: str, tag: str) -> None:
        self.socket_path = os.path.join(root, f"{tag}.sock")
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(self.socket_path)
        self.server.listen()
        directory = Path(root, "bells", bell_directory_name(channel))
        directory.mkdir(parents=True, exist_ok=True)
        self.link = directory / tag
        self.link.symlink_to(self.socket_path)
        self.conn: socket.socket | None = None

    def rings(self) -> int:
        """Bytes received so far (accepts the publisher's connection first)."""
        if self.conn is None:
            self.server.settimeout(2.0)
            self.conn, _ = self.server.accept()
        self.conn.settimeout(0.5)
        try:
            return len(self.conn.recv(4096))
        except TimeoutError:
            return 0

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.server.close()
        self.link.unlink(missing_ok=True)
        os.unlink(self.socket_path)


def test_publisher_rings_linked_bells_and_still_delivers(iox_env: IoxEnv) -> None:
    bell = Bell(iox_env.root, "pcm.out", "ctx1")
    try:
        ch = Channel.open_or_create(iox_env, "pcm.out")
        sub, pub = ch.subscriber(), ch.publisher()
        pub.publish(RuntimeData.text("a"))
        assert bell.rings() == 1
        assert pub._bells is not None and pub._bells.bells == 1
        with sub.receive(timeout=2.0) as rd:
            assert rd.text == "a"
        ch.close()
    finally:
        bell.close()


def test_a_dead_bell_is_dropped_without_error(iox_env: IoxEnv) -> None:
    bell = Bell(iox_env.root, "dead", "ctx1")
    ch = Channel.open_or_create(iox_env, "dead")
    sub, pub = ch.subscriber(), ch.publisher()
    pub.publish(RuntimeData.text("0"))
    assert bell.rings() == 1
    bell.close()  # the Deno context went away
    for i in range(1, 4):
        pub.publish(RuntimeData.text(str(i)))
    assert pub._bells is not None and pub._bells.bells == 0
    assert [sub.receive(timeout=2.0).text for _ in range(4)] == ["0", "1", "2", "3"]
    ch.close()


def test_a_stale_link_is_skipped(iox_env: IoxEnv) -> None:
    directory = Path(iox_env.root, "bells", "stale")
    directory.mkdir(parents=True)
    (directory / "gone").symlink_to(os.path.join(iox_env.root, "nothing.sock"))
    ringer = BellRinger(iox_env.root, "stale")
    ringer.ring(1)
    assert ringer.bells == 0
    ringer.close()


def test_a_new_bell_is_found_when_the_subscriber_count_changes(
    iox_env: IoxEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_bells, "RESCAN_INTERVAL_S", 60.0)
    ringer = BellRinger(iox_env.root, "late")
    ringer.ring(0)
    assert ringer.bells == 0
    bell = Bell(iox_env.root, "late", "ctx2")
    try:
        ringer.ring(0)  # same count: not looked for yet
        assert ringer.bells == 0
        ringer.ring(1)
        assert ringer.bells == 1
        assert bell.rings() == 1
    finally:
        ringer.close()
        bell.close()
