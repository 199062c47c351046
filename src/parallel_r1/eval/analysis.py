"""Strategy evolution of a training run: curves, block positions, block roles, path similarity.

Reads a run dir (layout in `RUN_LAYOUT`, the one place to adapt to the trainer's file names):
per-step metrics JSONL and rollout dumps (prompt, tagged response, reward, step). Figures the
trainer did not log are recomputed from the dumps; the trainer's phase times (`time/<phase>_s`)
are kept as they are, for the stacked time plot. Pure Python + numpy (matplotlib in `report`).

Block role (`classify_block`), precisely: take the *concluding number* of each path (the last
number written in it, commas dropped, `18.50` -> `18.5`) and the set of numbers written in the
response before the block's `<Parallel>` (tags stripped; the prompt is not included, so the
problem's givens do not count). The block is
- "verification" when at least one path concludes with a number and every concluding number is
  already in that set (the paths re-derive a result the text has stated);
- "exploration" when some path concludes with a number not yet stated (they compute toward it);
- "undetermined" when no path contains a number.
"""

from __future__ import annotations

import itertools
import re
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from parallel_r1.format.parse import TAG_RE, parse
from parallel_r1.format.stats import is_valid_block

# Where a run dir keeps its logs; the first name that exists wins.
RUN_LAYOUT = {
    "metrics": ("metrics.jsonl", "logs/metrics.jsonl", "train/metrics.jsonl"),
    "rollouts": ("rollouts", "rollouts.jsonl", "logs/rollouts", "rollout_data"),
}
# Our field name -> names the trainer (or verl's dumps) may use for it.
METRIC_ALIASES = {
    "step": ("step", "global_step", "train/global_step"),
    "reward": ("rollout/reward", "reward", "reward/mean", "critic/score/mean"),
    "accuracy": ("rollout/accuracy", "accuracy", "acc", "reward/accuracy"),
    "parallel_ratio": ("rollout/parallel_ratio", "parallel_ratio"),
    "response_length": ("rollout/response_length", "response_length", "completion_length"),
    "blocks_per_response": ("rollout/blocks_per_response", "blocks_per_response"),
}
ROLLOUT_ALIASES = {
    "response": ("response", "output", "completion", "text"),
    "reward": ("reward", "score"),
    "accuracy": ("correct", "acc", "accuracy"),
    "num_tokens": ("num_tokens", "response_length", "completion_length"),
}
_PAD = ("<|endoftext|>", "<|im_end|>", "<pad>")
# a minus is a sign only where no digit, letter or closing bracket sits before it: "40-38" is 40, 38
_NUMBER = re.compile(r"(?:(?<![\w)\]])-)?\d[\d,]*(?:\.\d+)?")

ROLES = ("exploration", "verification", "undetermined")


def _pick(row: dict, names: Iterable[str]) -> Any:
    for name in names:
        if name in row and row[name] is not None:
            return row[name]
    return None


def numbers(text: str) -> list[str]:
    """The numbers written in `text`, normalised ("1,000" -> "1000", "18.50" -> "18.5")."""
    out = []
    for raw in _NUMBER.findall(text):
        value = raw.replace(",", "")
        if "." in value:
            value = value.rstrip("0").rstrip(".")
        out.append(value if value not in ("-0", "") else "0")
    return out


def untag(text: str) -> str:
    """`text` with each of the six tags replaced by a line break, so numbers on either side of
    one (`7</Path><Path>2`) stay apart (removing them, as `strip_tags` does, would read 72)."""
    return TAG_RE.sub("\n", text)


def classify_block(before: str, paths: list[str]) -> str:
    """The role of one block (see the module docstring for the exact rule).

    Args:
        before: the response text before the block's `<Parallel>` (tags may be present).
        paths: the inner texts of its paths.

    Returns:
        "exploration", "verification" or "undetermined".
    """
    stated = set(numbers(untag(before)))
    concluding = [ns[-1] for ns in map(numbers, paths) if ns]
    if not concluding:
        return "undetermined"
    return "verification" if all(n in stated for n in concluding) else "exploration"


def block_roles(response: str) -> list[str]:
    """The role of every block of a response, in order."""
    return [classify_block(response[: b.start], [p.text for p in b.paths])
            for b in parse(response).blocks]


def jaccard(a: str, b: str) -> float:
    """Token (whitespace-word) Jaccard similarity of two texts; 1.0 when both are empty."""
    sa, sb = set(a.split()), set(b.split())
    return len(sa & sb) / len(sa | sb) if sa | sb else 1.0


def path_similarity(response: str) -> list[float]:
    """Mean pairwise token Jaccard of sibling paths, one value per block with >= 2 paths."""
    out = []
    for block in parse(response).blocks:
        pairs = list(itertools.combinations([p.text for p in block.paths], 2))
        if pairs:
            out.append(float(np.mean([jaccard(p, q) for p, q in pairs])))
    return out


