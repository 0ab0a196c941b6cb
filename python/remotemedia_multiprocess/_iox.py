"""iceoryx2 isolation: one ``global.prefix`` and ``global.root_path`` per
session or test (docs/channel-protocol.md, "Isolation").

The prefix has the form ``rmp<PID>x<8 hex>_`` and the root is
``/tmp/rmp/<prefix>/``. Processes receive them as ``RMP_IOX2_PREFIX`` and
``RMP_IOX2_ROOT``.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
from pathlib import Path
from typing import Any

import iceoryx2 as iox2

from .errors import ChannelError

__all__ = [
    "ENV_PREFIX",
    "ENV_ROOT",
    "IoxEnv",
    "new_isolated_env",
    "remove_env_files",
    "sweep_stale",
]

ENV_PREFIX = "RMP_IOX2_PREFIX"
"""Environment variable holding the iceoryx2 ``global.prefix``."""
ENV_ROOT = "RMP_IOX2_ROOT"
"""Environment variable holding the iceoryx2 ``global.root_path``."""

SHM_DIR = Path("/dev/shm")
ROOT_BASE = Path("/tmp/rmp")
_OURS = re.compile(r"^rmp(\d+)x")


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


def new_isolated_env() -> IoxEnv:
    """A new environment owned by this process: prefix ``rmp<PID>x<8 hex>_``,
    root ``/tmp/rmp/<prefix>/`` (created).

    Example:
        >>> env = new_isolated_env()
        >>> env.root == f"/tmp/rmp/{env.prefix}/"
        True
        >>> remove_env_files(env)
    """
    prefix = f"rmp{os.getpid()}x{secrets.token_hex(4)}_"
    root = ROOT_BASE / prefix
    root.mkdir(parents=True, exist_ok=True)
    return IoxEnv(prefix, f"{root}/")


def remove_env_files(env: IoxEnv) -> None:
    """Deletes ``/dev/shm/<prefix>*`` and the root folder of ``env``.

    Only for an environment no process uses any more.
    """
    for f in SHM_DIR.glob(f"{env.prefix}*"):
        f.unlink(missing_ok=True)
    shutil.rmtree(env.root, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale() -> int:
    """Removes ``/dev/shm/rmp<PID>x*`` files and ``/tmp/rmp/rmp<PID>x*``
    folders whose PID is no longer alive (left by a crashed session).

    Returns:
        How many files and folders were removed.
    """
    removed = 0
    alive: dict[int, bool] = {}

    def dead(name: str) -> bool:
        m = _OURS.match(name)
        if m is None:
            return False
        pid = int(m.group(1))
        if pid not in alive:
            alive[pid] = _pid_alive(pid)
        return not alive[pid]

    for base, is_dir in ((SHM_DIR, False), (ROOT_BASE, True)):
        try:
            entries = list(os.scandir(base))
        except FileNotFoundError:
            continue
        for entry in entries:
            if not dead(entry.name):
                continue
            try:
                if is_dir and entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path)
                else:
                    os.unlink(entry.path)
                removed += 1
            except FileNotFoundError:
                pass  # another sweeper got there first
            except OSError:
                pass  # not ours to remove (permissions): leave it
    return removed
