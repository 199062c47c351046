"""Reports: eval summaries from per-sample rows, markdown tables, PNG plots, atomic writes.

Every figure of an eval summary is `{"value", "low", "high"}`: the statistic and its 95% percentile
bootstrap interval over problems (AIME has 30 problems: a gap inside the interval is not a result).
Accuracy-like figures are fractions in JSON and percentages in tables. Pure Python + numpy, and
matplotlib (Agg) only inside `pyplot`, on first use.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from parallel_r1.eval import metrics as M
from parallel_r1.eval.plots import plot_phases, plot_run_curves

CI_RESAMPLES = 1000


# --------------------------------------------------------------------------- atomic files
def write_text(path: str | Path, text: str) -> Path:
    """Write `text` to `path` atomically (see `parallel_r1.files`)."""
    from parallel_r1.files import write_text_atomic

    return write_text_atomic(path, text)


def write_json(path: str | Path, obj: Any) -> Path:
    """`write_text` of `obj` as indented JSON (NaN written as null)."""
    return write_text(path, json.dumps(_finite(obj), indent=2, ensure_ascii=False) + "\n")


def _finite(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if np.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


# --------------------------------------------------------------------------- eval summary
def ci(per_problem: Sequence[float]) -> dict[str, float]:
    """{"value", "low", "high"}: the mean over problems and its 95% bootstrap interval."""
    if len(per_problem) == 0:
        return {"value": float("nan"), "low": float("nan"), "high": float("nan")}
    value, low, high = M.bootstrap_ci(list(per_problem), num_resamples=CI_RESAMPLES)
    return {"value": value, "low": low, "high": high}


def group_problems(rows: list[dict], run: str, benchmark: str,
                   k: int | None = None) -> list[list[dict]]:
    """Rows of one run and benchmark, grouped by problem (in problem order), sorted by sample;
    only samples with index < k when k is given."""
    by_problem: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        if r["run"] == run and r["benchmark"] == benchmark and (k is None or r["sample"] < k):
            by_problem[r["problem_id"]].append(r)
    groups = sorted(by_problem.values(), key=lambda g: g[0]["problem_index"])
    return [sorted(g, key=lambda r: r["sample"]) for g in groups]


def grader_figures(problems: list[list[dict]], grader: str, k: int) -> dict[str, Any]:
    """Mean@k, unbiased and bootstrap (paper's) Pass@k, maj@k of one grader, each with its CI."""
    grades = [[float(r["grades"][grader]["correct"]) for r in g] for g in problems]
    preds = [[r["grades"][grader]["pred"] for r in g] for g in problems]
    kk = min(k, min(len(g) for g in grades))
    wins = []
    for answers, marks in zip(preds, grades):  # votes group answers this grader finds equal
        winner = M.majority_vote(answers, grader=grader)
        wins.append(0.0 if winner is None else marks[winner])
    return {
        "k": kk,
        "mean": ci([float(np.mean(g)) for g in grades]),
        "pass_unbiased": ci([M.pass_at_k(len(g), round(sum(g)), kk) for g in grades]),
        "pass_bootstrap": ci([M.bootstrap_best_at_k(g, kk)[0] for g in grades]),
        "maj": ci(wins),
        "no_answer": float(np.mean([p is None for ps in preds for p in ps])),
        "timed_out": int(sum(bool(r["grades"][grader].get("timed_out")) for g in problems
                             for r in g)),
    }


def structure_figures(problems: list[list[dict]], graders: Sequence[str]) -> dict[str, Any]:
    """Parallel ratio, critical path, tokens, blocks per response and grader disagreement."""
    def per_problem(fn: Any) -> list[float]:
        return [float(np.mean([fn(r) for r in g])) for g in problems]

    flat = [r for g in problems for r in g]
    out = {
        "parallel_ratio": ci(per_problem(lambda r: r["structure"]["has_valid_block"])),
        "parallel_ratio_any_tag": float(np.mean([r["structure"]["num_blocks"] > 0 for r in flat])),
        "critical_path": ci(per_problem(lambda r: r["critical_path_length"])),
        "tokens": ci(per_problem(lambda r: r["num_tokens"])),
        "blocks_per_response": ci(per_problem(lambda r: r["structure"]["num_blocks"])),
        "valid_format": float(np.mean([r["structure"]["is_valid"] for r in flat])),
        "truncated": float(np.mean([r["finish_reason"] == "length" for r in flat])),
    }
    head = graders[0]
    out["disagreement"] = {
        g: float(np.mean([r["grades"][head]["correct"] != r["grades"][g]["correct"]
                          for r in flat])) for g in graders[1:]}
    return out


def sc_figures(model_problems: list[list[dict]], sc_rows: list[dict], benchmark: str,
               graders: Sequence[str]) -> dict[str, Any] | None:
    """Self-consistency at the model's token budget: per problem, the longest prefix of SC
    samples (at least one) whose tokens fit the model's total tokens on that problem, voted."""
    sc = {g[0]["problem_id"]: g for g in group_problems(sc_rows, "sc", benchmark)}
    if not sc:
        return None
    used, tokens, budgets, wins = [], [], [], defaultdict(list)
    for group in model_problems:
        budget = sum(r["num_tokens"] for r in group)
        cand = sc.get(group[0]["problem_id"], [])
        take, spent = 0, 0
        while take < len(cand) and (take == 0 or spent + cand[take]["num_tokens"] <= budget):
            spent += cand[take]["num_tokens"]
            take += 1
        chosen = cand[:take]
        used.append(take), tokens.append(spent), budgets.append(budget)
        for g in graders:
            answers = [r["grades"][g]["pred"] for r in chosen]
            winner = M.majority_vote(answers, grader=g) if chosen else None
            wins[g].append(0.0 if winner is None else float(chosen[winner]["grades"][g]["correct"]))
    return {"maj": {g: ci(w) for g, w in wins.items()}, "samples_used": float(np.mean(used)),
            "tokens": float(np.mean(tokens)), "budget": float(np.mean(budgets)),
            "mean": ci([float(np.mean([r["correct"] for r in g])) for g in sc.values()])}


def _avg_ci(per_bench: list[list[float]]) -> dict[str, float]:
    """The paper's Avg (mean of the benchmarks' Mean@k) with a CI that resamples every
    benchmark's problems independently."""
    if not per_bench:
        return ci([])
    rng = np.random.default_rng(0)
    value = float(np.mean([np.mean(v) for v in per_bench]))
    stats = [np.mean([np.mean(rng.choice(v, len(v))) for v in per_bench])
             for _ in range(CI_RESAMPLES)]
    low, high = np.quantile(stats, [0.025, 0.975])
    return {"value": value, "low": float(low), "high": float(high)}


def summarize_eval(rows: list[dict], benches: Sequence[Any], k: dict[str, int],
                   graders: Sequence[str], data: dict | None = None) -> dict[str, Any]:
    """The summary of an eval: per benchmark (in the given order) and the paper's Avg.

    Args:
        rows: per-sample rows of `evaluate` (runs "model" and optionally "sc").
        benches: `Benchmark`s; k: samples per problem by benchmark name.
        graders: grader names, the first is the headline one.
        data: loading metrics by benchmark (suspect-truncated counts are reported).
    """
    out: dict[str, Any] = {"graders": list(graders), "benchmarks": {}}
    for bench in benches:
        problems = group_problems(rows, "model", bench.name, k[bench.name])
        if not problems:
            continue
        entry = {"title": bench.title, "num_problems": len(problems),
                 "num_samples": sum(map(len, problems)),
                 "grades": {g: grader_figures(problems, g, k[bench.name]) for g in graders},
                 **structure_figures(problems, graders),
                 "suspect_truncated": len((data or {}).get(bench.name, {}).get("suspect_ids", []))}
        entry["sc"] = sc_figures(problems, rows, bench.name, graders)
        out["benchmarks"][bench.name] = entry
    out["avg"] = {}
    for g in graders:
        per_bench = [[float(np.mean([r["grades"][g]["correct"] for r in p]))
                      for p in group_problems(rows, "model", b.name, k[b.name])] for b in benches]
        out["avg"][g] = _avg_ci([v for v in per_bench if v])
    return out


# --------------------------------------------------------------------------- markdown
def pct(fig: dict[str, float] | None, ci_too: bool = True) -> str:
    """"12.5 [5.0, 20.0]" from a figure (fractions shown as percentages); "–" for none."""
    if not fig or fig.get("value") is None or not np.isfinite(fig["value"]):
        return "–"
    text = f"{100 * fig['value']:.1f}"
    return f"{text} [{100 * fig['low']:.1f}, {100 * fig['high']:.1f}]" if ci_too else text


def num(fig: dict[str, float] | None) -> str:
    """"123 [100, 150]" for a count-like figure."""
    if not fig or fig.get("value") is None or not np.isfinite(fig["value"]):
        return "–"
    return f"{fig['value']:.0f} [{fig['low']:.0f}, {fig['high']:.0f}]"


def main_row(summary: dict, name: str, grader: str, ci_too: bool = True) -> tuple[list, list]:
    """(header, cells) of one model in the paper's main-table layout."""
    benches = summary["benchmarks"]
    ratios = [b["parallel_ratio"]["value"] for b in benches.values()]
    header, cells = ["Model", "Parallel ratio"], [name, f"{100 * np.mean(ratios):.1f}"]
    for bench in benches.values():
        fig = bench["grades"][grader]
        k = fig["k"]
        if k > 1:
            header.append(f"{bench['title']} Mean@{k} / Pass@{k}")
            cells.append(f"{pct(fig['mean'], ci_too)} / {pct(fig['pass_unbiased'], ci_too)}")
        else:
            header.append(f"{bench['title']} Mean@1")
            cells.append(pct(fig["mean"], ci_too))
    header.append("Avg")
    cells.append(pct(summary["avg"].get(grader), ci_too))
    return header, cells


def md_table(header: list[str], rows: list[list[str]]) -> str:
    """A markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(map(str, r)) + " |" for r in rows])


def size_note(summaries: Sequence[dict]) -> str | None:
    """`metrics.small_sample_note` of eval summaries (headline grader's Mean@k per benchmark)."""
    items = []
    for summary in summaries:
        head = (summary.get("graders") or ["math-verify"])[0]
        for b in summary.get("benchmarks", {}).values():
            value = (b.get("grades", {}).get(head) or {}).get("mean", {}).get("value")
            if b.get("num_problems"):  # an older summary without the count says nothing
                items.append((b.get("title", "?"), b["num_problems"],
                              float("nan") if value is None else float(value)))
    return M.small_sample_note(items)


def eval_table(summary: dict, name: str) -> str:
    """Markdown: the paper's main table (headline grader), then every figure with its CI."""
    graders, reader = summary["graders"], summary.get("answer_reader", "final-answer")
    header, cells = main_row(summary, name, graders[0])
    parts = [(f"Main table (grader {graders[0]}, answer reader {reader}; Pass@k unbiased; 95% "
              "bootstrap CI over problems; parallel ratio = % responses with a valid block, mean "
              "over benchmarks)"),
             md_table(header, [cells]), "", "All figures, per grader (%, 95% CI)"]
    note = size_note([summary])
    if note:
        parts[2:2] = [note]
    rows = []
    for b in summary["benchmarks"].values():
        for g in graders:
            f = b["grades"][g]
            rows.append([b["title"], g, b["num_problems"], f["k"], pct(f["mean"]),
                         pct(f["pass_unbiased"]), pct(f["pass_bootstrap"]), pct(f["maj"]),
                         f"{100 * f['no_answer']:.1f}", f.get("timed_out", 0)])
    parts.append(md_table(["Benchmark", "Grader", "Problems", "k", "Mean@k", "Pass@k (unbiased)",
                           "Pass@k (bootstrap, paper's)", "Maj@k (equivalent answers)",
                           "No answer %", "Grades timed out"], rows))
    parts += ["", "Structure and grading"]
    rows = [[b["title"], pct(b["parallel_ratio"]), f"{100 * b['parallel_ratio_any_tag']:.1f}",
             num(b["critical_path"]), num(b["tokens"]),
             f"{b['blocks_per_response']['value']:.2f}", f"{100 * b['truncated']:.1f}",
             ", ".join(f"{g}: {100 * v:.1f}%" for g, v in b["disagreement"].items()) or "–",
             b["suspect_truncated"]] for b in summary["benchmarks"].values()]
    parts.append(md_table(["Benchmark", "Parallel ratio", "Any <Parallel> %", "Critical path",
                           "Tokens", "Blocks/resp.", "Hit max tokens %",
                           f"Disagreement vs {graders[0]}", "Suspect truncated"], rows))
    sc = [(b, b["sc"]) for b in summary["benchmarks"].values() if b.get("sc")]
    if sc:
        parts += ["", "Self-consistency at the same token budget (causal, majority vote)"]
        g = graders[0]
        parts.append(md_table(
            ["Benchmark", "Model Maj@k", "Model Mean@k", "Budget tokens/problem", "SC Maj",
             "SC Mean@1", "SC samples used", "SC tokens/problem"],
            [[b["title"], pct(b["grades"][g]["maj"]), pct(b["grades"][g]["mean"]),
              f"{s['budget']:.0f}", pct(s["maj"][g]), pct(s["mean"]), f"{s['samples_used']:.1f}",
              f"{s['tokens']:.0f}"] for b, s in sc]))
    return "\n".join(parts)


# --------------------------------------------------------------------------- run report
def run_report(per_step: dict[int, dict], out: str | Path, *, title: str = "run",
               early_late: dict[str, tuple[float, float]] | None = None) -> dict[str, Any]:
    """PNG curves over steps and `report.md` (a per-step table, early-vs-late figures).

    Returns:
        {"report": path, "report_text": markdown, "plots": [paths]}; a curve with no data is
        not drawn.
    """
    out = Path(out)
    plots = plot_run_curves(per_step, out)
    phases = plot_phases(out / "phase_time.png", per_step)
    plots += [phases] if phases else []
    cols = [("reward", "reward"), ("acc", "accuracy"), ("parallel", "parallel_ratio"),
            ("length", "response_length"), ("blocks", "blocks_per_response"),
            ("position", "block_position"), ("explore", "share_exploration"),
            ("verify", "share_verification"), ("path sim.", "path_similarity")]
    rows = [[step] + [_fmt(figs.get(key)) for _, key in cols] for step, figs in per_step.items()]
    lines = [f"# Analysis of {title}", "", md_table(["step"] + [c for c, _ in cols], rows), ""]
    if early_late:
        lines += ["Early (first third of steps) vs late (last third)", "",
                  md_table(["figure", "early", "late"],
                           [[k, _fmt(a), _fmt(b)] for k, (a, b) in early_late.items()]), ""]
    lines += [("Block roles: a block is *verification* when every path's concluding number is "
               "already written before its `<Parallel>`, *exploration* when some path concludes "
               "with a new number, *undetermined* when no path has a number "
               "(`parallel_r1.eval.analysis.classify_block`). Path similarity: mean pairwise "
               "token Jaccard of sibling paths."), ""]
    lines += [f"![{p.stem}]({p.name})" for p in plots]
    text = "\n".join(lines) + "\n"
    return {"report": write_text(out / "report.md", text), "report_text": text, "plots": plots}


def _fmt(value: Any) -> str:
    if isinstance(value, (int, float)) and np.isfinite(value):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
    return "–"
