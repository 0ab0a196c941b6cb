"""Isolation ownership (issue 7, defect 9), with real processes: an isolation
is live while some process holds a shared flock on its lock file; sweepers
remove it only under the exclusive lock. Every sweep here is scoped to the
test's own prefixes, or runs in private mounts, so it cannot touch other
sessions on a shared machine."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from remotemedia_multiprocess import _iox
from remotemedia_multiprocess._iox import (
    PREFIX_PATTERN,
    hold_isolation,
    lock_path,
    new_isolated_env,
    remove_env_files,
    sweep_stale,
)

REPO = Path(__file__).resolve().parents[2]
OWNER = Path(__file__).with_name("iox_owner.py")


def _runs(cmd: list[str]) -> bool:
    try:
        return subprocess.run(cmd, check=False, capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


CAN_UNSHARE_PID = _runs(["unshare", "--pid", "--fork", "true"])
CAN_PRIVATE_MOUNTS = _runs(["unshare", "--mount", "sh", "-c", "mount -t tmpfs none /dev/shm"])
DENO = shutil.which("deno")

# In a PID namespace, a shell is PID 1 (so the owner's death leaves its other
# processes alive) and passes its stdin on through fd 3 (a background job's
# own stdin is /dev/null); then it lets go of the pipes, so the owner's death
# ends them. The owner is PID 2, which sweepers of versions
# before lock files (still run by other checkouts here) take as alive.
_NS_INIT = 'exec 3<&0; "$@" <&3 3<&- & wait $! 2>/dev/null; exec sleep 86400 >/dev/null 2>&1 3<&-'


def _gone(pid: int) -> bool:
    return not os.path.exists(f"/proc/{pid}")


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return not stat.rsplit(") ", 1)[1].startswith("Z")


class Owner:
    """A running ``iox_owner.py``, optionally in its own PID namespace."""

    def __init__(self, pid_namespace: bool) -> None:
        cmd = [sys.executable, str(OWNER)]
        if pid_namespace:
            cmd = ["unshare", "--pid", "--fork", "--kill-child", "sh", "-c", _NS_INIT, "sh", *cmd]
        self._proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        )
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            self._proc.wait()
            raise RuntimeError("The owner exited before it was ready")
        self.info: dict[str, Any] = json.loads(line)
        self.prefix: str = self.info["prefix"]
        self.root: str = self.info["root"]

    def command(self, line: str) -> dict[str, int]:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write(line + "\n")
        self._proc.stdin.flush()
        answer = self._proc.stdout.readline()
        if not answer:
            raise RuntimeError(f'The owner exited during "{line}"')
        return json.loads(answer)

    def sweep(self, prefixes: list[str]) -> int:
        return self.command("sweep " + " ".join(prefixes))["removed"]

    def kill9(self) -> None:
        """kill -9, then waits until it is reaped (only then are all its
        threads gone and its files closed)."""
        try:
            os.kill(self.info["host_pid"], 9)
        except ProcessLookupError:
            pass
        if self._proc.args[0] != "unshare":
            self._proc.wait()
            return
        deadline = time.monotonic() + 10
        while not _gone(self.info["host_pid"]):
            assert time.monotonic() < deadline, "the owner was not reaped"
            time.sleep(0.01)

    def close(self) -> None:
        """Kills the owner and everything in its namespace."""
        self.kill9()
        self._proc.kill()
        self._proc.wait()
        for stream in (self._proc.stdin, self._proc.stdout):
            if stream is not None:
                stream.close()


@pytest.fixture
def owners() -> Iterator[list[Owner]]:
    started: list[Owner] = []
    yield started
    for owner in started:
        owner.close()
    sweep_stale(prefixes=[o.prefix for o in started])


def start(owners: list[Owner], pid_namespace: bool = CAN_UNSHARE_PID) -> Owner:
    owner = Owner(pid_namespace)
    owners.append(owner)
    return owner


def leftovers(prefix: str, root: str) -> list[str]:
    """What an isolation has on disk: shared memory, lock file, root tree."""
    found = [str(p) for p in Path("/dev/shm").glob(f"{prefix}*")]
    if os.path.lexists(lock_path(root)):
        found.append(lock_path(root))
    if os.path.isdir(root):
        found.append(root)
        found += [str(p) for p in Path(root).rglob("*")]
    return sorted(found)


def existing(paths: list[str]) -> list[str]:
    return [p for p in paths if os.path.lexists(p)]


def deno_sweep(prefixes: list[str]) -> int:
    assert DENO is not None
    out = subprocess.run(
        [
            DENO,
            "eval",
            (
                "import { sweepStaleIsolations } from './data/isolation.ts';"
                "console.log(sweepStaleIsolations({ prefixes: Deno.args }));"
            ),
            *prefixes,
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    return int(out.stdout)


def holder(root: str) -> subprocess.Popen[str]:
    """A process that holds ``hold_isolation(root)`` until its stdin ends."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import sys; from remotemedia_multiprocess._iox import hold_isolation\n"
                "assert hold_isolation(sys.argv[1]) is not None\n"
                "print('held', flush=True); sys.stdin.read()"
            ),
            root,
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def stop(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.close()
    proc.wait(timeout=10)
    proc.stdout.close()


def test_prefix_pattern_is_the_contract() -> None:
    from remotemedia_multiprocess._contracts import ISOLATION_PREFIX_PATTERN

    assert PREFIX_PATTERN.pattern == ISOLATION_PREFIX_PATTERN
    assert PREFIX_PATTERN.match("rmp12x0badf00d_seg")
    for name in ("rmp12xnothex00_seg", "rmp12x0badf00d", "rmpx0badf00d_", "rmp12x0BADF00D_"):
        assert not PREFIX_PATTERN.match(name), name


def test_a_new_env_is_locked_before_its_root_and_removed_last() -> None:
    env = new_isolated_env()
    assert env.lock is not None and env.lock.held
    assert env.lock.path == f"/tmp/rmp/{env.prefix}.lock" == lock_path(env.root)
    assert os.path.isdir(env.root)
    fd = os.open(env.lock.path, os.O_RDONLY)
    try:
        assert not os.get_inheritable(fd) and not os.get_inheritable(env.lock._fd or -1)
        with pytest.raises(BlockingIOError):
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        os.close(fd)
    assert sweep_stale(prefixes=[env.prefix]) == 0
    assert existing([env.lock.path, env.root]) == [env.lock.path, env.root]
    remove_env_files(env)
    assert leftovers(env.prefix, env.root) == []


@pytest.mark.skipif(DENO is None, reason="needs deno on PATH")
def test_live_owner_survives_both_sweepers_and_goes_after_kill9(owners: list[Owner]) -> None:
    owner = start(owners)
    files = leftovers(owner.prefix, owner.root)
    assert any(f.startswith(f"/dev/shm/{owner.prefix}") for f in files)
    assert lock_path(owner.root) in files
    assert sweep_stale(prefixes=[owner.prefix]) == 0
    assert deno_sweep([owner.prefix]) == 0
    assert owner.sweep([owner.prefix]) == 0
    assert existing(files) == files
    owner.kill9()
    assert sweep_stale(prefixes=[owner.prefix]) > 0
    assert leftovers(owner.prefix, owner.root) == []


@pytest.mark.skipif(DENO is None, reason="needs deno on PATH")
def test_deno_sweeper_removes_a_python_owner_after_kill9(owners: list[Owner]) -> None:
    owner = start(owners)
    # Any session on the machine may sweep the dead owner's files first (as
    # it should): hold them with a shared lock until the Deno sweeper has
    # started, then hand over.
    guard = hold_isolation(owner.root)
    assert guard is not None
    assert DENO is not None
    sweeper = subprocess.Popen(
        [
            DENO,
            "eval",
            (
                "import { sweepStaleIsolations } from './data/isolation.ts';"
                "const args = Deno.args; console.log('ready');"
                "const buf = new Uint8Array(16); await Deno.stdin.read(buf);"
                "console.log(sweepStaleIsolations({ prefixes: args }));"
            ),
            owner.prefix,
        ],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        owner.kill9()
        assert sweeper.stdout is not None and sweeper.stdin is not None
        assert sweeper.stdout.readline().strip() == "ready"
        guard.release()
        sweeper.stdin.write("go\n")
        sweeper.stdin.close()
        assert int(sweeper.stdout.readline()) > 0
    finally:
        guard.release()
        sweeper.wait(timeout=30)
    assert leftovers(owner.prefix, owner.root) == []


def test_creation_race_swept_lock_file_is_noticed() -> None:
    # The creator's first step (O_EXCL), then a sweep before its lock: the
    # sweeper may take the unlocked file, and unlinks it last.
    prefix = f"rmp{os.getpid()}x{os.urandom(4).hex()}_"
    path = f"/tmp/rmp/{prefix}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        assert sweep_stale(prefixes=[prefix]) == 1
        assert not os.path.lexists(path)
        # The lock itself still succeeds, on an unlinked file: the check that
        # the path still names the locked file is what catches it.
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        assert not _iox._lock_if_current(fd, path, fcntl.LOCK_SH)
    finally:
        os.close(fd)
    assert hold_isolation(f"/tmp/rmp/{prefix}/") is None


def test_creation_race_busy_sweeper_loses_no_new_env() -> None:
    """A sweeper process sweeps this process's prefixes in a loop while we
    create environments: every one we get must be intact and locked."""
    sweeper = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import os, sys, time\n"
                "from remotemedia_multiprocess._iox import sweep_stale\n"
                "tag, end = f'rmp{sys.argv[1]}x', time.monotonic() + 1.5\n"
                "sweeps = 0\n"
                "print('go', flush=True)\n"
                "while time.monotonic() < end:\n"
                "    names = [n for n in os.listdir('/tmp/rmp') if n.startswith(tag)]\n"
                "    sweep_stale(prefixes={n.removesuffix('.lock') for n in names})\n"
                "    sweeps += 1\n"
                "print(sweeps)"
            ),
            str(os.getpid()),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert sweeper.stdout is not None and sweeper.stdout.readline().strip() == "go"
    made = []
    until = time.monotonic() + 1.0
    while time.monotonic() < until:
        made.append(new_isolated_env())
    sweeps = int(sweeper.stdout.read())
    sweeper.wait()
    sweeper.stdout.close()
    try:
        assert sweeps > 10
        for env in made:
            assert env.lock is not None
            fd = os.open(env.lock.path, os.O_RDONLY)
            try:
                with pytest.raises(BlockingIOError):
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                assert os.fstat(fd).st_ino == os.fstat(env.lock._fd or -1).st_ino
            finally:
                os.close(fd)
            assert os.path.isdir(env.root)
    finally:
        for env in made:
            remove_env_files(env)


def test_a_holders_shared_lock_keeps_files_after_the_owners_kill9(owners: list[Owner]) -> None:
    owner = start(owners)
    proc = holder(owner.root)  # what a runner does right after its spec
    try:
        owner.kill9()
        files = leftovers(owner.prefix, owner.root)
        assert any(f.startswith("/dev/shm/") for f in files)
        assert sweep_stale(prefixes=[owner.prefix]) == 0
        assert existing(files) == files
    finally:
        stop(proc)
    assert sweep_stale(prefixes=[owner.prefix]) > 0
    assert leftovers(owner.prefix, owner.root) == []


def test_children_do_not_inherit_the_owners_lock(owners: list[Owner]) -> None:
    owner = start(owners)
    child = owner.command("spawn")["pid"]  # close_fds=False
    owner.kill9()
    assert _alive(child), "the child outlived its owner"
    assert sweep_stale(prefixes=[owner.prefix]) > 0
    assert leftovers(owner.prefix, owner.root) == []
    assert _alive(child)
    if not CAN_UNSHARE_PID:
        os.kill(child, 9)


def test_remove_env_files_leaves_files_another_process_holds() -> None:
    env = new_isolated_env()
    proc = holder(env.root)
    try:
        remove_env_files(env)
        assert env.lock is not None and not env.lock.held
        assert existing([lock_path(env.root), env.root]) == [lock_path(env.root), env.root]
        assert sweep_stale(prefixes=[env.prefix]) == 0
    finally:
        stop(proc)
    assert sweep_stale(prefixes=[env.prefix]) == 2  # root and lock file
    assert leftovers(env.prefix, env.root) == []


def test_hold_isolation_of_a_missing_isolation_is_none() -> None:
    assert hold_isolation("/tmp/rmp/rmp1x00000000_/") is None


@pytest.mark.skipif(not CAN_PRIVATE_MOUNTS, reason="needs private mounts (root)")
def test_files_without_a_lock_go_only_when_old_and_their_pid_is_gone() -> None:
    """Files without a lock file whose PID is dead are what sweepers before
    lock files (still run by other checkouts here) remove at once, so this
    runs where only it can see them: private /dev/shm and /tmp/rmp."""
    code = """
import json, os, subprocess, time
from pathlib import Path
from remotemedia_multiprocess._iox import UNLOCKED_GRACE_SECS, sweep_stale
child = subprocess.Popen(["true"]); child.wait()
dead = child.pid
stale, live, not_ours = f"rmp{dead}x0badf00d_", f"rmp{os.getpid()}x0badf00d_", f"rmp{dead}xnothex00_"
made = []
for p in (stale, live, not_ours):
    shm, root = Path(f"/dev/shm/{p}seg"), Path(f"/tmp/rmp/{p}")
    shm.write_bytes(b"x"); root.mkdir(parents=True); (root / "f").write_bytes(b"x")
    made += [shm, root]
prefixes = [stale, live, not_ours]
young = sweep_stale(prefixes=prefixes)
old = time.time() - UNLOCKED_GRACE_SECS - 5
for p in made:
    os.utime(p, (old, old))
aged = sweep_stale(prefixes=prefixes)
left = sorted(str(p) for p in made if p.exists())
expected = sorted(str(p) for p in made if stale not in str(p))
print(json.dumps({"young": young, "aged": aged, "ok": left == expected}))
"""
    script = (
        "mount -t tmpfs none /dev/shm && mkdir -p /tmp/rmp && "
        'mount -t tmpfs none /tmp/rmp && exec "$@"'
    )
    out = subprocess.run(
        ["unshare", "--mount", "sh", "-c", script, "sh", sys.executable, "-c", code],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"young": 0, "aged": 2, "ok": True}


@pytest.mark.skipif(not CAN_UNSHARE_PID, reason="needs unshare --pid (root)")
def test_owners_in_separate_pid_namespaces(owners: list[Owner]) -> None:
    """Two Python owners, each in its own PID namespace (both PID 2 there),
    sharing /dev/shm and /tmp: neither removes the other's live files; each
    removes the other's once that owner is killed with -9."""
    a, b = start(owners), start(owners)
    assert a.info["pid"] == b.info["pid"] < 10
    prefixes = [a.prefix, b.prefix]
    files_a, files_b = leftovers(a.prefix, a.root), leftovers(b.prefix, b.root)
    assert a.sweep(prefixes) == 0 and b.sweep(prefixes) == 0
    assert existing(files_a) == files_a and existing(files_b) == files_b
    a.kill9()
    assert b.sweep(prefixes) > 0
    assert leftovers(a.prefix, a.root) == []
    assert existing(files_b) == files_b
    c = start(owners)
    files_c = leftovers(c.prefix, c.root)
    everyone = [*prefixes, c.prefix]
    assert c.sweep(everyone) == 0
    b.kill9()
    assert c.sweep(everyone) > 0
    assert leftovers(b.prefix, b.root) == []
    assert existing(files_c) == files_c
