"""Zenoh sessions and key names shared by the bridges and the host agent.

One place for the settings every host must agree on: peers that meet only
over the endpoints they are given (no scouting), every byte over the network
(no Zenoh shared memory), and the key layout ``rmp/<session>/ch/<channel>``.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import zenoh

__all__ = ["TlsFiles", "close_bounded", "credit_key", "data_key", "open_session"]

KEY_ROOT = "rmp"


@dataclass(frozen=True)
class TlsFiles:
    """PEM files for ``tls/...`` endpoints.

    ``root_ca`` verifies the other side. ``cert``/``key`` are this side's
    certificate: the server's for the endpoints it listens on and, when it
    connects, a client certificate (mutual TLS).
    """

    root_ca: str | None = None
    cert: str | None = None
    key: str | None = None


def _insert(conf: zenoh.Config, path: str, value: object) -> None:
    conf.insert_json5(path, json.dumps(value))


def session_config(
    *,
    listen: Sequence[str] = (),
    connect: Sequence[str] = (),
    lease_secs: float | None = None,
    tls: TlsFiles | None = None,
) -> zenoh.Config:
    """The configuration :func:`open_session` opens (see there)."""
    if lease_secs is not None and lease_secs <= 0:
        raise ValueError(f"lease_secs must be > 0, got {lease_secs}")
    if tls is not None and (tls.cert is None) != (tls.key is None):
        raise ValueError("TlsFiles: cert and key go together")
    conf = zenoh.Config()
    _insert(conf, "mode", "peer")
    _insert(conf, "listen/endpoints", list(listen))
    _insert(conf, "connect/endpoints", list(connect))
    # Peers meet only over the endpoints given: no multicast discovery, and
    # no gossip that would introduce them to each other's other peers.
    _insert(conf, "scouting/multicast/enabled", False)
    _insert(conf, "scouting/gossip/enabled", False)
    # Hosts that share /dev/shm (network namespaces on one machine, as in the
    # tests) would otherwise hand large payloads over through it: traffic
    # between hosts must really cross the network.
    _insert(conf, "transport/shared_memory/enabled", False)
    if lease_secs is not None:
        # The lease bounds how long a dead link goes unnoticed (liveliness
        # tokens are deleted when it expires); keep_alive stays 4 per lease.
        _insert(conf, "transport/link/tx/lease", max(1, round(lease_secs * 1000)))
    if tls is not None:
        if tls.root_ca is not None:
            _insert(conf, "transport/link/tls/root_ca_certificate", tls.root_ca)
        if tls.cert is not None and tls.key is not None:
            if listen:
                _insert(conf, "transport/link/tls/listen_certificate", tls.cert)
                _insert(conf, "transport/link/tls/listen_private_key", tls.key)
            if connect:
                _insert(conf, "transport/link/tls/connect_certificate", tls.cert)
                _insert(conf, "transport/link/tls/connect_private_key", tls.key)
            # A certificate on both sides: each side proves who it is, and a
            # listener refuses clients without one signed by root_ca.
            _insert(
                conf, "transport/link/tls/enable_mtls", bool(connect) or tls.root_ca is not None
            )
    return conf


def open_session(
    *,
    listen: Sequence[str] = (),
    connect: Sequence[str] = (),
    lease_secs: float | None = None,
    tls: TlsFiles | None = None,
) -> zenoh.Session:
    """Opens a peer-mode Zenoh session on exactly these endpoints.

    Args:
        listen: Locators to listen on (``tcp/10.0.0.3:7447``, ``tls/...``).
        connect: Locators of peers to connect to.
        lease_secs: ``transport/link/tx/lease``: a peer silent this long is
            gone (default 10 s). Shorter detects a lost host sooner.
        tls: Certificates for ``tls/`` locators.
    """
    return zenoh.open(
        session_config(listen=listen, connect=connect, lease_secs=lease_secs, tls=tls)
    )


def data_key(session_id: str, channel: str) -> str:
    """The key a channel's messages cross on: ``rmp/<session>/ch/<channel>``."""
    return f"{KEY_ROOT}/{session_id}/ch/{channel}"


def credit_key(session_id: str, channel: str) -> str:
    """The key an ingress returns credits on (see :mod:`.bridge`)."""
    return f"{data_key(session_id, channel)}/credit"


def close_bounded(session: zenoh.Session, timeout: float = 2.0) -> bool:
    """Closes ``session`` and returns within ``timeout`` seconds.

    A Python Zenoh process was measured still alive 60 s after its work ended
    while its link was down: the session's close waits on the link. So the
    close runs in a daemon thread, which a process may leave behind when it
    exits.

    Returns:
        True when the close finished within ``timeout``.
    """
    done = threading.Event()

    def close() -> None:
        try:
            with contextlib.suppress(Exception):  # already closed, or the runtime is going away
                session.close()
        finally:
            done.set()

    threading.Thread(target=close, name="zenoh-close", daemon=True).start()
    return done.wait(timeout)