def clean_response(text: str) -> str:
    """Drop the padding tokens verl's dumps keep at the end of a decoded response."""
    for pad in _PAD:
        text = text.replace(pad, "")
    return text


def response_figures(response: str) -> dict[str, Any]:
    """Structure figures of one response: blocks, validity, positions, roles, path similarity."""
    trace = parse(response)
    length = max(len(response), 1)
    return {
        "num_blocks": len(trace.blocks),
        "has_valid_block": any(is_valid_block(b) for b in trace.blocks),
        "positions": [b.start / length for b in trace.blocks],
        "roles": block_roles(response),
        "similarity": path_similarity(response),
        "num_chars": len(response),
    }


def step_figures(rows: list[dict]) -> dict[str, Any]:
    """Aggregate the rollouts of one step (rows with a response and optionally reward/accuracy)."""
    figs = [response_figures(clean_response(str(_pick(r, ROLLOUT_ALIASES["response"]) or "")))
            for r in rows]
    roles = [role for f in figs for role in f["roles"]]
    positions = [p for f in figs for p in f["positions"]]
    sims = [s for f in figs for s in f["similarity"]]
    tokens = [_pick(r, ROLLOUT_ALIASES["num_tokens"]) for r in rows]
    rewards = [_pick(r, ROLLOUT_ALIASES["reward"]) for r in rows]
    accs = [_pick(r, ROLLOUT_ALIASES["accuracy"]) for r in rows]

    def mean(values: list) -> float:
        values = [float(v) for v in values if v is not None]
        return float(np.mean(values)) if values else float("nan")

    quart = np.quantile(positions, [0.25, 0.5, 0.75]).tolist() if positions else [float("nan")] * 3
    return {
        "num_rollouts": len(rows),
        "reward": mean(rewards),
        "accuracy": mean(accs),
        "parallel_ratio": mean([f["has_valid_block"] for f in figs]),
        "response_length": mean(tokens) if any(t is not None for t in tokens)
        else mean([f["num_chars"] for f in figs]),
        "length_unit": "tokens" if any(t is not None for t in tokens) else "chars",
        "blocks_per_response": mean([f["num_blocks"] for f in figs]),
        "num_blocks": len(positions),
        "block_position": mean(positions),
        "block_position_q": quart,
        **{f"share_{role}": (roles.count(role) / len(roles) if roles else float("nan"))
           for role in ROLES},
        "path_similarity": mean(sims),
    }


# --------------------------------------------------------------------------- reading a run dir
def _read_jsonl(path: Path) -> list[dict]:
    import json

    rows = []
    for line in path.read_text(encoding="utf-8").split("\n"):
        line = line.strip()
        if line:
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a torn last line of a live run
    return rows


def _first(run_dir: Path, names: tuple[str, ...]) -> Path | None:
    return next((run_dir / n for n in names if (run_dir / n).exists()), None)


def read_metrics(run_dir: Path) -> dict[int, dict[str, float]]:
    """Per-step logged metrics by our names ({} when the run logged none); a row logged twice
    (`files.step_key`) counts once, the last written."""
    from parallel_r1.files import dedupe, step_key

    path = _first(run_dir, RUN_LAYOUT["metrics"])
    out: dict[int, dict[str, float]] = {}
    for row in dedupe(_read_jsonl(path), step_key) if path else []:
        step = _pick(row, METRIC_ALIASES["step"])
        if step is None:
            continue
        vals = {k: _pick(row, names) for k, names in METRIC_ALIASES.items() if k != "step"}
        if "train_runtime" not in row:  # the final summary record repeats the last step
            vals |= {k: v for k, v in row.items() if k.startswith("time/") and k.endswith("_s")}
        out.setdefault(int(step), {}).update({k: float(v) for k, v in vals.items()
                                              if isinstance(v, (int, float))})
    return out


def read_rollouts(run_dir: Path) -> dict[int, list[dict]]:
    """Rollout dumps by step: every *.jsonl under the rollouts dir; the step is the row's `step`,
    else the last number in the file name (verl writes `{step}.jsonl`). Rows that carry their
    `index` within the step are kept once per (step, index), the last written."""
    from parallel_r1.files import dedupe, step_key

    folder = _first(run_dir, RUN_LAYOUT["rollouts"])
    out: dict[int, list[dict]] = defaultdict(list)
    if folder is None:
        return {}
    files = [folder] if folder.is_file() else sorted(folder.rglob("*.jsonl"))
    for path in files:
        digits = re.findall(r"\d+", path.stem)
        rows = _read_jsonl(path)
        for row in dedupe(rows, lambda r: step_key(r) if "index" in r else id(r)):
            step = row.get("step", int(digits[-1]) if digits else None)
            if step is not None:
                out[int(step)].append(row)
    return dict(sorted(out.items()))


def analyze_steps(metrics: dict[int, dict], rollouts: dict[int, list[dict]]) -> dict[int, dict]:
    """Per step: the figures of its rollouts, with logged metrics taking precedence."""
    steps = sorted(set(metrics) | set(rollouts))
    out = {}
    for step in steps:
        figs = step_figures(rollouts[step]) if step in rollouts else {}
        figs.update(metrics.get(step, {}))
        out[step] = figs
    return out


