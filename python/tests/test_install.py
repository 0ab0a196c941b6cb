"""What an install tells about itself: ``python -m remotemedia_multiprocess`` and the
session server lookup of the client (``find_session_server``)."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import remotemedia_multiprocess as rmp
from remotemedia_multiprocess import _native_lib
from remotemedia_multiprocess.client import (
    SERVER_ENV,
    SessionError,
    _server_command,
    find_session_server,
)

ROOT = Path(__file__).resolve().parents[2]


def _main(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "remotemedia_multiprocess", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_version() -> None:
    done = _main("--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == rmp.__version__


def test_a_source_install_says_it_carries_no_library_and_what_to_do() -> None:
    # The checkout's editable install: no _native/ next to the package.
    assert rmp.native_library_path() is None
    done = _main("--native-lib")
    assert done.returncode == 1
    assert "carries no native library" in done.stderr
    assert "-m pip install --force-reinstall remotemedia-multiprocess`" in done.stderr
    done = _main("--session-server")
    assert done.returncode == 1
    assert "carries no Deno session server" in done.stderr


def _copy_of_native_lib(tmp_path: Path):  # type: ignore[no-untyped-def]
    package = tmp_path / "pkg"
    package.mkdir()
    shutil.copy(_native_lib.__file__, package / "_native_lib.py")
    spec = importlib.util.spec_from_file_location("_copy_native_lib", package / "_native_lib.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return package, module


def test_library_path_is_the_carried_file(tmp_path: Path) -> None:
    package, module = _copy_of_native_lib(tmp_path)
    assert module.library_path() is None
    assert module.bundled_session_server() is None
    (package / "_native").mkdir()
    (package / "_native" / module.LIBRARY_NAME).write_bytes(b"\x7fELF")
    (package / "_deno" / "control").mkdir(parents=True)
    (package / "_deno" / "control" / "session_server.ts").write_text("")
    assert module.library_path() == str(package / "_native" / module.LIBRARY_NAME)
    assert module.bundled_session_server() == package / "_deno" / "control" / "session_server.ts"


def test_session_server_in_a_checkout_is_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SERVER_ENV, raising=False)
    assert find_session_server() == (str(ROOT / "control" / "session_server.ts"), False)


def test_session_server_explicit_then_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    server = tmp_path / "session_server.ts"
    server.write_text("")
    monkeypatch.setenv(SERVER_ENV, "jsr:@remotemedia/multiprocess/control/session_server.ts")
    assert find_session_server(server) == (str(server), False)
    assert find_session_server() == (
        "jsr:@remotemedia/multiprocess/control/session_server.ts",
        False,
    )
    monkeypatch.setenv(SERVER_ENV, str(tmp_path / "missing.ts"))
    with pytest.raises(SessionError, match=f"from the session_server argument or {SERVER_ENV}"):
        find_session_server()


def test_the_carried_server_runs_offline_with_its_own_config(tmp_path: Path) -> None:
    server = tmp_path / "_deno" / "control" / "session_server.ts"
    command = _server_command(str(server), True)
    assert command[-1] == str(server)
    assert command[command.index("--config") + 1] == str(tmp_path / "_deno" / "deno.json")
    assert "--cached-only" in command and "--no-lock" in command
    assert "--cached-only" not in _server_command("jsr:@x/y/server.ts", False)
