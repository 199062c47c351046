"""Shared test fixtures."""

import os
from pathlib import Path

# Small matmuls on a busy 2-core machine stall badly with several OpenMP threads; the tests'
# models are tiny, so one thread is both faster and steadier (server subprocesses inherit it).
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The project's shared data dir (`shared/data`, sibling of the repo root)."""
    if not SHARED_DATA.is_dir():
        pytest.fail(f"shared data dir not found: {SHARED_DATA} (expected beside the repo root)")
    return SHARED_DATA
