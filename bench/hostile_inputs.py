"""Time and peak memory on hostile inputs: YAML alias bombs, a 1M-line grade, one huge trace.

Each case runs in a fresh Python process per source tree (so a change can be measured against the
code before it) under a memory cap and a time limit; the process reports its own wall time and
peak RSS (`resource.getrusage`, interpreter and imports included) and how the case ended
(done, refused with the error's first 120 characters, out of memory or killed at the cap, timed
out).

    .venv/bin/python bench/hostile_inputs.py --src before=/tmp/bounds-before/src --src after=src
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
REPO = Path(__file__).resolve().parents[1]
TRACE = "<Parallel><Path>a</Path><Path>b</Path></Parallel>\n<Summary>s</Summary>\nFinal Answer: 7"


def bomb(levels: int, width: int, head: str = "name: b\nstages:\n- kind: eval\n  eval:\n") -> str:
    """`levels` lists of `width` aliases of the level below (width ** levels leaves)."""
    names = "abcdefghijklmnop"
    rows = [f"   a: &a [{','.join(['x'] * width)}]"]
    rows += [f"   {names[i]}: &{names[i]} [{','.join([f'*{names[i - 1]}'] * width)}]"
             for i in range(1, levels + 1)]
    return head + "\n".join(rows) + "\n"


def make_inputs(folder: Path, num_rows: int, line_mb: float) -> dict[str, Path]:
    """Write every case's input file once; returns them by name."""
    files = {"bomb7": folder / "bomb7.yaml", "bomb9": folder / "bomb9.yaml",
             "grid9": folder / "grid9.yaml", "rows": folder / "rows.jsonl",
             "line": folder / "line.jsonl", "line8": folder / "line8.jsonl"}
    files["bomb7"].write_text(bomb(7, 9))
    files["bomb9"].write_text(bomb(9, 9))
    files["grid9"].write_text("name: g\nbaseline: x\narms:\n- {name: x, recipe: bomb9.yaml}\n")
    row = json.dumps({"response": "So it is 7.\nFinal Answer: 7", "answer": "7"}) + "\n"
    with open(files["rows"], "w") as handle:
        handle.writelines(row for _ in range(num_rows))
    words = "step " * int(line_mb * (1 << 20) / 5)  # a trace of short words, one line
    files["line"].write_text(json.dumps({"response": f"{words}{TRACE}", "answer": "7"}) + "\n")
    dense = "<Parallel>" + "<Path>a</Path>" * int(7.9 * (1 << 20) / 14)  # a node per 14 bytes
    files["line8"].write_text(json.dumps({"response": f"{dense}</Parallel>{TRACE}",
                                          "answer": "7"}) + "\n")
    return files


