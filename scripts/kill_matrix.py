"""kill -9 a `parallel-r1 run` at seven kinds of moment, rerun it, and check every log.

A tiny three-stage recipe (SFT -> RL -> eval) is run once uninterrupted (the reference), then once
per scenario: killed with SIGKILL at the scenario's moment, and rerun with the same command to the
end. After each, every log is read raw (no dedupe) and checked: SFT and RL `metrics.jsonl` hold
each step once, `rollouts.jsonl` each (step, index) once with the same rows per step, the eval
`samples.jsonl` each sample key once; no temporary is left; every stage is done; the eval table
and the final weights equal the reference's. Results go to JSON and a markdown table.

    .venv/bin/python scripts/kill_matrix.py                      # all scenarios
    .venv/bin/python scripts/kill_matrix.py --only during-eval --keep /tmp/km
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

RESULTS = Path(__file__).resolve().parents[1] / "bench" / "results"
SFT_STEPS, RL_STEPS, EVAL_LIMIT, EVAL_K = 6, 6, 4, 4
# RL: 6 prompts, 2 a step (8 completions, G = 4): epoch 0 is steps 1-3, epoch 1 steps 4-6, so
# checkpoint-4 lies inside epoch 1 and a rerun from it must draw epoch 1's order, not epoch 0's.
RECIPE = f"""name: kill-matrix
output_dir: {{out}}
seed: 0
model: {{{{name: tiny}}}}
stages:
  - {{{{kind: sft, data: "synthetic:1:16:0", template: none, learning_rate: 1.0e-3,
      per_device_batch_size: 4, max_steps: {SFT_STEPS}, save_steps: 2}}}}
  - {{{{kind: rl, data: "synthetic:1:6:3", template: none, learning_rate: 1.0e-4,
      reward: accuracy_add_parallel_reward, grader: paper, per_device_batch_size: 8,
      num_generations: 4, max_steps: {RL_STEPS}, save_steps: 2, max_tokens: 32,
      max_path_tokens: 12, dump_every: 1}}}}
  - {{{{kind: eval, template: none, eval: {{{{benchmarks: synthetic-l1, limit: {EVAL_LIMIT},
      samples: {EVAL_K}, max_tokens: 32, max_path_tokens: 12}}}}}}}}