def early_late(per_step: dict[int, dict], key: str) -> tuple[float, float]:
    """Mean of `key` over the first and the last third of the steps that have it."""
    vals = [(s, f[key]) for s, f in per_step.items()
            if key in f and f[key] is not None and np.isfinite(f[key])]
    if not vals:
        return float("nan"), float("nan")
    third = max(len(vals) // 3, 1)
    return (float(np.mean([v for _, v in vals[:third]])),
            float(np.mean([v for _, v in vals[-third:]])))


def analyze_run(run_dir: str | Path, out: str | Path | None = None) -> dict[str, Any]:
    """Plots and a markdown report of a run (see `report.run_report`) in `out` (default
    RUN_DIR/analysis). RUN_DIR is a training stage's dir, or a run's output_dir (its last stage
    with metrics is analysed). Returns {"out", "report", "report_text", "plots", "per_step"}.

    Raises:
        DataError: the run dir has neither metrics nor rollout dumps.
    """
    from parallel_r1.errors import DataError
    from parallel_r1.eval.report import run_report

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise DataError("not found (give a training stage's dir or a run's output_dir)",
                        file=str(run_dir))
    metrics, rollouts = read_metrics(run_dir), read_rollouts(run_dir)
    if not metrics and not rollouts:  # a run's output_dir: its last stage that logged anything
        stages = sorted((p for p in run_dir.glob("[0-9]*-*") if p.is_dir()),
                        key=lambda p: int(p.name.split("-", 1)[0]), reverse=True)
        for stage in stages:
            metrics, rollouts = read_metrics(stage), read_rollouts(stage)
            if metrics or rollouts:
                run_dir = stage
                break
    if not metrics and not rollouts:
        raise DataError(f"no metrics ({' / '.join(RUN_LAYOUT['metrics'])}) and no rollout dumps "
                        f"({' / '.join(RUN_LAYOUT['rollouts'])}) found", file=str(run_dir))
    per_step = analyze_steps(metrics, rollouts)
    out = Path(out) if out else run_dir / "analysis"
    result = run_report(per_step, out, title=run_dir.name,
                        early_late={k: early_late(per_step, k) for k in (
                            "block_position", "share_exploration", "share_verification",
                            "path_similarity", "parallel_ratio", "accuracy")})
    return {"out": out, "per_step": per_step, **result}


# --------------------------------------------------------------------------- grids of runs
def last_chunks(rows: list[dict]) -> list[dict]:
    """Rollout dump rows with resumed steps counted once: per step, only its last attempt is kept
    (a run resumed from a checkpoint dumps the steps after it a second time).

    An attempt is a run of rows with one step; a new one starts when the step changes or when a
    prompt comes back after its group of rows ended (a step writes each prompt's group once, in
    one piece, so a returning prompt means the step was dumped again).
    """
    chunks: list[tuple[Any, list[dict]]] = []
    ended: set = set()
    for row in rows:
        prompt = row.get("prompt")
        same = chunks and chunks[-1][0] == row.get("step")
        if same and prompt is not None and prompt != chunks[-1][1][-1].get("prompt"):
            ended.add(chunks[-1][1][-1].get("prompt"))
        if same and not (prompt is not None and prompt in ended):
            chunks[-1][1].append(row)
        else:
            chunks.append((row.get("step"), [row]))
            ended = set()
    last = {step: chunk for step, chunk in chunks}
    return [row for step, chunk in chunks if last[step] is chunk for row in chunk]


def block_tallies(rows: list[dict]) -> dict[int, dict[str, tuple[float, int]]]:
    """Per step, the sums behind the strategy-evolution figures of one run's rollout dumps.

    Returns:
        {step: {"position": (sum of block relative positions, blocks), "exploration": (blocks
        classified exploration, blocks), "verification": (verification blocks, blocks),
        "parallel": (rollouts with a valid block, rollouts)}}; positions and roles as in
        `response_figures` / `classify_block`.
    """
    out: dict[int, dict[str, list[float]]] = {}
    for row in rows:
        step = row.get("step")
        if step is None:
            continue
        text = clean_response(str(_pick(row, ROLLOUT_ALIASES["response"]) or ""))
        figs = response_figures(text)
        tally = out.setdefault(int(step), {k: [0.0, 0] for k in (
            "position", "exploration", "verification", "parallel")})
        num = len(figs["positions"])
        tally["position"][0] += sum(figs["positions"])
        for role in ("exploration", "verification"):
            tally[role][0] += figs["roles"].count(role)
        for key in ("position", "exploration", "verification"):
            tally[key][1] += num
        tally["parallel"][0] += figs["has_valid_block"]
        tally["parallel"][1] += 1
    return {s: {k: (float(v[0]), int(v[1])) for k, v in t.items()} for s, t in sorted(out.items())}
