"""Recount an eval directory by hand: Mean@k and Pass@k (k = n) from samples.jsonl, against
summary.json, and check that no two samples of one problem share a seed.

    .venv/bin/python scripts/hand_count.py EVAL_DIR

Exits 1 if any figure differs from the summary by more than 1e-9 or a seed repeats.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path


def main(directory: str) -> int:
    rows = [json.loads(line) for line in Path(directory, "samples.jsonl").open(encoding="utf-8")]
    summary = json.loads(Path(directory, "summary.json").read_text(encoding="utf-8"))
    ok = True
    for bench in sorted({r["benchmark"] for r in rows}):
        seeds: dict[str, list[int]] = defaultdict(list)
        for r in rows:
            if r["benchmark"] == bench:
                seeds[r["problem_id"]].append(r["seed"])
        unique = all(len(set(s)) == len(s) for s in seeds.values())
        ok &= unique
        for grader, figures in summary["benchmarks"][bench]["grades"].items():
            correct: dict[str, list[bool]] = defaultdict(list)
            for r in rows:
                if r["benchmark"] == bench:
                    correct[r["problem_id"]].append(bool(r["grades"][grader]["correct"]))
            mean = sum(sum(v) / len(v) for v in correct.values()) / len(correct)
            passk = sum(any(v) for v in correct.values()) / len(correct)
            same = (abs(mean - figures["mean"]["value"]) < 1e-9
                    and abs(passk - figures["pass_unbiased"]["value"]) < 1e-9)
            ok &= same
            print(f"{bench} {grader}: {len(correct)} problems, k={figures['k']}: Mean@k by hand "
                  f"{mean:.4f} vs summary {figures['mean']['value']:.4f}; Pass@k by hand "
                  f"{passk:.4f} vs summary {figures['pass_unbiased']['value']:.4f}; seeds "
                  f"{'unique' if unique else 'REPEATED'} per problem -> {'ok' if same else 'DIFFERS'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