CASES = {  # name -> (what, code run in the child with `path` set)
    "bomb7": ("recipe: 7-level alias bomb ({size} bytes)",
              "from parallel_r1.train.recipe import load; load(path)"),
    "bomb9": ("recipe: 9 x 9 alias bomb ({size} bytes)",
              "from parallel_r1.train.recipe import load; load(path)"),
    "grid9": ("grid whose arm is the 9 x 9 bomb recipe (load_grid + plan)",
              "from parallel_r1.train.grid import load_grid, plan; plan(load_grid(path))"),
    "rows": ("grade --grader paper, {rows:,} lines, no --output",
             "from parallel_r1.cli import app; app(['grade', path, '--grader', 'paper'], "
             "standalone_mode=False)"),
    "line": ("check-format, one {mb:g} MB line",
             "from parallel_r1.cli import app; app(['check-format', path, '--field', 'response'], "
             "standalone_mode=False)"),
    "line8": ("check-format, one 7.9 MB tag-dense line (worst case under the 8 MB limit)",
              "from parallel_r1.cli import app; app(['check-format', path, '--field', "
              "'response'], standalone_mode=False)"),
    "grade8": ("grade (math-verify), the same 7.9 MB tag-dense line",
               "from parallel_r1.cli import app; app(['grade', path], standalone_mode=False)"),
}
CHILD = """
import json, resource, sys, time
path = sys.argv[1]
start = time.perf_counter()
try:
    exec(sys.argv[2])
    outcome = "done"
except MemoryError:
    outcome = "out of memory at the cap"
except Exception as exc:
    outcome = "refused: " + (str(exc).splitlines() or [type(exc).__name__])[0][:120]
print(json.dumps({"seconds": time.perf_counter() - start, "outcome": outcome,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run_case(src: Path, code: str, path: Path, cap_gb: float, timeout: float) -> dict:
    """Run one case in a fresh process limited to `cap_gb` of address space and `timeout` s."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(src))
    cap = int(cap_gb * (1 << 30))

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    try:
        proc = subprocess.run([sys.executable, "-c", CHILD, str(path), code], env=env,
                              capture_output=True, text=True, timeout=timeout, preexec_fn=limit)
    except subprocess.TimeoutExpired:
        return {"seconds": timeout, "outcome": f"timed out after {timeout:g} s",
                "peak_rss_mb": None}
    lines = proc.stdout.strip().splitlines()
    if proc.returncode == 0 and lines:
        return json.loads(lines[-1])
    tail = (proc.stderr.strip().splitlines() or ["?"])[-1][:120]
    return {"seconds": None, "outcome": f"killed at the {cap_gb:g} GB cap ({tail})",
            "peak_rss_mb": None}


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", action="append", default=[],
                    help="LABEL=PATH of a source tree (its `src` dir); repeatable")
    ap.add_argument("--rows", type=int, default=1_000_000, help="lines of the grade input")
    ap.add_argument("--line-mb", type=float, default=200.0, help="MB of the one-line input")
    ap.add_argument("--cases", default=",".join(CASES), help="comma-separated case names")
    ap.add_argument("--cap-gb", type=float, default=4.0, help="address-space cap per case")
    ap.add_argument("--timeout", type=float, default=180.0, help="seconds per case, at most")
    ap.add_argument("--out", type=Path, default=RESULTS, help="where JSON + table go")
    return ap.parse_args()


def main() -> None:
    args = parse_args()
    sources = [s.split("=", 1) for s in args.src] or [["current", str(REPO / "src")]]
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        files = make_inputs(Path(folder), args.rows, args.line_mb)
        files["grade8"] = files["line8"]
        for name in args.cases.split(","):
            what, code = CASES[name]
            what = what.format(size=files[name].stat().st_size, rows=args.rows, mb=args.line_mb)
            for label, src in sources:
                result = run_case(Path(src).resolve(), code, files[name], args.cap_gb,
                                  args.timeout)
                rows.append({"case": what, "code": label, **result})
                print(json.dumps(rows[-1]), flush=True)
    write_results(args, rows)


def write_results(args: argparse.Namespace, rows: list[dict]) -> None:
    """bench/results/hostile_inputs.{json,md}."""
    args.out.mkdir(parents=True, exist_ok=True)
    meta = {"machine": platform.platform(), "cpus": os.cpu_count(), "python": sys.version.split()[0],
            "command": " ".join(sys.argv), "cap_gb": args.cap_gb, "timeout_s": args.timeout}
    (args.out / "hostile_inputs.json").write_text(json.dumps({"meta": meta, "rows": rows},
                                                             indent=2) + "\n")

    def num(value: float | None, fmt: str) -> str:
        return "-" if value is None else format(value, fmt)

    lines = ["| case | code | seconds | peak RSS MB | outcome |", "|---|---|---|---|---|"]
    lines += [f"| {r['case']} | {r['code']} | {num(r['seconds'], '.2f')} | "
              f"{num(r['peak_rss_mb'], '.0f')} | {r['outcome'].replace('|', '/')} |" for r in rows]
    table = "\n".join(lines)
    (args.out / "hostile_inputs.md").write_text(
        "# Hostile inputs: time and peak memory (one fresh process per case)\n\n"
        f"`{meta['command']}` on {meta['machine']}, {meta['cpus']} CPUs; each case capped at "
        f"{args.cap_gb:g} GB of address space and {args.timeout:g} s. Peak RSS includes the "
        "interpreter and its imports.\n\n" + table + "\n")
    print(table)


if __name__ == "__main__":
    main()