"""


def _lines(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(x) for x in path.read_bytes().split(b"\n")[:-1] if x.strip()]


def _hidden(run: Path) -> list[str]:
    return sorted(str(p.relative_to(run)) for p in run.rglob(".*")
                  if ".parallel-r1-tmp-" in p.name or ".parallel-r1-old-" in p.name)


# Each trigger sees the run dir and says when to kill.
def _sft_logged(run: Path) -> bool:
    return any(r.get("step", 0) >= 1 for r in _lines(run / "0-sft" / "metrics.jsonl"))


def _between_saves(run: Path) -> bool:  # RL step 3 logged: checkpoint-2 done, checkpoint-4 not
    return any(r.get("step") == 3 for r in _lines(run / "1-rl" / "metrics.jsonl"))


def _during_rl(run: Path) -> bool:  # rollouts of step 5 dumped, its update not done
    return any(r.get("step") == 5 for r in _lines(run / "1-rl" / "rollouts.jsonl"))


def _in_epoch_1(run: Path) -> bool:  # RL step 5 logged: resumes from checkpoint-4, in epoch 1
    return any(r.get("step") == 5 for r in _lines(run / "1-rl" / "metrics.jsonl"))


def _during_eval(run: Path) -> bool:
    return len(_lines(run / "2-eval" / "samples.jsonl")) >= EVAL_LIMIT * EVAL_K // 2


def _model_save(run: Path) -> bool:
    return any(p.is_dir() for p in run.glob("*/.model.parallel-r1-tmp-*"))


def _checkpoint_write(run: Path) -> bool:
    return any(not (p / "trainer_state.json").exists() and any(p.iterdir())
               for p in run.glob("1-rl/checkpoint-*"))


SCENARIOS: dict[str, tuple[str, Callable[[Path], bool]]] = {
    "during-sft": ("SFT step 1 logged, before its first checkpoint", _sft_logged),
    "between-saves": ("RL step 3 logged: after checkpoint-2, before checkpoint-4", _between_saves),
    "during-rl": ("RL step 5 rollouts dumped, its update running", _during_rl),
    "rl-epoch-1": ("RL step 5 logged: inside epoch 1, after checkpoint-4", _in_epoch_1),
    "during-eval": ("half the eval samples written", _during_eval),
    "during-model-save": ("a stage's final model being written (.model.parallel-r1-tmp-*)",
                          _model_save),
    "during-checkpoint-write": ("an RL checkpoint dir without trainer_state.json yet",
                                _checkpoint_write),
}


def run_cmd(recipe: Path) -> list[str]:
    return [sys.executable, "-m", "parallel_r1", "run", str(recipe)]


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "TRL_EXPERIMENTAL_SILENCE": "1",
            "PYTHONWARNINGS": "ignore"}


def kill_when(recipe: Path, run: Path, trigger: Callable[[Path], bool], timeout: float) -> bool:
    """Start the run and SIGKILL it once `trigger(run)` holds; False when it ended first."""
    proc = subprocess.Popen(run_cmd(recipe), env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            if run.exists() and trigger(run):
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
                return True
            time.sleep(0.002)
        return False
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def check(run: Path, reference: dict | None) -> dict:
    """Duplicate and coverage counts of every log, leftovers, and equality with the reference."""
    from parallel_r1.eval.evaluate import sample_key
    from parallel_r1.files import step_key

    out: dict = {}
    for name, path, want in (("sft_metrics", run / "0-sft" / "metrics.jsonl", SFT_STEPS),
                             ("rl_metrics", run / "1-rl" / "metrics.jsonl", RL_STEPS)):
        rows = [r for r in _lines(path) if "train_runtime" not in r]
        keys = Counter(step_key(r) for r in _lines(path))
        out[f"{name}_dups"] = sum(c - 1 for c in keys.values())
        out[f"{name}_steps_ok"] = sorted(r["step"] for r in rows) == list(range(1, want + 1))
    dumps = _lines(run / "1-rl" / "rollouts.jsonl")
    keys = Counter(step_key(r) for r in dumps)
    per_step = Counter(r["step"] for r in dumps)
    out["rollouts_dups"] = sum(c - 1 for c in keys.values())
    prompts = sorted((step_key(r), r["prompt"]) for r in dumps)  # the prompt of each (step, row)
    out["prompts"] = hashlib.sha256(json.dumps(prompts).encode()).hexdigest()
    out["rollouts_steps_ok"] = sorted(per_step) == list(range(1, RL_STEPS + 1)) and len(
        set(per_step.values())) == 1
    samples = _lines(run / "2-eval" / "samples.jsonl")
    keys = Counter(sample_key(r) for r in samples)
    out["samples_dups"] = sum(c - 1 for c in keys.values())
    out["samples_ok"] = len(keys) == EVAL_LIMIT * EVAL_K
    out["leftovers"] = _hidden(run)
    state = json.loads((run / "state.json").read_text())["stages"]
    out["all_done"] = all(s["status"] == "done" for s in state.values()) and len(state) == 3
    out["table"] = (run / "2-eval" / "table.md").read_text() if out["all_done"] else ""
    weights = run / "1-rl" / "model" / "model.safetensors"
    out["weights"] = hashlib.sha256(weights.read_bytes()).hexdigest() if weights.exists() else ""
    if reference is not None:
        out["same_table"] = out["table"] == reference["table"]
        out["same_weights"] = out["weights"] == reference["weights"]
        out["same_prompts"] = out["prompts"] == reference["prompts"]
    return out


def scenario(name: str, work: Path, reference: dict | None, timeout: float) -> dict:
    """One scenario: kill at its moment, rerun to the end, check."""
    what, trigger = SCENARIOS[name]
    run, recipe = work / name, work / f"{name}.yaml"
    recipe.write_text(RECIPE.format(out=run))
    started = time.monotonic()
    killed = kill_when(recipe, run, trigger, timeout)
    before = _hidden(run) if run.exists() else []
    rerun = subprocess.run(run_cmd(recipe), env=_env(), capture_output=True, text=True,
                           timeout=timeout)
    said = [line for line in rerun.stderr.splitlines() if line.startswith("[parallel-r1]")]
    result = {"scenario": name, "moment": what, "killed": killed, "rerun_rc": rerun.returncode,
              "left_by_kill": before, "rerun_said": said[:4],
              "seconds": round(time.monotonic() - started, 1)}
    if rerun.returncode == 0:
        result |= check(run, reference)
    else:
        result["error"] = rerun.stderr[-2000:]
    return result


def passed(r: dict) -> bool:
    """Whether a scenario's rerun is whole: no duplicate, full coverage, nothing left over, and
    each RL step trained the reference's prompts in the reference's order."""
    return bool(r.get("killed") and r.get("rerun_rc") == 0 and r.get("all_done")
                and not any(r.get(k) for k in ("sft_metrics_dups", "rl_metrics_dups",
                                               "rollouts_dups", "samples_dups", "leftovers"))
                and all(r.get(k) for k in ("sft_metrics_steps_ok", "rl_metrics_steps_ok",
                                           "rollouts_steps_ok", "samples_ok", "same_prompts")))


def table(rows: list[dict]) -> str:
    head = ("| scenario | killed | dup rows (sft metrics / rl metrics / rollouts / samples) | "
            "steps covered | temporaries left | same prompts | same table | same weights | rerun said |")
    lines = [head, "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        dups = " / ".join(str(r.get(k, "-")) for k in ("sft_metrics_dups", "rl_metrics_dups",
                                                        "rollouts_dups", "samples_dups"))
        cover = all(r.get(k) for k in ("sft_metrics_steps_ok", "rl_metrics_steps_ok",
                                       "rollouts_steps_ok", "samples_ok"))
        said = "; ".join(s.removeprefix("[parallel-r1] ") for s in r.get("rerun_said", [])
                         if "stage 1/" not in s and "done in" not in s)[:160]
        lines.append(f"| {r['scenario']} | {r['killed']} | {dups} | {cover} | "
                     f"{len(r.get('leftovers', [])) if 'leftovers' in r else '-'} | "
                     f"{r.get('same_prompts', '-')} | "
                     f"{r.get('same_table', '-')} | {r.get('same_weights', '-')} | "
                     f"{said.replace('|', '/') or '-'} |")
    return "\n".join(lines)


def run_matrix(work: Path, names: list[str], timeout: float = 600.0) -> tuple[dict, list[dict]]:
    """The reference run and every scenario in `names`; (reference checks, scenario results)."""
    reference_recipe = work / "reference.yaml"
    reference_recipe.write_text(RECIPE.format(out=work / "reference"))
    subprocess.run(run_cmd(reference_recipe), env=_env(), check=True, capture_output=True,
                   timeout=timeout)
    reference = check(work / "reference", None)
    return reference, [scenario(name, work, reference, timeout) for name in names]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", action="append", choices=sorted(SCENARIOS), default=None)
    ap.add_argument("--keep", type=Path, default=None, help="work dir to keep (default: temp)")
    ap.add_argument("--out", type=Path, default=RESULTS, help="where JSON + table go")
    args = ap.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="kill-matrix-"))
    work.mkdir(parents=True, exist_ok=True)
    reference, rows = run_matrix(work, args.only or list(SCENARIOS))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "kill_matrix.json").write_text(json.dumps(
        {"reference": {k: v for k, v in reference.items() if k != "table"},
         "scenarios": rows}, indent=2) + "\n")
    text = table(rows)
    (args.out / "kill_matrix.md").write_text(
        "# kill -9 matrix: SIGKILL at seven moments of a tiny SFT -> RL -> eval run, then rerun\n\n"
        "Every log read raw after the rerun; `same table` / `same weights` compare with an "
        "uninterrupted run of the same recipe.\n\n" + text + "\n")
    print(text)
    return 0 if all(passed(r) for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
