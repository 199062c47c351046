"""The "fork" family of the synthetic task: a choice that must be computed, blocks by a coin, slips.

Level `forkN` is the trap family's chain (`parallel_r1.data.trap`: N ordinary steps with the
numbers of level 1 and one inserted choice) with three changes, each aimed at a reason the trap
task gave blocks nothing to win or lose (issue 21, problem 4):
- the choice's rule is a range ("Then 3 or 9 apples are given away, so that between 12 and 17 are
  left."): the right amount's result lies inside, the other's outside, above or below at random,
  so neither the larger nor the smaller amount is a rule and no parity-like shortcut exists; the
  right one is found by computing both (`EXPLORE`), or guessed;
- whether a part is written as a block is its own coin (`P_BLOCK`), apart from its content
  (explore, verify, two routes): the parallel teacher's traces mix blocked and sequential versions
  of the same content, so RL can move the parallel ratio either way;
- when the teacher re-checks the final step (`VERIFY`), the line it wrote first has a slip (result
  off by 1 or 2) with probability `SLIP`; the check re-derives the value and its conclusion
  corrects it ("So it is 26, not 25."). No slip is left unverified: every trace ends in the answer.
The plain trace has the same lines without tags. Deterministic from (seed, level, index).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from parallel_r1.data.sources import Record
from parallel_r1.data.synthetic import (
    _LATER_STEPS,
    ITEMS,
    NAMES,
    Step,
    _add_step,
    _mul_step,
    _sub_step,
)
from parallel_r1.data.trap import NUMBERS, Part, TrapProblem, write_trap_trace
from parallel_r1.errors import ConfigError

MAX_FORK_LEVEL = 5
EXPLORE, VERIFY, ROUTES = 0.6, 0.5, 0.4  # the teacher's content coins (see the module docstring)
P_BLOCK = 0.5   # a part with block-able content is written as a block with this probability
SLIP = 0.3      # a re-checked final line was first written with a slip
MAX_AMOUNT = 9  # choice amounts are 1..MAX_AMOUNT


@dataclass(frozen=True)
class ForkProblem(TrapProblem):
    """A fork-family problem: a TrapProblem plus what diagnostics need."""

    candidates: tuple[int, int] = (0, 0)  # the choice's two amounts, in question order
    right: int = 0                        # the amount whose result lies in the range
    slip: bool = False                    # the final line is first written wrong, then fixed


def _choice(rng: random.Random, total: int,
            item: str) -> tuple[Step, tuple[int, int], tuple[int, int]]:
    """(step with the right amount, the amounts in question order, the range)."""
    while True:
        give = total > 4 and rng.random() < 0.5
        sign = -1 if give else 1
        right = rng.randint(1, min(MAX_AMOUNT, total - 2) if give else MAX_AMOUNT)
        value = total + sign * right
        width = rng.randint(2, 5)
        low = value - rng.randint(0, min(width, value - 1))
        high = low + width
        # the other amount's result: above the range or below it, by 1..3
        above = rng.random() < 0.5
        other_value = high + rng.randint(1, 3) if above else low - rng.randint(1, 3)
        other = sign * (other_value - total)
        if 1 <= other <= MAX_AMOUNT and other_value >= 0:
            break
    op = "-" if give else "+"
    rule = f"so that between {low} and {high} are {'left' if give else 'there'}"
    what = f"{item} are given away" if give else f"more {item} are added"
    a, b = (right, other) if rng.random() < 0.5 else (other, right)
    step = Step(f"Then {a} or {b} {what}, {rule}.", f"{total}{op}{right}={value}", value, ())
    return step, (a, b), (low, high)


def _part(lines: tuple[str, ...], conclusion: str, as_block: bool) -> Part:
    """A block (lines as paths, conclusion as summary) or the same lines one after another."""
    return Part(lines, conclusion, True) if as_block else Part((*lines, conclusion))


def _explore(prev: int, step: Step, amounts: tuple[int, int], bounds: tuple[int, int],
             item: str, rng: random.Random) -> Part:
    if rng.random() >= EXPLORE:  # the right amount at once (what a guess looks like)
        return Part((step.line,))
    op = "-" if step.value < prev else "+"
    lines = tuple(f"{prev}{op}{a}={prev - a if op == '-' else prev + a}" for a in amounts)
    low, high = bounds
    return _part(lines, f"Only {step.value} is between {low} and {high}, so {step.value} {item}.",
                 rng.random() < P_BLOCK)


def _check(prev: int, step: Step, item: str, slipped: int | None, as_block: bool) -> Part:
    """Two lines that re-derive the final value from the previous one; the conclusion fixes a
    slip (`slipped`: the wrong value written first)."""
    value, diff = step.value, abs(step.value - prev)
    if value == 2 * prev and diff == prev:  # a doubling
        lines = (f"2*{prev}={value}", f"{prev}+{prev}={value}")
    elif value > prev:
        lines = (f"{prev}+{diff}={value}", f"{diff}+{prev}={value}")
    else:
        lines = (f"{prev}-{diff}={value}", f"{value}+{diff}={prev}")
    conclusion = (f"So it is {value}, not {slipped}." if slipped is not None
                  else f"Both check out: {value} {item}.")
    return _part(lines, conclusion, as_block)


def _slip_line(line: str, rng: random.Random) -> tuple[str, int]:
    lhs, value = line.rsplit("=", 1)
    wrong = int(value) + rng.choice([-2, -1, 1, 2] if int(value) > 2 else [1, 2])
    return f"{lhs}={wrong}", wrong


def make_fork_problem(seed: int, level: int, index: int) -> ForkProblem:
    """Problem number `index` of fork level `level` for `seed`.

    Raises:
        ConfigError: `level` outside 1..MAX_FORK_LEVEL.
    """
    if not 1 <= level <= MAX_FORK_LEVEL:
        raise ConfigError(f"fork level must be in 1..{MAX_FORK_LEVEL}, got {level}",
                          field="level")
    rng = random.Random(f"fork:{seed}:{level}:{index}")
    name, item = rng.choice(NAMES), rng.choice(ITEMS)
    steps = [_mul_step(rng, NUMBERS, name, item)]
    parts: list[Part] = [Part((steps[0].line,))]
    choice_at = rng.randint(1, level)
    route_at = rng.randint(1, level) if level >= 2 and rng.random() < ROUTES else -1
    candidates, right = (0, 0), 0
    for i in range(1, level + 1):
        prev = steps[-1].value
        if i == choice_at:
            step, candidates, bounds = _choice(rng, prev, item)
            right = abs(step.value - prev)
            steps.append(step)
            parts.append(_explore(prev, step, candidates, bounds, item, rng))
            prev = step.value
        maker = rng.choice(_LATER_STEPS[: 2 + min(level, 2)])
        if maker is _sub_step and prev < 2:  # a give-away step needs something to give
            maker = _add_step
        step = maker(rng, NUMBERS, prev, item)
        steps.append(step)
        if i == route_at:
            parts.append(_part(step.routes[:2], f"Both give {step.value} {item}.",
                               rng.random() < P_BLOCK))
        else:
            parts.append(Part((step.line,)))
    slip = False
    if rng.random() < VERIFY:
        slipped = None
        slip = route_at != level and rng.random() < SLIP  # a single final line can slip
        if slip:
            line, slipped = _slip_line(parts[-1].lines[0], rng)
            parts[-1] = Part((line,))
        parts.append(_check(steps[-2].value, steps[-1], item, slipped, rng.random() < P_BLOCK))
    question = " ".join(s.sentence for s in steps) + f" How many {item} are there now?"
    return ForkProblem(question, steps[-1].value, tuple(parts), candidates, right, slip)


def fork_record(seed: int, level: int, index: int) -> Record:
    """One fork problem as a Record.

    extras: `level` ("forkN"), `trajectory` (with blocks), `trajectory_plain` (same lines, no
    tags), `candidates` (the two amounts in question order), `right` (the right amount), `slip`.
    """
    problem = make_fork_problem(seed, level, index)
    extras = {"level": f"fork{level}", "trajectory": write_trap_trace(problem),
              "trajectory_plain": write_trap_trace(problem, blocks=False),
              "candidates": list(problem.candidates), "right": problem.right,
              "slip": problem.slip}
    return Record(f"synth-fork{level}-s{seed}-{index:05d}", problem.question,
                  str(problem.answer), "synthetic", extras)


def generate_fork(levels: int | tuple[int, ...], count: int, seed: int = 0) -> list[Record]:
    """`count` fork problems as Records (extras as `fork_record`'s).

    Args:
        levels: one level, or several taken in turn (record i is problem i // len(levels) of
            level levels[i % len(levels)], so a mix holds the single levels' first problems).

    Raises:
        ConfigError: count < 0 or a level outside 1..MAX_FORK_LEVEL.
    """
    if count < 0:
        raise ConfigError(f"count must be >= 0, got {count}", field="count")
    levels = (levels,) if isinstance(levels, int) else tuple(levels)
    return [fork_record(seed, levels[i % len(levels)], i // len(levels)) for i in range(count)]
