"""Shared fixtures: every test gets its own iceoryx2 environment, removed after."""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from remotemedia_multiprocess._iox import IoxEnv, new_isolated_env, remove_env_files

REPO = Path(__file__).resolve().parents[2]
VECTORS = REPO / "tests" / "vectors"


@pytest.fixture
def iox_env() -> Iterator[IoxEnv]:
    """A fresh isolated iceoryx2 environment (prefix rmp<PID>x<hex>_)."""
    env = new_isolated_env()
    try:
        yield env
    finally:
        env.close()
        # Drop every iceoryx2 object of the test first, so none of them finds
        # its files gone when it is dropped later.
        gc.collect()
        remove_env_files(env)
