"""Grading speed per grader, the cost of the time limit and of equivalence votes, and the
conformance corpus's pass rate per kind and grader.

    PYTHONPATH=src .venv/bin/python bench/grading_bench.py

(a) throughput: 2,000 rollouts (the 341 real v2 traces and the corpus responses, cycled,
    half of them with their final answer replaced by another number, so answers vary as in RL),
    graded by each grader from the whole response: responses/s with every cache cleared first
    (cold) and again at once (warm: RL groups repeat answers), per-call p50/p99, timeouts;
(b) the time limit: 1,000 cold grades of the default grader with and without it, interleaved,
    best of 3 (the limit's own cost, arm + disarm, is about 3 µs a grade);
(c) votes: Maj@16 over 125 problems of 16 of those answers, grouped by equivalence vs strings
    (a worst case: the 16 answers of a "problem" come from 16 different rollouts, so they are
    mostly distinct and every pair is compared);
(d) the conformance corpus (tests/rewards/conformance.jsonl): pass rate per kind and grader;
(e) bracket-heavy answer lines under 2 KB (issue #11 review item 12): seconds to grade each once,
    cold, with the default grader, under a label (run it once on the old code with
    `--sections brackets --label before`, once on the new with `--label after`).
Writes bench/results/grading.json and grading.md; `--sections a,b` re-runs only those sections
(throughput, limit, votes, conformance, brackets) and keeps the others from grading.json.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

from parallel_r1.data.rows import iter_json_rows
from parallel_r1.data.sources import PACKAGED_DIR
from parallel_r1.eval.metrics import majority_vote
from parallel_r1.rewards import grading

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
CORPUS = ROOT / "tests" / "rewards" / "conformance.jsonl"
TRACES = PACKAGED_DIR / "parallel_gsm8k_v2_sft.jsonl.gz"  # shipped with the library
GRADERS = ("math-verify", "paper", "paper-gsm8k")


def rollouts(count: int = 2000, seed: int = 0) -> list[tuple[str, str]]:
    """(response, gold) pairs: real traces and corpus cases, half with a wrong final number."""
    rng = random.Random(seed)
    base = [(r["trajectory"], str(r["answer"])) for _, r in iter_json_rows(TRACES)]
    base += [(c["response"], c["gold"]) for c in _jsonl(CORPUS)]
    out = []
    for i in range(count):
        response, gold = base[i % len(base)]
        if rng.random() < 0.5:
            wrong = str(rng.randint(0, 999))
            response = re.sub(r"(Final Answer:\s*)[^\n]*$", lambda m, w=wrong: m.group(1) + w,
                              response)
        out.append((response, gold))
    return out


def _jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def clear_caches() -> None:
    grading._recover_after_timeout()  # clears our caches and math-verify's


def throughput(pairs: list[tuple[str, str]], grader: str) -> dict:
    """Cold and warm responses/s of one grader over `pairs`, with latency percentiles."""
    clear_caches()
    out = {}
    for label in ("cold", "warm"):
        times, timeouts = [], 0
        started = time.perf_counter()
        for response, gold in pairs:
            t = time.perf_counter()
            timeouts += grading.grade_response_detail(response, gold, grader).timed_out
            times.append(time.perf_counter() - t)
        total = time.perf_counter() - started
        times.sort()
        out[label] = {"responses_per_s": len(pairs) / total, "seconds": total,
                      "p50_ms": 1000 * statistics.median(times),
                      "p99_ms": 1000 * times[int(0.99 * (len(times) - 1))], "timeouts": timeouts}
    return out


def limit_cost(pairs: list[tuple[str, str]]) -> dict:
    """Cold default-grader time with the per-grade limit on vs off (best of 2 each)."""
    def run(limit: float | None) -> float:
        clear_caches()
        started = time.perf_counter()
        for response, gold in pairs:
            pred = grading.read_answer(response, "strict")
            grading.grade_detail(pred, gold, timeout=limit)
        return time.perf_counter() - started

    on, off = [], []
    for _ in range(3):  # interleaved, best of 3 each: this machine's timings are noisy
        on.append(run(grading.TIMEOUT_SECONDS))
        off.append(run(None))
    return {"seconds_with_limit": min(on), "seconds_without": min(off),
            "ratio": min(on) / min(off)}


def vote_cost(pairs: list[tuple[str, str]], k: int = 16) -> dict:
    """Maj@k grouping cost: equivalence-aware vs plain strings, on the rollouts' answers."""
    preds = [grading.read_answer(r, "strict") for r, _ in pairs]
    problems = [preds[i:i + k] for i in range(0, len(preds) - k + 1, k)]
    clear_caches()
    started = time.perf_counter()
    for answers in problems:
        majority_vote(answers)
    equivalent = time.perf_counter() - started
    started = time.perf_counter()
    for answers in problems:
        majority_vote(answers, grader=None)
    return {"problems": len(problems), "k": k, "seconds_equivalence": equivalent,
            "seconds_strings": time.perf_counter() - started}


def conformance() -> dict:
    """Pass rate per kind for every grader: {grader: {kind: [passed, total]}}."""
    out: dict = {g: defaultdict(lambda: [0, 0]) for g in GRADERS}
    for case in _jsonl(CORPUS):
        for g in GRADERS:
            verdict = grading.grade_response_detail(case["response"], case["gold"], g)
            cell = out[g][case["kind"]]
            cell[0] += verdict.correct is case["expected"]
            cell[1] += 1
    return {g: dict(kinds) for g, kinds in out.items()}


