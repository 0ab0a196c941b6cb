"""iceoryx2 isolation: one ``global.prefix`` and ``global.root_path`` per
session or test (docs/channel-protocol.md, "Isolation").

The prefix has the form ``rmp<PID>x<8 hex>_``, the root is
``/tmp/rmp/<prefix>/`` and the lock file ``/tmp/rmp/<prefix>.lock``. Processes
receive prefix and root as ``RMP_IOX2_PREFIX`` and ``RMP_IOX2_ROOT``. The PID
is only for humans: an isolation is live while some process holds a shared
flock on its lock file; sweepers remove it only while they hold the exclusive
lock.
"""

from __future__ import annotations

import fcntl
import os
import re
import secrets
import shutil
import time
import weakref
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import iceoryx2 as iox2

from ._contracts import (
    ISOLATION_BASE_DIR,
    ISOLATION_ENV_PREFIX,
    ISOLATION_ENV_ROOT,
    ISOLATION_LOCK_SUFFIX,
    ISOLATION_PREFIX_PATTERN,
    ISOLATION_SHM_DIR,
)
from .errors import ChannelError

__all__ = [
    "ENV_PREFIX",
    "ENV_ROOT",
    "PREFIX_PATTERN",
    "UNLOCKED_GRACE_SECS",
    "IoxEnv",
    "IsolationLock",
    "hold_isolation",
    "lock_path",
    "new_isolated_env",
    "remove_env_files",
    "sweep_stale",
]

ENV_PREFIX = ISOLATION_ENV_PREFIX
"""Environment variable holding the iceoryx2 ``global.prefix``."""
ENV_ROOT = ISOLATION_ENV_ROOT
"""Environment variable holding the iceoryx2 ``global.root_path``."""

SHM_DIR = Path(ISOLATION_SHM_DIR)
ROOT_BASE = Path(ISOLATION_BASE_DIR)
PREFIX_PATTERN = re.compile(ISOLATION_PREFIX_PATTERN)
"""An isolation prefix at the start of a name (the same as data/isolation.ts)."""
UNLOCKED_GRACE_SECS = 60.0
"""Files of an isolation without a lock file (made by a version before lock
files) are swept only when older than this and the PID in their name is gone,
so a live session of such a version is not broken."""
_CREATE_ATTEMPTS = 16


def lock_path(root: str) -> str:
    """The lock file of the isolation whose root is ``root``: the root without
    its trailing slash, plus ``.lock`` (beside the root, so it can exist
    before the root and outlive it).

    Example:
        >>> lock_path("/tmp/rmp/rmp1x0badf00d_/")
        '/tmp/rmp/rmp1x0badf00d_.lock'
    """
    return root.rstrip("/") + ISOLATION_LOCK_SUFFIX


class IsolationLock:
    """A flock(2) on an isolation's lock file. Shared locks mark the isolation
    live (its owner and every process of its session hold one); a sweeper
    removes an isolation only while it holds the exclusive lock. The file
    descriptor is not inheritable (O_CLOEXEC), so child processes take their
    own lock; it is closed (the lock released) by :meth:`release`, when the
    object is collected, or when the process exits.

    Example:
        >>> env = new_isolated_env()
        >>> lock = hold_isolation(env.root)
        >>> lock is not None and lock.held
        True
        >>> lock.release(); remove_env_files(env)
    """

    def __init__(self, path: str, fd: int) -> None:
        self.path: str = path
        """The lock file."""
        self._fd: int | None = fd
        self._finalizer = weakref.finalize(self, os.close, fd)

    @property
    def held(self) -> bool:
        """True until :meth:`release`."""
        return self._fd is not None

    def try_exclusive(self) -> bool:
        """Converts to the exclusive lock; False when another process holds
        the lock (flock(2) may then have dropped the shared lock too, so
        release next)."""
        if self._fd is None:
            return False
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def release(self) -> None:
        """Releases the lock (closing the file); the files stay. Idempotent."""
        self._fd = None
        self._finalizer()

    def __repr__(self) -> str:
        return f"IsolationLock({self.path!r}, held={self.held})"


def _same_file(a: os.stat_result, b: os.stat_result) -> bool:
    return a.st_ino == b.st_ino and a.st_dev == b.st_dev


def _lock_if_current(fd: int, path: str, mode: int) -> bool:
    """Locks ``fd`` (open on ``path``) without blocking and checks that the
    path still names the locked file: a sweeper may have unlinked it first."""
    try:
        fcntl.flock(fd, mode | fcntl.LOCK_NB)
        return _same_file(os.fstat(fd), os.lstat(path))
    except OSError:
        return False


