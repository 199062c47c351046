"""Benchmarks by name: which data set and split, how many samples per problem, what to report.

A `Benchmark` names its data set (see `parallel_r1.data.sources.DATASETS`) or a loader function,
its default number of samples per problem (the paper's `eval_repeats`: 16 for AIME and AMC, 1 for
MATH), and the column title of the paper's main table. Problems flagged `suspect_truncated` (one
AIME24 problem, about four MATH300 ones: SPEC §8) are kept by default and counted in the report.
Pure Python: imports no torch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from parallel_r1.registry import Registry

# Seed of the held-out synthetic problems; training data uses other seeds (the demo uses 0).
HELD_OUT_SEED = 1000


@dataclass(frozen=True)
class Benchmark:
    """One evaluation set.

    `dataset` is a data set name or path for `sources.load_records`; `loader`, when set, replaces
    it (it returns `(records, metrics)` like `load_records`). `title` heads the table column.
    """

    name: str
    title: str
    dataset: str | None = None
    split: str | None = None
    samples: int = 1
    loader: Callable[[], tuple[list, dict[str, Any]]] | None = None


BENCHMARKS: Registry[Benchmark] = Registry("benchmark")

# Column order of the paper's main table first, then the rest.
for _bench in (
    Benchmark("aime25", "AIME25", "aime25", "test", samples=16),
    Benchmark("aime24", "AIME24", "aime24", "test", samples=16),
    Benchmark("amc23", "AMC23", "amc23", "test", samples=16),
    Benchmark("math300", "MATH", "math300", "test", samples=1),
    Benchmark("math500", "MATH500", "math500", "test", samples=1),
    Benchmark("gsm8k", "GSM8K", "gsm8k", "test", samples=1),
):
    BENCHMARKS.add(_bench.name, _bench)

PAPER_ORDER = ("aime25", "aime24", "amc23", "math300", "math500", "gsm8k")


def _synthetic_loader(level: int | str, count: int) -> Callable[[], tuple[list, dict[str, Any]]]:
    def load() -> tuple[list, dict[str, Any]]:
        from parallel_r1.data.synthetic import from_spec

        records = from_spec(f"synthetic:{level}:{count}:{HELD_OUT_SEED}")
        return records, {"num_rows": len(records), "num_suspect": 0, "num_dropped": 0,
                         "resolved_from": "synthetic", "location": f"seed={HELD_OUT_SEED}"}

    return load


for _level in range(1, 6):
    BENCHMARKS.add(f"synthetic-l{_level}", Benchmark(
        f"synthetic-l{_level}", f"Synth-L{_level}", samples=4,
        loader=_synthetic_loader(_level, 200)))
    BENCHMARKS.add(f"synthetic-trap{_level}", Benchmark(  # the trap family (data.trap)
        f"synthetic-trap{_level}", f"Trap-L{_level}", samples=4,
        loader=_synthetic_loader(f"trap{_level}", 200)))
    BENCHMARKS.add(f"synthetic-fork{_level}", Benchmark(  # the fork family (data.fork)
        f"synthetic-fork{_level}", f"Fork-L{_level}", samples=4,
        loader=_synthetic_loader(f"fork{_level}", 200)))


def names_text() -> str:
    """Every benchmark name in registration order, a run of 3+ consecutive numbers written once:
    "aime25, ..., synthetic-l1..5, synthetic-trap1..5, synthetic-fork1..5" (the `eval --help` list)."""
    runs: dict[str, list[int]] = {}
    for name in BENCHMARKS:
        stem = name.rstrip("0123456789")
        if stem != name:
            runs.setdefault(stem, []).append(int(name[len(stem):]))
    parts, done = [], set()
    for name in BENCHMARKS:
        stem = name.rstrip("0123456789")
        nums = runs.get(stem, [])
        if len(nums) >= 3 and nums == list(range(nums[0], nums[0] + len(nums))):
            if stem not in done:
                parts.append(f"{stem}{nums[0]}..{nums[-1]}")
                done.add(stem)
        else:
            parts.append(name)
    return ", ".join(parts)


def parse_names(names: str | list[str]) -> list[Benchmark]:
    """Benchmarks from "aime24,gsm8k" or a list of names, in the given order, duplicates dropped.

    Raises:
        UnknownNameError: an unknown name (the message lists the known ones).
    """
    items = names.split(",") if isinstance(names, str) else list(names)
    seen: dict[str, Benchmark] = {}
    for name in (n.strip() for n in items):
        if name and name not in seen:
            seen[name] = BENCHMARKS.get(name)
    return list(seen.values())


def load_problems(bench: Benchmark, *, limit: int | None = None, drop_suspect: bool = False,
                  local_dir: str | None = None) -> tuple[list, dict[str, Any]]:
    """The problems of `bench` (first `limit` of them) and the loading metrics.

    Returns:
        (records, metrics): `Record`s from `parallel_r1.data.sources`; metrics num_rows,
        num_suspect (flagged `suspect_truncated` among those kept or dropped), num_dropped,
        suspect_ids (ids of the flagged problems kept), location.

    Raises:
        DataError: a malformed data file. UnknownNameError: an unknown data set.
    """
    if bench.loader is not None:
        records, metrics = bench.loader()
    else:
        from parallel_r1.data.sources import load_records

        records, metrics = load_records(bench.dataset, split=bench.split, local_dir=local_dir,
                                        drop_suspect=drop_suspect)
    if limit is not None:
        records = records[:limit]
    suspect = [r.id for r in records if r.extras.get("suspect_truncated")]
    return records, {**metrics, "num_rows": len(records), "suspect_ids": suspect}
