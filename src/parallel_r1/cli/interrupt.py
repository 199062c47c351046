"""The one line Ctrl-C prints: what the interrupted command kept, and the exact command that
resumes it (the same command line; resumable commands pick up where they stopped).

What was kept is read from the outputs this process claimed or locked
(`parallel_r1.outputs.outputs_written`): a run's finished stages and the newest checkpoint of
the one it was in, a grid's finished nodes, an eval's graded samples, a cold-start log's records.
"""

from __future__ import annotations

import json
from pathlib import Path

# Commands that resume where they stopped when run again.
RESUMABLE = ("run", "eval", "grid", "demo", "coldstart")


def _lines(path: Path) -> int:
    try:
        with path.open("rb") as handle:
            return sum(1 for line in handle if line.strip())
    except OSError:
        return 0


def _run(folder: Path) -> str | None:
    try:
        stages = json.loads((folder / "state.json").read_text(encoding="utf-8"))["stages"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    done = [name for name, rec in stages.items() if rec.get("status") == "done"]
    parts = [f"stages done: {', '.join(done)}" if done else "no stage finished"]
    for name, rec in stages.items():
        if rec.get("status") == "running":
            checkpoints = [p for d in folder.glob(f"*-{name}") for p in d.glob("checkpoint-*")
                           if p.name.removeprefix("checkpoint-").isdigit()]
            newest = max(checkpoints, key=lambda p: int(p.name.split("-")[1]), default=None)
            parts.append(f"{name} from {newest.name}" if newest else
                         f"{name} restarts (no checkpoint yet)")
    return f"{'; '.join(parts)} (in {folder})"


def _grid(folder: Path) -> str | None:
    try:
        nodes = json.loads((folder / "grid-state.json").read_text(encoding="utf-8"))["nodes"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return f"{len(nodes)} finished node{'s' * (len(nodes) != 1)} (in {folder})"


def describe(path: Path) -> str | None:
    """What `path` (an output folder or an append-only file) holds that a rerun keeps, or None
    when it holds nothing of that kind."""
    if path.is_file():
        return f"{_lines(path)} records in {path}"
    if (path / "state.json").is_file():
        return _run(path)
    if (path / "grid-state.json").is_file():
        return _grid(path)
    if (path / "samples.jsonl").is_file():
        return f"{_lines(path / 'samples.jsonl')} graded samples in {path}"
    return None


def interrupted_line(command: str, words: list[str], outputs: list[Path]) -> str:
    """The Ctrl-C line for `command` (as typed), its leading non-option `words`, and the
    outputs it wrote."""
    if not set(words) & set(RESUMABLE):
        return "interrupted; outputs are written whole, so nothing half-written was left"
    found, described = [], []
    for path in outputs:  # a stage's eval folder inside a run is told by the run's state
        if any(root in path.parents for root in described):
            continue
        text = describe(path)
        if text:
            found.append(text)
            described.append(path)
    kept = "; ".join(found) if found else "nothing yet"
    return f"interrupted; kept {kept}; to resume where it stopped, run: {command}"