def _open_locked(path: str, mode: int) -> int | None:
    """``path`` opened and locked (``LOCK_SH`` or ``LOCK_EX``), or None when
    it is missing, held by others or was replaced."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    if _lock_if_current(fd, path, mode):
        return fd
    os.close(fd)
    return None


class IoxEnv:
    """An isolated iceoryx2 environment and its node (created on first use,
    with ``SignalHandlingMode.Disabled`` so iceoryx2 installs no handlers).

    Args:
        prefix: ``global.prefix``; defaults to ``$RMP_IOX2_PREFIX``.
        root: ``global.root_path``; defaults to ``$RMP_IOX2_ROOT``.

    Raises:
        ChannelError: When neither the argument nor the variable is set.

    Example:
        >>> env = new_isolated_env()
        >>> env.prefix.startswith(f"rmp{os.getpid()}x")
        True
        >>> env.close(); remove_env_files(env)
    """

    def __init__(self, prefix: str | None = None, root: str | None = None) -> None:
        prefix = prefix if prefix is not None else os.environ.get(ENV_PREFIX)
        root = root if root is not None else os.environ.get(ENV_ROOT)
        if not prefix or not root:
            raise ChannelError(
                f"no iceoryx2 isolation: pass prefix and root or set {ENV_PREFIX} and {ENV_ROOT}"
            )
        if not root.endswith("/"):
            root += "/"
        self.prefix: str = prefix
        self.root: str = root
        self.lock: IsolationLock | None = None
        """The owner's lock when :func:`new_isolated_env` made this environment."""
        self._node: Any = None

    def config(self) -> Any:
        """A fresh ``iceoryx2.config.Config`` with this prefix and root."""
        cfg = iox2.config.default()
        cfg.global_cfg.prefix = iox2.FileName.new(self.prefix)
        cfg.global_cfg.root_path = iox2.Path.new(self.root)
        return cfg

    @property
    def node(self) -> Any:
        """The process's iceoryx2 node in this environment (``ServiceType.Ipc``,
        the thread-safe flavour)."""
        if self._node is None:
            self._node = (
                iox2.NodeBuilder.new()
                .config(self.config())
                .signal_handling_mode(iox2.SignalHandlingMode.Disabled)
                .create(iox2.ServiceType.Ipc)
            )
        return self._node

    def env_vars(self) -> dict[str, str]:
        """``{RMP_IOX2_PREFIX: prefix, RMP_IOX2_ROOT: root}`` for a child process."""
        return {ENV_PREFIX: self.prefix, ENV_ROOT: self.root}

    def close(self) -> None:
        """Drops this object's reference to the node (the binding has no
        explicit delete; the node goes when its last port and channel go)."""
        self._node = None

    def __repr__(self) -> str:
        return f"IoxEnv(prefix={self.prefix!r}, root={self.root!r})"


_HELD: list[IsolationLock] = []
"""Locks held for the life of the process (see :func:`hold_isolation`)."""


def new_isolated_env() -> IoxEnv:
    """A new environment owned by this process: prefix ``rmp<PID>x<8 hex>_``,
    root ``/tmp/rmp/<prefix>/`` (created). Its lock file is created and locked
    (shared) before anything else of it exists; ``env.lock`` holds it until
    :func:`remove_env_files`, until ``env.lock.release()``, or until the
    environment is collected or the process exits.

    Raises:
        ChannelError: When the lock file or the root cannot be created.

    Example:
        >>> env = new_isolated_env()
        >>> env.root == f"/tmp/rmp/{env.prefix}/"
        True
        >>> remove_env_files(env)
    """
    last_error: OSError | None = None
    for _ in range(_CREATE_ATTEMPTS):
        prefix = f"rmp{os.getpid()}x{secrets.token_hex(4)}_"
        root = f"{ROOT_BASE / prefix}/"
        path = lock_path(root)
        try:
            ROOT_BASE.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            continue
        except OSError as e:
            last_error = e
            break
        # Between O_EXCL and the lock a sweeper can take the unlocked file and
        # unlink it: then the check fails and we start over elsewhere.
        if not _lock_if_current(fd, path, fcntl.LOCK_SH):
            os.close(fd)
            continue
        env = IoxEnv(prefix, root)
        env.lock = IsolationLock(path, fd)
        try:
            os.mkdir(root)
        except OSError as e:
            env.lock.release()
            remove_env_files(env)
            raise ChannelError(f"Cannot create the isolation root {root}: {e}") from e
        return env
    reason = str(last_error) if last_error else "sweepers took every new one"
    raise ChannelError(f"Cannot create an isolation lock file in {ROOT_BASE}: {reason}")


def hold_isolation(root: str) -> IsolationLock | None:
    """Holds a shared lock on the isolation whose root is ``root`` for the
    rest of this process's life, so sweepers leave the session's files alone
    while this process maps them (node runners call it right after reading
    their spec). Exiting releases it, even after a kill -9.

    Args:
        root: The isolation root (``RMP_IOX2_ROOT``).

    Returns:
        The lock, or None when the isolation has no lock file (a version
        before lock files) or is being or was removed.

    Example:
        >>> hold_isolation("/nonexistent/") is None
        True
    """
    path = lock_path(root)
    fd = _open_locked(path, fcntl.LOCK_SH)
    if fd is None:
        return None
    lock = IsolationLock(path, fd)
    _HELD.append(lock)
    return lock


def _shm_names(prefix: str) -> list[str]:
    try:
        return [e.name for e in os.scandir(SHM_DIR) if e.name.startswith(prefix)]
    except FileNotFoundError:
        return []


