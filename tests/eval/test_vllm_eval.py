"""vLLM for real (the CPU build): `parallel-r1 eval --backend vllm` in the causal and threads
layouts, and vLLM's sampling log-probs against the trainer's forward on vLLM's own samples, side
by side with the built-in engine's. Marked `vllm` (outside the default run; skipped with the
reason where vllm is not installed)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from parallel_r1.engine.driver import Engine
from parallel_r1.engine.torch_engine import TorchEngine
from parallel_r1.engine.types import ParallelParams, SamplingParams
from parallel_r1.eval.agreement import agreement
from parallel_r1.format.tags import TagIds
from parallel_r1.models import build_tiny, load

pytestmark = pytest.mark.vllm

CLI = Path(sys.executable).parent / "parallel-r1"  # the installed entry point (a __main__ guard)
EVAL = ["--benchmarks", "synthetic-l1", "--limit", "4", "--samples", "2", "--max-tokens", "60",
        "--template", "none", "--kv-cache-gb", "1", "--batch-size", "4"]


def run_eval(model_dir, out, backend, mode):
    cmd = [str(CLI), "eval", str(model_dir), "--backend", backend,
           "--mode", mode, "--out", str(out), *EVAL]
    if backend == "torch":
        cmd[cmd.index("--kv-cache-gb") + 1] = "0.05"
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    rows = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    return summary, rows


@pytest.mark.parametrize("mode", ["causal", "threads"])
def test_eval_backend_vllm_runs_both_layouts(vllm_tiny_dir, tmp_path, mode):
    summary, rows = run_eval(vllm_tiny_dir, tmp_path / "vllm", "vllm", mode)
    assert summary["engine"] == "VLLMBackend"  # read from the run's own summary
    assert len(rows) == 8 and all(r["num_tokens"] > 0 for r in rows)
    accuracy = summary["benchmarks"]["synthetic-l1"]["grades"]["math-verify"]["mean"]
    print(json.dumps({"mode": mode, "vllm_accuracy": accuracy}))
    blocks = sum(r["structure"]["num_blocks"] for r in rows)
    if mode == "threads":
        assert blocks >= 1  # the block program ran over vLLM: paths as their own requests
    baseline, _ = run_eval(vllm_tiny_dir, tmp_path / "torch", "torch", mode)
    assert baseline["engine"] == "TorchBackend"
    print(json.dumps({"mode": mode, "torch_accuracy":
                      baseline["benchmarks"]["synthetic-l1"]["grades"]["math-verify"]["mean"]}))


@pytest.fixture(scope="module")
def vllm_llm(vllm_tiny_dir):
    import os

    os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"  # the engine core in this process
    from parallel_r1.engine.vllm_backend import open_llm

    return open_llm(str(vllm_tiny_dir), seed=0, kv_cache_gb=1)


@pytest.mark.parametrize("mode", ["causal", "threads"])
def test_vllm_logprobs_match_the_trainer_like_the_builtin_engine(vllm_tiny_dir, vllm_llm, mode):
    from parallel_r1.engine.vllm_backend import VLLMBackend

    model, tok = load(str(vllm_tiny_dir))
    model = model.float().eval()
    tags = TagIds.from_tokenizer(tok)
    prompts = [tok.encode(t) for t in ("What is 2+3?", "Compute 17 + 25", "x y z", "6 * 7 =")]
    params = SamplingParams(max_tokens=80, n=3, seed=5,
                            parallel=ParallelParams(mode=mode, max_path_tokens=16))
    vllm_rollouts = Engine(VLLMBackend(vllm_llm), tok).generate(prompts, params)
    torch_rollouts = TorchEngine(model, tok).generate(prompts, params)
    vllm_fig = agreement(model, tags, vllm_rollouts, mode)
    torch_fig = agreement(model, tags, torch_rollouts, mode)
    print(json.dumps({"mode": mode, "vllm": vllm_fig, "torch": torch_fig}))
    assert vllm_fig["tokens"] > 100 and torch_fig["tokens"] > 100
    if mode == "threads":
        assert vllm_fig["blocks"] >= 2
    # float32 on both sides: vLLM's oneDNN kernels round differently from torch's, nothing more
    assert vllm_fig["max"] < 1e-3, vllm_fig
    assert torch_fig["max"] < 1e-3, torch_fig
    # the check can fail: vLLM's tokens scored by another model (other weights) are far off
    other, _ = build_tiny(1, num_layers=4, hidden=128)
    assert agreement(other.float().eval(), tags, vllm_rollouts, mode)["max"] > 0.1