BRACKET_LINES = {"[ x 800": "[" * 800, "[1, x 300": "[1," * 300, "( x 1990": "(" * 1990,
                 "{ x 600": "{" * 600, "x( x 500": "x(" * 500, "(1) x 300": "(1)" * 300}


def brackets() -> dict:
    """Seconds to grade each bracket-heavy line once (cold), and the verdict."""
    out = {}
    grading.grade_response_detail("Final Answer: 1", "1")  # imports and parser warm-up
    for name, line in BRACKET_LINES.items():
        clear_caches()
        start = time.perf_counter()
        verdict = grading.grade_response_detail("Work.\nFinal Answer: " + line, "18")
        out[name] = {"chars": len(line), "seconds": time.perf_counter() - start,
                     "correct": verdict.correct, "timed_out": verdict.timed_out,
                     "refused": getattr(verdict, "refused", False), "pred_none": verdict.pred is None}
    return out


def _brackets_md(runs: dict) -> list[str]:
    labels = sorted(runs, key=lambda x: (x != "before", x))
    lines = ["", "## Bracket-heavy answer lines (default grader, one cold grade each)", "",
             "| line | chars | " + " | ".join(f"{lb} s" for lb in labels)
             + f" | {labels[-1]}: verdict |",
             "|---|---|" + "---|" * (len(labels) + 1)]
    last = runs[labels[-1]]
    for name, row in last.items():
        what = ("refused" if row["refused"] else "no answer" if row["pred_none"]
                else "timed out" if row["timed_out"] else "graded")
        lines.append(f"| `{name}` | {row['chars']} | " + " | ".join(
            f"{runs[lb][name]['seconds']:.3f}" if name in runs[lb] else "-" for lb in labels)
            + f" | {what} |")
    return lines


def markdown(result: dict) -> str:
    lines = ["# Grading bench", "", f"{result['num_rollouts']} rollouts (bench/grading_bench.py); "
             "cold = every cache cleared first, warm = the same rollouts again.", "",
             "| grader | cold responses/s | warm responses/s | cold p50 ms | cold p99 ms | "
             "timeouts |", "|---|---|---|---|---|---|"]
    for g, t in result["throughput"].items():
        lines.append(f"| {g} | {t['cold']['responses_per_s']:.0f} | "
                     f"{t['warm']['responses_per_s']:.0f} | {t['cold']['p50_ms']:.2f} | "
                     f"{t['cold']['p99_ms']:.1f} | {t['cold']['timeouts']} |")
    lim, vote = result["limit"], result["votes"]
    lines += ["", f"Time limit (5 s a grade, any thread): cold default grader "
              f"{lim['seconds_with_limit']:.2f} s with it, {lim['seconds_without']:.2f} s "
              f"without (ratio {lim['ratio']:.3f}).", "",
              f"Votes: Maj@{vote['k']} over {vote['problems']} problems: "
              f"{vote['seconds_equivalence']:.2f} s grouping equivalent answers (cold caches), "
              f"{vote['seconds_strings']:.4f} s grouping strings.", "",
              "## Conformance corpus (tests/rewards/conformance.jsonl): cases passed per kind", "",
              "| kind | cases | " + " | ".join(GRADERS) + " |", "|---|---|" + "---|" * len(GRADERS)]
    conf = result["conformance"]
    kinds = sorted(conf[GRADERS[0]])
    for kind in kinds:
        total = conf[GRADERS[0]][kind][1]
        lines.append(f"| {kind} | {total} | " + " | ".join(
            f"{conf[g][kind][0]}" for g in GRADERS) + " |")
    totals = {g: (sum(v[0] for v in conf[g].values()), sum(v[1] for v in conf[g].values()))
              for g in GRADERS}
    lines.append("| **all** | " + str(totals[GRADERS[0]][1]) + " | " + " | ".join(
        f"{p} ({100 * p / n:.1f}%)" for p, n in totals.values()) + " |")
    if result.get("brackets"):
        lines += _brackets_md(result["brackets"])
    return "\n".join(lines) + "\n"


SECTIONS = ("throughput", "limit", "votes", "conformance", "brackets")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", default=",".join(SECTIONS),
                        help="comma-separated sections to (re)run: " + ", ".join(SECTIONS))
    parser.add_argument("--label", default="after", help="label of the brackets run")
    args = parser.parse_args()
    sections = [x for x in args.sections.split(",") if x]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section(s) {sorted(unknown)}; known: {', '.join(SECTIONS)}")
    path = RESULTS / "grading.json"
    result = json.loads(path.read_text()) if path.exists() else {}
    pairs = rollouts()
    result.update({"num_rollouts": len(pairs), "python": sys.version.split()[0]})
    if "throughput" in sections:
        result["throughput"] = {g: throughput(pairs, g) for g in GRADERS}
    if "limit" in sections:
        result["limit"] = limit_cost(pairs[:1000])
    if "votes" in sections:
        result["votes"] = vote_cost(pairs)
    if "conformance" in sections:
        result["conformance"] = conformance()
    if "brackets" in sections:
        result.setdefault("brackets", {})[args.label] = brackets()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "grading.json").write_text(json.dumps(result, indent=1) + "\n")
    text = markdown(result)
    (RESULTS / "grading.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
