"""The vLLM part of bench/gpu_check.py: the built-in engine against vLLM on the same weights.

With vLLM installed (GPU only here; on CPU, bench/engine_vs_vllm.py), in one process:
  causal sampling, same batch, prompt and length: the built-in engine and vLLM (through the
      project's VLLMBackend) alternate, medians; `engine_over_vllm` = vLLM's seconds / ours;
  one block of P = 2, 4, 8 paths: ours structured against vLLM in the threads layout (each path
      its own request continuing the prefix, prefix caching on, the text after the block read
      over the concatenated paths, prefilled again); the tag bias in the weights opens the block
      at once and runs every path to its cap on both sides;
  the threads layout's log-probs from vLLM against the trainer's (bfloat16).
vLLM's prefix cache is reset before every timed vLLM run (ours keeps nothing between requests).
"""

from __future__ import annotations

import gc
import importlib.util
import tempfile

import torch
from gpu_check_measure import distribution, medians, trainer_logprobs

from parallel_r1.engine.driver import Engine
from parallel_r1.engine.torch_engine import TorchEngine
from parallel_r1.engine.types import ParallelParams, SamplingParams


def vllm_part(c) -> dict:
    """vLLM in process on the same weights as `c.model`: speed against the built-in engine and
    its threads log-probs against the trainer; {"skipped": why} without vLLM or a GPU."""
    if importlib.util.find_spec("vllm") is None:
        return {"skipped": "vllm is not installed"}
    if str(c.device).startswith("cpu"):  # the smoke run's heads (16) are below vLLM-CPU's
        return {"skipped": "GPU only here; vLLM's CPU build: bench/engine_vs_vllm.py"}
    with tempfile.TemporaryDirectory() as tmp:
        c.bias(parallel_open=1, path_close=0)  # causal: tags are plain tokens, same cost
        speed = _with_vllm(c, tmp, _speed)
        c.natural()
        threads = _with_vllm(c, tmp, _vllm_threads)
    return {**speed, "threads_mismatch": threads}


def _with_vllm(c, tmp: str, fn):
    from vllm import LLM

    from parallel_r1.engine.vllm_backend import VLLMBackend

    c.model.save_pretrained(tmp)
    llm = LLM(model=tmp, dtype="bfloat16", skip_tokenizer_init=True, seed=0,
              logprobs_mode="processed_logprobs", gpu_memory_utilization=0.25, max_model_len=4096)
    try:
        return fn(c, llm, Engine(VLLMBackend(llm), c.tok, stop_ids=[]))
    finally:
        del llm
        gc.collect()
        torch.cuda.empty_cache()


def _speed(c, llm, theirs: Engine) -> dict:
    s, dev = c.size, c.device
    ours = TorchEngine(c.model, c.tok, stop_ids=[])

    def side(engine, prompts, params):
        def run():
            llm.reset_prefix_cache()  # for both sides, so the order costs the same
            return engine.generate(prompts, params)
        return run

    causal = SamplingParams(max_tokens=s["new"], seed=0, parallel=ParallelParams(mode="causal"))
    prompts = [c.prompt(s["prompt"])] * s["batch"]
    t, _ = medians({"ours": side(ours, prompts, causal),
                    "vllm": side(theirs, prompts, causal)}, dev, s["repeats"])
    tokens = s["batch"] * s["new"]
    out = {"tok_s": tokens / t["vllm"], "engine_tok_s": tokens / t["ours"],
           "engine_over_vllm": t["vllm"] / t["ours"], "blocks": []}
    for paths in (2, 4, 8):
        length = s["path"]
        total = 1 + paths * length + 3 + len(c.tok.encode("\n", add_special_tokens=False))
        par = ParallelParams(num_paths=paths, max_paths=max(paths, 2), max_path_tokens=length,
                             max_blocks=1)
        mine = SamplingParams(max_tokens=total, seed=0, parallel=par)
        threads = SamplingParams(max_tokens=total, seed=0, parallel=ParallelParams(
            **{**par.__dict__, "mode": "threads"}))
        prompt = [c.prompt(16, salt=paths)]
        t, outs = medians({"ours": side(ours, prompt, mine),
                           "vllm": side(theirs, prompt, threads)}, dev, s["repeats"])
        (r_ours,), (r_vllm,) = outs["ours"], outs["vllm"]
        out["blocks"].append({
            "paths": paths, "path_tokens": length, "ours_s": t["ours"], "vllm_s": t["vllm"],
            "engine_over_vllm": t["vllm"] / t["ours"], "ours_tokens": r_ours.num_tokens,
            "vllm_tokens": r_vllm.num_tokens, "blocks": [r_ours.num_blocks, r_vllm.num_blocks]})
    return out


def _vllm_threads(c, llm, engine: Engine) -> dict:
    s = c.size
    params = SamplingParams(max_tokens=s["max_tokens"], n=s["samples"] // 2, seed=1,
                            parallel=ParallelParams(mode="threads", num_paths=2,
                                                    max_path_tokens=64))
    rollouts = engine.generate([c.prompt(24, salt=k) for k in range(2)], params)
    return distribution(rollouts, trainer_logprobs(c, rollouts, "threads"))
