"""PEP 517 backend of remotemedia-multiprocess: setuptools, plus the files the wheel carries.

Why an in-tree wrapper around setuptools rather than maturin or setuptools-rust:
the Rust crate is a plain C-ABI cdylib that Deno loads with ``Deno.dlopen``, not
a Python extension; maturin has no binding mode that ships a bare cdylib next to
a pure-Python package (``cffi`` would generate a cffi module we do not use), and
setuptools-rust's ``NoBinding`` names the file with the interpreter's extension
suffix (``librmp_iceoryx2.cpython-311-...so``), making one wheel per Python
version for a library that does not depend on Python at all. This wrapper builds
the crate with cargo, puts ``librmp_iceoryx2.so`` in ``_native/`` and the Deno
module in ``_deno/``, and tags the wheel ``py3-none-<platform>``: one wheel for
every CPython >= 3.10 on the platform (``auditwheel repair`` then makes it
``manylinux_*``; see ``deno task build:wheel``).

Sources, in this order:
- the native library: ``$RMP_WHEEL_NATIVE_LIB`` (a library already built),
  else ``cargo build --release`` of ``../ffi`` (a checkout) or ``_ffi`` (an sdist);
- the Deno module: ``_deno/`` when present (an sdist), else the checkout's
  publish file set, copied by ``deno run -A ../scripts/_publish_files.ts``.

The build happens in a temporary copy, so the source tree never gets a stale
library or module copy. Editable installs (``pip install -e``) are plain
setuptools: a checkout has its own library and module.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from setuptools import build_meta as _setuptools

# Editable installs and metadata are setuptools' own.
build_editable = _setuptools.build_editable
get_requires_for_build_editable = _setuptools.get_requires_for_build_editable
prepare_metadata_for_build_editable = _setuptools.prepare_metadata_for_build_editable
get_requires_for_build_wheel = _setuptools.get_requires_for_build_wheel
get_requires_for_build_sdist = _setuptools.get_requires_for_build_sdist

PACKAGE = "remotemedia_multiprocess"
LIBRARY = "librmp_iceoryx2.dylib" if sys.platform == "darwin" else "librmp_iceoryx2.so"
_PROJECT_FILES = ("pyproject.toml", "README.md", "MANIFEST.in")


def _project() -> Path:
    return Path.cwd().resolve()


def _checkout(project: Path) -> Path | None:
    root = project.parent
    if (root / "ffi" / "Cargo.toml").is_file() and (root / "deno.json").is_file():
        return root
    return None


def _ignore(_dir: str, names: list[str]) -> set[str]:
    return {
        n
        for n in names
        if n in {"__pycache__", "target", ".pytest_cache"} or n.endswith(".egg-info")
    }


def _copy_project(project: Path, stage: Path) -> None:
    for name in (*_PROJECT_FILES, "_backend"):
        src = project / name
        if src.is_dir():
            shutil.copytree(src, stage / name, ignore=_ignore)
        elif src.is_file():
            shutil.copy2(src, stage / name)
    shutil.copytree(project / PACKAGE, stage / PACKAGE, ignore=_ignore)
    if (project / "_ffi").is_dir():
        shutil.copytree(project / "_ffi", stage / "_ffi", ignore=_ignore)


def _run(args: list[str], what: str, cwd: Path | None = None) -> None:
    try:
        done = subprocess.run(args, cwd=cwd, check=False)
    except FileNotFoundError as e:
        raise RuntimeError(
            f"Building remotemedia-multiprocess needs {args[0]} ({what}): {e}"
        ) from e
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed (exit {done.returncode}): {' '.join(args)}")


def _deno() -> str:
    return os.environ.get("DENO") or shutil.which("deno") or "deno"


def _stage_deno(project: Path, stage: Path) -> None:
    dest = stage / PACKAGE / "_deno"
    if dest.is_dir():
        return  # an sdist carries it
    checkout = _checkout(project)
    if checkout is None:
        raise RuntimeError(
            "Cannot build the wheel: it needs the Deno module, and this source tree is neither "
            "an sdist of remotemedia-multiprocess (no remotemedia_multiprocess/_deno) nor the "
            "python/ folder of a checkout"
        )
    _run(
        [_deno(), "run", "-A", str(checkout / "scripts" / "_publish_files.ts"), str(dest)],
        "copying the Deno module (deno)",
    )


def _ffi_sources(project: Path) -> Path:
    checkout = _checkout(project)
    if checkout is not None:
        return checkout / "ffi"
    if (project / "_ffi" / "Cargo.toml").is_file():
        return project / "_ffi"
    raise RuntimeError(
        "Cannot build the native library: no ../ffi (checkout) or _ffi (sdist) with a Cargo.toml"
    )


def _stage_library(project: Path, stage: Path) -> None:
    dest = stage / PACKAGE / "_native"
    dest.mkdir(parents=True, exist_ok=True)
    prebuilt = os.environ.get("RMP_WHEEL_NATIVE_LIB")
    if prebuilt:
        shutil.copy2(prebuilt, dest / LIBRARY)
        return
    ffi = _ffi_sources(project)
    target = os.environ.get("CARGO_TARGET_DIR") or str(ffi / "target")
    cargo = (
        os.environ.get("CARGO")
        or shutil.which("cargo")
        or str(Path.home() / ".cargo" / "bin" / "cargo")
    )
    _run(
        [
            cargo,
            "build",
            "--release",
            "--locked",
            "--manifest-path",
            str(ffi / "Cargo.toml"),
            "--target-dir",
            target,
        ],
        "building the native library (cargo build --release; install Rust from https://rustup.rs)",
    )
    shutil.copy2(Path(target) / "release" / LIBRARY, dest / LIBRARY)


def _stage_ffi(project: Path, stage: Path) -> None:
    if (stage / "_ffi").is_dir():
        return
    src = _ffi_sources(project)
    shutil.copytree(src, stage / "_ffi", ignore=lambda d, n: _ignore(d, n) | {"tests"})


@contextmanager
def _staged(kind: str) -> Iterator[Path]:
    project = _project()
    with tempfile.TemporaryDirectory(prefix="rmp-build-") as tmp:
        stage = Path(tmp) / "project"
        stage.mkdir()
        _copy_project(project, stage)
        _stage_deno(project, stage)
        if kind == "wheel":
            _stage_library(project, stage)
            platform = sysconfig.get_platform().replace("-", "_").replace(".", "_")
            (stage / "setup.cfg").write_text(
                f"[bdist_wheel]\npython_tag = py3\nplat_name = {platform}\n"
            )
        else:
            _stage_ffi(project, stage)
        cwd = Path.cwd()
        os.chdir(stage)
        try:
            yield stage
        finally:
            os.chdir(cwd)


def build_wheel(
    wheel_directory: str,
    config_settings: dict[str, Any] | None = None,
    metadata_directory: str | None = None,
) -> str:
    """Builds the wheel with the native library and the Deno module in it."""
    wheel_directory = os.path.abspath(wheel_directory)
    with _staged("wheel"):
        return _setuptools.build_wheel(wheel_directory, config_settings)


def build_sdist(sdist_directory: str, config_settings: dict[str, Any] | None = None) -> str:
    """Builds an sdist that carries the crate (``_ffi/``) and the Deno module (``_deno/``)."""
    sdist_directory = os.path.abspath(sdist_directory)
    with _staged("sdist"):
        return _setuptools.build_sdist(sdist_directory, config_settings)


def prepare_metadata_for_build_wheel(
    metadata_directory: str, config_settings: dict[str, Any] | None = None
) -> str:
    """The wheel's metadata (setuptools', from pyproject.toml)."""
    return _setuptools.prepare_metadata_for_build_wheel(metadata_directory, config_settings)
