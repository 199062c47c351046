"""Timings of every format and reward function on 1 MB adversarial inputs (issue #12 item 7).

    PYTHONPATH=src .venv/bin/python bench/adversarial_bench.py --label after
    PYTHONPATH=/path/to/old/src .venv/bin/python bench/adversarial_bench.py --label before

Each (function, input) pair is timed at sizes 16 KB, 32 KB, ... up to `--size` (1 MB); when one
call takes longer than `--budget` seconds the pair stops growing and its 1 MB time is extrapolated
from the last two sizes (growth exponent fitted on them), marked "~" in the table. The worst
input of each function is what the table reports. Writes bench/results/adversarial_<label>.json
after every function (`--resume` skips the functions already there); with both labels present it
also writes adversarial.md (before/after side by side). `--rewards` limits the reward entries
(each paper reward name under both graders) to a comma-separated list.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from adversarial_inputs import PATTERNS, adversarial  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def functions() -> dict[str, object]:
    """label -> fn(text); only what the imported parallel_r1 provides (old or new code)."""
    import parallel_r1.format as F
    import parallel_r1.rewards as R
    from parallel_r1.rewards import answer as A
    from parallel_r1.rewards import grading as G

    fns = {
        "format.find_tags": F.find_tags, "format.parse": F.parse,
        "format.render": lambda t: F.render(F.parse(t)),
        "format.validate[strict]": lambda t: F.validate(t, "strict"),
        "format.validate[paper]": lambda t: F.validate(t, "paper"),
        "format.normalize": F.normalize, "format.normalize_answer": F.normalize_answer,
        "format.response_stats": F.response_stats,
        "format.summarize": lambda t: F.summarize([t], "strict"),
        "format.compare_normalized": lambda t: F.compare_normalized(
            [{"id": 0, "teacher_output_raw": t, "trajectory": t + " x"}]),
        "rewards.extract_final_answer": A.extract_final_answer,
        "rewards.extract_final_answer[first]": lambda t: A.extract_final_answer(t, first=True),
        "rewards.extract_boxed": A.extract_boxed, "rewards.extract_answer": A.extract_answer,
        "rewards.extract_gsm8k_number[first]": lambda t: A.extract_gsm8k_number(t, first=True),
        "rewards.extract_gsm8k_number[last]": lambda t: A.extract_gsm8k_number(t, first=False),
        "rewards.strip_tags": A.strip_tags, "rewards.normalize_paper": G.normalize_paper,
        "rewards.num_blocks": R.num_blocks, "rewards.is_format_valid": R.is_format_valid,
        "rewards.self_bleu": R.self_bleu, "rewards.efficiency_gain": R.efficiency_gain,
    }
    for grader in G.GRADERS.names():
        fns[f"rewards.grade[{grader}]"] = lambda t, g=grader: G.grade(t, "18", g)
        fns[f"rewards.grade_response[{grader}]"] = lambda t, g=grader: G.grade_response(t, "18", g)
    if hasattr(A, "read_answer"):
        fns["rewards.read_answer[strict]"] = lambda t: A.read_answer(t, "strict")
        fns["rewards.read_answer[paper]"] = lambda t: A.read_answer(t, "paper")
    for name in R.REWARDS.names():
        for grader in ("paper", "math-verify"):
            fns[f"reward {name}[{grader}]"] = (
                lambda t, n=name, g=grader: R.REWARDS.get(n)(t, "18", grader=g, step=9))
    return fns


def time_call(fn, text: str) -> float:
    started = time.perf_counter()
    fn(text)
    return time.perf_counter() - started


def measure(fn, name: str, size: int, budget: float, direct: bool = False) -> dict:
    """Seconds at `size` (measured, or extrapolated when a smaller size already took > budget);
    `direct` measures only at `size` (for code known to be linear)."""
    sizes, times = [], []
    current = size if direct else min(16_384, size)
    while True:
        sizes.append(current), times.append(time_call(fn, adversarial(name, current)))
        if current >= size or times[-1] > budget:
            break
        current = min(current * 2, size)
    if sizes[-1] == size:
        return {"seconds": times[-1], "extrapolated": False, "sizes": sizes, "times": times}
    exponent = 2.0
    if len(times) >= 2 and times[-2] > 1e-3:
        exponent = max(1.0, math.log(times[-1] / times[-2]) / math.log(sizes[-1] / sizes[-2]))
    return {"seconds": times[-1] * (size / sizes[-1]) ** exponent, "extrapolated": True,
            "exponent": exponent, "sizes": sizes, "times": times}


def run(label: str, size: int, budget: float, rewards: list[str] | None, resume: bool,
        direct: bool = False) -> dict:
    path = RESULTS / f"adversarial_{label}.json"
    out = {"label": label, "size": size, "budget": budget, "functions": {}}
    if resume and path.exists():
        out = json.loads(path.read_text())
    for fname, fn in functions().items():
        if fname in out["functions"] or (rewards is not None and fname.startswith("reward ")
                                         and fname.split()[1].split("[")[0] not in rewards):
            continue
        rows = {name: measure(fn, name, size, budget, direct) for name in PATTERNS}
        worst = max(rows, key=lambda n: rows[n]["seconds"])
        out["functions"][fname] = {"worst_input": worst, **rows[worst],
                                   "all": {n: r["seconds"] for n, r in rows.items()}}
        flag = "~" if rows[worst]["extrapolated"] else ""
        print(f"{fname:62s} {flag}{rows[worst]['seconds']:10.3f} s  ({worst})", flush=True)
        path.write_text(json.dumps(out, indent=1) + "\n")
    return out


def fmt(entry: dict | None) -> str:
    if entry is None:
        return "–"
    seconds = entry["seconds"]
    text = f"{seconds:.3f}" if seconds < 100 else f"{seconds:,.0f}"
    return ("~" + text + " (extrapolated)") if entry["extrapolated"] else text


def table(before: dict, after: dict) -> str:
    names = list(after["functions"]) + [n for n in before["functions"] if n not in after["functions"]]
    lines = [f"Seconds per call on the worst of {len(PATTERNS)} adversarial inputs of "
             f"{after['size'] // 1024} KB (bench/adversarial_inputs.py); ~ = extrapolated from "
             f"smaller sizes after a call passed {before['budget']} s.", "",
             "| function | worst input (before) | before s | worst input (after) | after s |",
             "|---|---|---|---|---|"]
    for name in names:
        b, a = before["functions"].get(name), after["functions"].get(name)
        lines.append(f"| {name} | {b['worst_input'] if b else '–'} | {fmt(b)} | "
                     f"{a['worst_input'] if a else '–'} | {fmt(a)} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", required=True, help="before | after")
    parser.add_argument("--size", type=int, default=1 << 20)
    parser.add_argument("--budget", type=float, default=2.0)
    parser.add_argument("--rewards", default=None, help="comma-separated reward names")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--direct", action="store_true", help="time only at --size")
    args = parser.parse_args()
    RESULTS.mkdir(exist_ok=True)
    rewards = args.rewards.split(",") if args.rewards else None
    result = run(args.label, args.size, args.budget, rewards, args.resume, args.direct)
    (RESULTS / f"adversarial_{args.label}.json").write_text(json.dumps(result, indent=1) + "\n")
    paths = {label: RESULTS / f"adversarial_{label}.json" for label in ("before", "after")}
    if all(p.exists() for p in paths.values()):
        loaded = {k: json.loads(p.read_text()) for k, p in paths.items()}
        (RESULTS / "adversarial.md").write_text(table(loaded["before"], loaded["after"]))


if __name__ == "__main__":
    main()
