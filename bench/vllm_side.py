"""vLLM's side of bench/engine_vs_vllm.py: a child process in the vLLM venv that times requests.

    VLLM_CPU_OMP_THREADS_BIND=nobind OMP_NUM_THREADS=1 .venv-vllm/bin/python bench/vllm_side.py \
        MODEL_DIR [PROFILE_DIR]

Opens the model as the project does (`engine.vllm_backend.open_llm`: the checkpoint's dtype,
processed log-probs, eager on CPU) and answers one JSON line per command read from stdin:
  {"op": "causal", "prompt_ids": [...], "batch": B, "new": N, "seed": S}
      B requests of the same prompt, N tokens each (no early stop), log-probs of the sampled
      tokens (logprobs=0, as the project's RL asks); -> {"seconds", "tokens"}
  {"op": "block", "prompt_ids": [...], "tags": {...}, "paths": P, "path_tokens": L,
   "join_ids": [...], "after": K, "seed": S}
      one block in the threads layout, as the project's vLLM backend runs it: the prompt's
      prefill and its first token (<Parallel> in the block), P requests continuing the prefix
      with <Path> (prefix caching shares its KV) writing L - 2 tokens each, then one request
      over the plain concatenation of the paths and `join_ids` (</Parallel>, newline, <Summary>),
      prefilled again, writing K tokens; -> {"seconds", "seconds_parts", "tokens"}
  {"op": "profile", ...as causal}: causal under vLLM's torch profiler (needs PROFILE_DIR);
      -> {"seconds", "table"} (the worker's operator table, top 50 by self CPU time)
  {"op": "quit"}
Every command first resets vLLM's prefix cache, so no timed run reuses a prompt an earlier run
cached (the built-in engine keeps nothing between requests either). Times are taken around
`llm.generate` only. Every answer carries "peak_rss_mb": the sum of the peak resident sizes of
this process and its descendants (vLLM's engine core runs in its own process). vLLM's own output
goes to stderr, answers to the original stdout.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


def tree_peak_rss_mb(pid: int) -> float:
    """Sum of VmHWM (peak RSS) over `pid` and its descendants, in MiB (shared pages counted in
    every process that maps them)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        todo += children.get(p, [])
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


class Side:
    def __init__(self, model: str, profile_dir: str | None = None):
        from parallel_r1.engine.vllm_backend import open_llm

        options = {} if profile_dir is None else {"profiler_config": {
            "profiler": "torch", "torch_profiler_dir": profile_dir,
            "torch_profiler_with_stack": False}}
        self.llm = open_llm(model, seed=0, **options)
        self.profile_dir = profile_dir

    def _generate(self, prompts: list[list[int]], new: int, seed: int) -> tuple[float, list]:
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        params = [SamplingParams(max_tokens=new, min_tokens=new, ignore_eos=True,
                                 temperature=1.0, top_p=1.0, top_k=-1, seed=seed + i,
                                 logprobs=0, detokenize=False) for i in range(len(prompts))]
        inputs = [TokensPrompt(prompt_token_ids=list(p)) for p in prompts]
        t0 = time.perf_counter()
        outs = self.llm.generate(inputs, params, use_tqdm=False)
        seconds = time.perf_counter() - t0
        ids = [list(o.outputs[0].token_ids) for o in outs]
        if any(len(x) != new for x in ids):
            raise RuntimeError(f"vLLM wrote {[len(x) for x in ids]} tokens, asked for {new}")
        return seconds, ids

    def causal(self, prompt_ids: list[int], batch: int, new: int, seed: int) -> dict:
        seconds, _ = self._generate([prompt_ids] * batch, new, seed)
        return {"seconds": seconds, "tokens": batch * new}

    def profile(self, prompt_ids: list[int], batch: int, new: int, seed: int) -> dict:
        """`causal` under vLLM's torch profiler (in its worker process); its operator table
        (top 50 by self CPU time, torch's `key_averages().table`) as text."""
        self.llm.start_profile()
        seconds, _ = self._generate([prompt_ids] * batch, new, seed)
        self.llm.stop_profile()
        tables = sorted(Path(self.profile_dir).glob("*profiler_out.txt"))
        return {"seconds": seconds, "table": tables[-1].read_text() if tables else ""}

    def block(self, prompt_ids: list[int], tags: dict, paths: int, path_tokens: int,
              join_ids: list[int], after: int, seed: int) -> dict:
        first, _ = self._generate([prompt_ids], 1, seed)
        prefix = prompt_ids + [tags["parallel_open"], tags["path_open"]]
        fork, texts = self._generate([prefix] * paths, path_tokens - 2, seed + 1)
        joined = prompt_ids + [tags["parallel_open"]]
        for text in texts:
            joined += [tags["path_open"], *text, tags["path_close"]]
        join, _ = self._generate([joined + join_ids], after, seed + paths + 1)
        return {"seconds": first + fork + join, "seconds_parts": [first, fork, join],
                "tokens": 1 + paths * path_tokens + len(join_ids) + after}


def main() -> int:
    answers = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # anything vLLM prints goes to stderr
    side = Side(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None)
    import vllm

    answers.write(json.dumps({"ready": True, "vllm": vllm.__version__,
                              "peak_rss_mb": tree_peak_rss_mb(os.getpid())}) + "\n")
    for line in sys.stdin:
        cmd = json.loads(line)
        op = cmd.pop("op")
        if op == "quit":
            break
        side.llm.reset_prefix_cache()
        out = getattr(side, op)(**cmd)
        out["peak_rss_mb"] = tree_peak_rss_mb(os.getpid())
        answers.write(json.dumps(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
