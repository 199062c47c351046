"""Where a stage resumes: the newest checkpoint that reads back, and logs trimmed to match it.

The Trainer writes `checkpoint-N/` in place (weights, optimizer, scheduler, RNG, then
`trainer_state.json` last), so a kill or a power loss can leave one that is cut short. A checkpoint
counts only if it reads back: `trainer_state.json` parses and names step N, the weights are there
and whole (safetensors headers and sizes agree; torch zip files have their central directory).
A broken one is removed and the stage resumes from the one before. Resuming from step N rewrites
the stage's logs (metrics.jsonl, rollouts*.jsonl) to the rows of steps <= N, so each step is
logged once. A checkpoint of the last step (a kill while the final model was saved) is not
resumed but loaded: the Trainer would run one step too many. Standard library, except the loaders.
"""

from __future__ import annotations

import json
import shutil
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from parallel_r1.files import trim_log

WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "adapter_model.safetensors",
           "pytorch_model.bin")
TORCH_FILES = ("optimizer.pt", "scheduler.pt", "rng_state.pth", "pytorch_model.bin")
STEP_LOGS = ("metrics.jsonl", "rollouts.jsonl", "rollouts.rank*.jsonl")


def _step(path: Path) -> int:
    tail = path.name.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else -1


def safetensors_problem(path: Path) -> str | None:
    """Why a safetensors file does not read back (cut short, bad header), or None when whole."""
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            (length,) = struct.unpack("<Q", handle.read(8))
            if length > size:
                return f"{path.name}: header longer than the file"
            header = json.loads(handle.read(length))
    except (OSError, struct.error, ValueError) as exc:
        return f"{path.name}: unreadable header ({type(exc).__name__})"
    ends = [t["data_offsets"][1] for k, t in header.items() if k != "__metadata__"]
    if 8 + length + max(ends, default=0) != size:
        return f"{path.name}: {size} bytes, the header describes {8 + length + max(ends, default=0)}"
    return None


def checkpoint_problem(ckpt: Path) -> str | None:
    """Why `ckpt` cannot be resumed from (one short reason), or None when it reads back."""
    try:
        state = json.loads((ckpt / "trainer_state.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return "no trainer_state.json"
    except (OSError, ValueError) as exc:
        return f"trainer_state.json does not parse ({type(exc).__name__})"
    if not isinstance(state, dict) or state.get("global_step") != _step(ckpt):
        return f"trainer_state.json does not name step {_step(ckpt)}"
    weights = [ckpt / name for name in WEIGHTS if (ckpt / name).is_file()]
    if not weights:
        return "no weights file"
    for path in weights:
        if path.suffix == ".safetensors" and (problem := safetensors_problem(path)):
            return problem
        if path.name.endswith(".index.json"):
            try:
                shards = set(json.loads(path.read_text())["weight_map"].values())
            except (OSError, ValueError, KeyError, TypeError):
                return f"{path.name} does not parse"
            for shard in sorted(shards):
                problem = safetensors_problem(ckpt / shard) if (ckpt / shard).is_file() else \
                    f"{shard} is missing"
                if problem:
                    return problem
    for name in TORCH_FILES:
        if (ckpt / name).is_file() and not zipfile.is_zipfile(ckpt / name):
            return f"{name} is cut short"
    return None


def resume_point(stage_dir: str | Path, say: Callable[[str], None] = print) -> str | None:
    """The newest checkpoint of a stage that reads back, removing newer broken ones.

    Args:
        say: receives one line per broken checkpoint removed.
    Returns:
        The checkpoint dir as a string, or None when there is none to resume from.
    """
    found = sorted((p for p in Path(stage_dir).glob("checkpoint-*")
                    if p.is_dir() and _step(p) >= 0), key=_step, reverse=True)
    for ckpt in found:
        problem = checkpoint_problem(ckpt)
        if problem is None:
            return str(ckpt)
        shutil.rmtree(ckpt, ignore_errors=True)
        older = next((p for p in found if _step(p) < _step(ckpt)), None)
        say(f"{ckpt} is incomplete ({problem}); removed it, "
            + (f"falling back to {older.name}" if older else "starting the stage afresh"))
    return None


def trim_step_logs(stage_dir: str | Path, step: int, *, final: bool = False) -> dict[str, int]:
    """Cut the stage's per-step logs back to the rows of steps <= `step` (0: all rows), and the
    end-of-training summary rows, which the resumed run writes again (kept when `final`: the
    training is over and will not be rerun). Returns rows removed per file (files that lost
    none are left out)."""
    removed = {}
    for pattern in STEP_LOGS:
        for path in sorted(Path(stage_dir).glob(pattern)):
            count = trim_log(path, lambda row: isinstance(row.get("step"), int)
                             and row["step"] <= step and (final or "train_runtime" not in row))
            if count:
                removed[path.name] = count
    return removed


def is_final(ckpt: str | Path) -> bool:
    """Whether `ckpt` was saved at the last step of its training (global_step >= max_steps).

    Resuming the Trainer from such a checkpoint would run one more optimiser step (its loop only
    checks for the end after a step), so the runner takes the weights from it instead.
    """
    try:
        state = json.loads((Path(ckpt) / "trainer_state.json").read_text(encoding="utf-8"))
        return 0 < int(state.get("max_steps") or 0) <= int(state["global_step"])
    except (OSError, ValueError, KeyError, TypeError):
        return False


def load_final(model: Any, ckpt: str | Path) -> Any:
    """The trained model of a final checkpoint: `model` (the stage's starting model) with the
    checkpoint's LoRA adapter on top, or the checkpoint's full weights in `model`'s dtype."""
    ckpt = Path(ckpt)
    if (ckpt / "adapter_config.json").is_file():
        from peft import PeftModel

        return PeftModel.from_pretrained(model, str(ckpt))
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(str(ckpt), dtype=next(model.parameters()).dtype)


def final_metrics(stage_dir: str | Path) -> dict[str, Any]:
    """The end-of-training summary the stage logged (train_runtime, train_loss, ...), or {}."""
    from parallel_r1.files import read_log

    path = Path(stage_dir) / "metrics.jsonl"
    rows = [row for _, row in read_log(path)[0] if "train_runtime" in row] if path.exists() else []
    return {k: v for k, v in rows[-1].items() if k != "step"} if rows else {}