def _remove_files(prefix: str, root: str, shm: Iterable[str] | None = None) -> int:
    """Removes shared memory, then the root: the files a lock protects."""
    removed = 0
    for name in _shm_names(prefix) if shm is None else shm:
        try:
            os.unlink(SHM_DIR / name)
            removed += 1
        except FileNotFoundError:
            pass  # already gone
        except OSError:
            pass  # not ours to remove (permissions): leave it
    if os.path.isdir(root):
        shutil.rmtree(root, ignore_errors=True)
        removed += 1
    return removed


def _remove_locked(prefix: str, root: str, shm: Iterable[str] | None = None) -> int:
    """Removes the files, then unlinks the lock file (the caller still holds
    it, so no one can take the isolation in between)."""
    removed = _remove_files(prefix, root, shm)
    try:
        os.unlink(lock_path(root))
        removed += 1
    except FileNotFoundError:
        pass
    return removed


def remove_env_files(env: IoxEnv) -> None:
    """Deletes ``/dev/shm/<prefix>*``, the root folder and then the lock file
    of ``env``, unless another process still holds its lock: then it only
    releases this environment's lock and leaves the files to a later sweep
    (``os.path.exists(lock_path(env.root))`` tells which happened).

    Only for an environment no process uses any more.
    """
    own = env.lock
    if own is not None and own.held:
        # A runner still alive keeps the files; a sweep removes them later.
        if own.try_exclusive():
            _remove_locked(env.prefix, env.root)
        own.release()
        return
    path = lock_path(env.root)
    fd = _open_locked(path, fcntl.LOCK_EX)
    if fd is not None:
        _remove_locked(env.prefix, env.root)
        os.close(fd)
    elif not os.path.lexists(path):
        _remove_files(env.prefix, env.root)  # no lock file: nothing to ask


def _pid_alive(pid: int) -> bool:
    # /proc as data/isolation.ts reads it, so both sweepers agree.
    return os.path.exists(f"/proc/{pid}")


def _older_than(path: str | Path, secs: float) -> bool:
    try:
        return time.time() - os.lstat(path).st_mtime > secs
    except FileNotFoundError:
        return True  # gone


def sweep_stale(prefixes: Iterable[str] | None = None) -> int:
    """Removes the isolations no live process holds (after a kill -9 of the
    owner and its runners, say). Liveness comes only from the lock file: an
    isolation's shared memory, root and lock file are removed only while this
    sweeper holds the exclusive lock. Files without a lock file are removed
    once older than :data:`UNLOCKED_GRACE_SECS` and the PID in their name is
    gone.

    Args:
        prefixes: Look only at these prefixes (tests use this to stay inside
            their own isolations); default every isolation.

    Returns:
        How many files and folders were removed.

    Example:
        >>> sweep_stale(prefixes=["rmp1x00000000_"])
        0
    """
    only = set(prefixes) if prefixes is not None else None

    def prefix_of(name: str) -> str | None:
        m = PREFIX_PATTERN.match(name)
        if m is None or (only is not None and m.group(0) not in only):
            return None
        return m.group(0)

    locked: set[str] = set()
    roots: set[str] = set()
    try:
        entries = list(os.scandir(ROOT_BASE))
    except FileNotFoundError:
        entries = []
    for entry in entries:
        prefix = prefix_of(entry.name)
        if prefix is None:
            continue
        if entry.name == f"{prefix}{ISOLATION_LOCK_SUFFIX}" and entry.is_file(
            follow_symlinks=False
        ):
            locked.add(prefix)
        elif entry.name == prefix and entry.is_dir(follow_symlinks=False):
            roots.add(prefix)
    claimed: dict[str, int] = {}
    for prefix in locked:
        fd = _open_locked(str(ROOT_BASE / f"{prefix}{ISOLATION_LOCK_SUFFIX}"), fcntl.LOCK_EX)
        if fd is not None:
            claimed[prefix] = fd
    # Listed after claiming, so shared memory made before the owner died is
    # all seen; nothing can add to a claimed isolation.
    shm: dict[str, list[str]] = {}
    try:
        for entry in os.scandir(SHM_DIR):
            prefix = prefix_of(entry.name)
            if prefix is not None:
                shm.setdefault(prefix, []).append(entry.name)
    except FileNotFoundError:
        pass
    removed = 0
    for prefix, fd in claimed.items():
        try:
            removed += _remove_locked(prefix, f"{ROOT_BASE / prefix}/", shm.get(prefix, []))
        finally:
            os.close(fd)
    for prefix in (roots | shm.keys()) - locked:
        root = f"{ROOT_BASE / prefix}/"
        names = shm.get(prefix, [])
        m = PREFIX_PATTERN.match(prefix)
        assert m is not None
        if _pid_alive(int(m.group(1))):
            continue
        paths = [root, *(SHM_DIR / n for n in names)]
        if not all(_older_than(p, UNLOCKED_GRACE_SECS) for p in paths):
            continue
        # A lock file made since the listing means a live, new isolation.
        if os.path.lexists(lock_path(root)):
            continue
        removed += _remove_files(prefix, root, names)
    return removed
