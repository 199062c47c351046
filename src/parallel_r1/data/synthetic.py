"""An offline task family: short arithmetic word problems and a teacher that solves them in parallel.

A problem is a chain of steps on one quantity (buy bags of items, get more, give some away, ...).
The teacher writes each step as a line; at the steps it opens a block for, its paths reach the
same intermediate value by genuinely different routes (repeated addition vs. product vs. a split
product; tens-and-ones vs. direct sum; missing addend vs. subtraction), and the summary states the
value they agree on. `level` scales the numbers, the number of steps and the number of blocks.
Everything is deterministic from (seed, level, index).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from parallel_r1.data.sources import Record, write_jsonl
from parallel_r1.errors import ConfigError
from parallel_r1.format.tags import (
    ANSWER_PREFIX,
    PARALLEL_CLOSE,
    PARALLEL_OPEN,
    PATH_CLOSE,
    PATH_OPEN,
    SUMMARY_CLOSE,
    SUMMARY_OPEN,
)

MAX_LEVEL = 5
NAMES = ("Ann", "Bo", "Cy", "Dee", "Eli", "Fay", "Gus", "Ivy")
ITEMS = ("apples", "coins", "books", "pens", "eggs", "cards", "shells", "beads")


@dataclass(frozen=True)
class Step:
    """One operation: its sentence in the problem, the plain solution line, and routes to it."""

    sentence: str      # text in the question
    line: str          # the sequential solution line ("3*4=12")
    value: int         # the quantity after this step
    routes: tuple[str, ...]  # >= 2 independent ways to the same value (for a block)


def _mul_step(rng: random.Random, level: int, name: str, item: str) -> Step:
    bags, each = rng.randint(2, 2 + level), rng.randint(2, 4 + 3 * level)
    value = bags * each
    routes = [f"{bags}*{each}={value}",
              f"{bags - 1}*{each}+{each}={(bags - 1) * each}+{each}={value}"]
    if bags <= 4:
        routes.insert(0, "+".join([str(each)] * bags) + f"={value}")
    return Step(f"{name} has {bags} bags of {each} {item}.", f"{bags}*{each}={value}", value,
                tuple(routes))


def _add_step(rng: random.Random, level: int, total: int, item: str) -> Step:
    more = rng.randint(2, 5 + 4 * level)
    value = total + more
    tens, ones = divmod(more, 10)
    pad = -total % 10  # what takes `total` up to the next ten
    if 0 < pad < more:  # make a ten first, then add the rest
        split = f"{total}+{pad}={total + pad}, {total + pad}+{more - pad}={value}"
    elif tens and ones:  # add the tens, then the ones
        split = f"{total}+{tens * 10}={total + tens * 10}, {total + tens * 10}+{ones}={value}"
    else:  # add it in two hops
        half = more // 2
        split = f"{total}+{half}={total + half}, {total + half}+{more - half}={value}"
    return Step(f"Then {more} more {item} are added.", f"{total}+{more}={value}", value,
                (f"{total}+{more}={value}", split))


def _sub_step(rng: random.Random, level: int, total: int, item: str) -> Step:
    less = rng.randint(1, max(1, total - 1))
    value = total - less
    return Step(f"Then {less} {item} are given away.", f"{total}-{less}={value}", value,
                (f"{total}-{less}={value}", f"{less}+{value}={total}, so {value} are left"))


def _double_step(rng: random.Random, level: int, total: int, item: str) -> Step:
    value = 2 * total
    return Step(f"Then the number of {item} doubles.", f"2*{total}={value}", value,
                (f"2*{total}={value}", f"{total}+{total}={value}"))


_LATER_STEPS: tuple[Callable[[random.Random, int, int, str], Step], ...] = (
    _add_step, _sub_step, _add_step, _double_step)


@dataclass(frozen=True)
class Problem:
    """A generated problem: the question, its steps, which steps get a block, and the answer."""

    question: str
    steps: tuple[Step, ...]
    block_steps: tuple[int, ...]
    num_paths: tuple[int, ...]
    item: str

    @property
    def answer(self) -> int:
        return self.steps[-1].value


def make_problem(seed: int, level: int, index: int) -> Problem:
    """Problem number `index` of `level` for `seed` (independent of how many are generated).

    Raises:
        ConfigError: `level` outside 1..MAX_LEVEL.
    """
    if not 1 <= level <= MAX_LEVEL:
        raise ConfigError(f"level must be in 1..{MAX_LEVEL}, got {level}", field="level")
    rng = random.Random(f"synthetic:{seed}:{level}:{index}")  # str seeds are stable across runs
    name, item = rng.choice(NAMES), rng.choice(ITEMS)
    steps = [_mul_step(rng, level, name, item)]
    for _ in range(level):
        maker = rng.choice(_LATER_STEPS[: 2 + min(level, 2)])
        if maker is _sub_step and steps[-1].value < 2:  # keep every count positive
            maker = _add_step
        steps.append(maker(rng, level, steps[-1].value, item))
    num_blocks = 1 if level < 3 else 2
    block_steps = tuple(sorted(rng.sample(range(len(steps)), num_blocks)))
    num_paths = tuple(
        3 if len(steps[i].routes) > 2 and level > 1 and rng.random() < 0.3 else 2
        for i in block_steps)
    question = " ".join(s.sentence for s in steps) + f" How many {item} are there now?"
    return Problem(question, tuple(steps), block_steps, num_paths, item)


def _block(step: Step, num_paths: int, item: str) -> str:
    paths = "".join(f"{PATH_OPEN}\n{route}\n{PATH_CLOSE}" for route in step.routes[:num_paths])
    agree = "Both" if num_paths == 2 else "All"
    return (f"{PARALLEL_OPEN}{paths}{PARALLEL_CLOSE}\n"
            f"{SUMMARY_OPEN}\n{agree} give {step.value} {item}.\n{SUMMARY_CLOSE}\n")


def write_trace(problem: Problem, *, blocks: bool = True) -> str:
    """The teacher's solution: one line per step, blocks at `problem.block_steps` when `blocks`.

    Returns:
        canonical parallel-format text ending with "Final Answer: N" (no tags when not `blocks`).
    """
    parts = []
    for i, step in enumerate(problem.steps):
        if blocks and i in problem.block_steps:
            k = problem.block_steps.index(i)
            parts.append(_block(step, problem.num_paths[k], problem.item))
        else:
            parts.append(step.line + "\n")
    return "".join(parts) + f"{ANSWER_PREFIX} {problem.answer}"


def generate(level: int, count: int, seed: int = 0) -> list[Record]:
    """`count` problems of `level` as Records; extras hold both traces and the level.

    extras: `level`, `trajectory` (with blocks), `trajectory_plain` (same steps, no tags).
    """
    if count < 0:
        raise ConfigError(f"count must be >= 0, got {count}", field="count")
    records = []
    for index in range(count):
        problem = make_problem(seed, level, index)
        extras = {"level": level, "trajectory": write_trace(problem),
                  "trajectory_plain": write_trace(problem, blocks=False)}
        records.append(Record(f"synth-l{level}-s{seed}-{index:05d}", problem.question,
                              str(problem.answer), "synthetic", extras))
    return records


def write_synthetic(out: str, *, level: int, count: int, seed: int = 0,
                    blocks: bool = True) -> dict[str, Any]:
    """Write id, source, question, answer, level, completion (the trace; plain when not `blocks`).

    The file is written atomically.

    Returns:
        metrics: num_rows, level, seed, out.
    """
    key = "trajectory" if blocks else "trajectory_plain"
    rows = [{"id": r.id, "source": r.source, "question": r.question, "answer": r.answer,
             "level": level, "completion": r.extras[key]} for r in generate(level, count, seed)]
    return {"num_rows": write_jsonl(out, rows), "level": level, "seed": seed, "out": str(out)}


def _fork_levels(text: str) -> tuple[int, ...]:
    """"3" -> (3,); "1-3" -> (1, 2, 3) (raises ValueError when malformed or reversed)."""
    first, dash, last = text.partition("-")
    levels = tuple(range(int(first), int(last if dash else first) + 1))
    if not levels:
        raise ValueError(text)
    return levels


def from_spec(spec: str) -> list[Record]:
    """Records for a data spec "synthetic:LEVEL:COUNT[:SEED]" (the recipes' `data` field).

    LEVEL is 1..MAX_LEVEL (this module's task), trap1..trap5 (`parallel_r1.data.trap`), fork1..fork5
    (`parallel_r1.data.fork`) or a mix of fork levels taken in turn, forkA-B (e.g. fork1-3: record
    i is of level 1 + i % 3), with an optional "/plain" suffix: then each record's `completion` is
    the plain trace (no blocks), which SFT reads first, e.g. "synthetic:trap1/plain:2000:0" for a
    sequential cold start, "synthetic:fork1-3/plain:6000:0" to pretrain a base on three levels.

    Raises:
        ConfigError: a malformed spec or an unknown level (the message names the forms).
    """
    parts = spec.split(":")[1:]
    level, _, variant = (parts[0] if parts else "").partition("/")
    try:
        count, seed = (int(p) for p in (parts[1:] + ["0"])[:2])
        if len(parts) not in (2, 3) or variant not in ("", "plain"):
            raise ValueError
        if level.startswith("trap"):
            from parallel_r1.data.trap import generate_trap

            records = generate_trap(int(level[4:]), count, seed=seed)
        elif level.startswith("fork"):
            from parallel_r1.data.fork import generate_fork

            records = generate_fork(_fork_levels(level[4:]), count, seed=seed)
        else:
            records = generate(int(level), count, seed=seed)
    except (ValueError, ConfigError):
        raise ConfigError(f"'{spec}' is not synthetic:LEVEL[/plain]:COUNT[:SEED] with LEVEL "
                          f"1..{MAX_LEVEL}, trap1..trap5, fork1..fork5 or forkA-B (fork levels A "
                          "to B in turn) and COUNT >= 0", field="data") from None
    if variant == "plain":
        for record in records:
            record.extras["completion"] = record.extras["trajectory_plain"]
    return records
