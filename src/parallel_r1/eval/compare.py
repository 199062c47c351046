"""One table across evals and training runs, in the layout of the paper's main table.

Each argument is an eval dir (holding `summary.json`), a `summary.json` file, or a training run
dir: a run contributes one row per eval summary found under it (e.g. the demo's `eval/<stage>`),
or, when it has none, one row of its last logged figures.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from parallel_r1.errors import DataError
from parallel_r1.eval.report import main_row, md_table, size_note

SUMMARY = "summary.json"


def find_summaries(path: Path) -> list[tuple[str, Path]]:
    """(row name, summary file) pairs for one argument, in a stable order."""
    path = Path(path)
    if path.is_file():
        return [(path.parent.name, path)]
    if (path / SUMMARY).is_file():
        return [(path.name, path / SUMMARY)]
    found = sorted(path.rglob(SUMMARY)) if path.is_dir() else []
    return [(f"{path.name}/{p.parent.relative_to(path)}", p) for p in found]


def summary_cells(summary: dict, name: str, grader: str | None) -> dict[str, str]:
    """Column title -> cell of one eval summary (see `report.main_row`)."""
    graders = summary.get("graders") or ["math-verify"]
    grader = grader or graders[0]
    if grader not in graders:
        raise DataError(f"unknown grader '{grader}' for this summary; it has "
                        f"{', '.join(graders)}")
    reader = summary.get("answer_reader", "final-answer")  # named unless it is the contract's
    name = name if reader == "final-answer" else f"{name} (answer reader {reader})"
    header, cells = main_row(summary, name, grader, ci_too=True)
    return dict(zip(header, cells))


def run_cells(run_dir: Path, name: str) -> dict[str, str]:
    """Cells of a training run without eval summaries: figures of its last tenth of steps."""
    from parallel_r1.eval.analysis import analyze_steps, read_metrics, read_rollouts

    per_step = analyze_steps(read_metrics(run_dir), read_rollouts(run_dir))
    if not per_step:
        raise DataError("neither an eval summary nor training logs found", file=str(run_dir))
    steps = sorted(per_step)[-max(len(per_step) // 10, 1):]

    def last(key: str) -> str:
        vals = [per_step[s].get(key) for s in steps]
        vals = [v for v in vals if isinstance(v, (int, float)) and np.isfinite(v)]
        return f"{100 * np.mean(vals):.1f}" if vals else "–"

    return {"Model": f"{name} (training, last steps)", "Parallel ratio": last("parallel_ratio"),
            "Train accuracy": last("accuracy"), "Train reward x100": last("reward")}


def compare_rows(paths: Sequence[str | Path], *, grader: str | None = None
                 ) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of the comparison; columns are the union, in first-seen order.

    Raises:
        DataError: an argument with neither summaries nor training logs, or an unknown grader.
    """
    header: list[str] = ["Model", "Parallel ratio"]
    table: list[dict[str, str]] = []
    for path in map(Path, paths):
        found = find_summaries(path)
        if found:
            for name, file in found:
                summary: dict[str, Any] = json.loads(file.read_text(encoding="utf-8"))
                table.append(summary_cells(summary, name, grader))
        elif path.is_dir():
            table.append(run_cells(path, path.name))
        else:
            raise DataError("not an eval dir, summary.json or run dir", file=str(path))
    for cells in table:
        header += [c for c in cells if c not in header and c != "Avg"]
    if any("Avg" in cells for cells in table):
        header.append("Avg")
    return header, [[cells.get(c, "–") for c in header] for cells in table]


def compare_table(paths: Sequence[str | Path], *, grader: str | None = None) -> str:
    """The markdown comparison table (percentages, 95% bootstrap CI over problems)."""
    header, rows = compare_rows(paths, grader=grader)
    note = ("Mean@k / Pass@k (unbiased) in %, [95% bootstrap CI over problems]; parallel ratio "
            "in % of responses with a valid block; Avg = mean of the Mean@k columns")
    summaries = [json.loads(file.read_text(encoding="utf-8")) for path in map(Path, paths)
                 for _, file in find_summaries(path)]
    small = size_note(summaries)
    return note + "\n\n" + md_table(header, rows) + (f"\n\n{small}" if small else "")
