"""The "trap" family of the synthetic task: a choice step that pays for exploring, and re-checks.

Beside today's levels (`synthetic`), level `trapN` is a chain of N of the same steps (with the
numbers of level 1 at every N: a harder level is a longer chain, not bigger numbers) and one more
step inserted at a random place: a *choice* between two amounts, of which exactly one leaves an
even count ("Then 3 or 4 apples are given away, so that an even number is left."). The other
amount is the trap: it looks as plausible and leaves an odd count. Exploring pays: writing both
candidates and keeping the even one is always right; writing one amount at a guess is right half
of the time unless the writer has learnt the parity rule.

The teacher writes the same content whether or not it uses blocks, so the sequential and the
parallel traces differ only in structure (honest by design: no arm is handed more information):
- at the choice step it explores with probability `EXPLORE` (both candidates, then "B is even,
  so B"), else it writes the right amount at once (the shortcut a guessing model would take);
- after the last step it re-checks the final value with probability `VERIFY` (two lines that
  re-derive numbers already written: the previous value and the final one);
- at levels >= 2 it writes one ordinary step by two routes with probability `ROUTES`.
In the parallel trace each of these is one block (its lines become paths, its conclusion the
summary); in the plain trace they are the same lines one after another. The block classifier of
`parallel_r1.eval.analysis` sees the choice block as exploration and the re-check as verification.
Deterministic from (seed, level, index), independent of how many problems are generated.
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

MAX_TRAP_LEVEL = 5
EXPLORE, VERIFY, ROUTES = 0.5, 0.5, 0.5  # teacher's probabilities (see the module docstring)
NUMBERS = 1  # the `synthetic` level whose number ranges every trap level uses


@dataclass(frozen=True)
class Part:
    """One unit of a trace: lines written one after another, or (as a block) paths + summary."""

    lines: tuple[str, ...]     # the paths when `is_block`
    conclusion: str = ""       # the summary when `is_block`; the last line otherwise
    is_block: bool = False


@dataclass(frozen=True)
class TrapProblem:
    """A trap-family problem: the question, the answer, and the teacher's parts."""

    question: str
    answer: int
    parts: tuple[Part, ...]


def _choice(rng: random.Random, level: int, total: int, item: str) -> tuple[Step, int, int]:
    """A choice step: (step with the right amount, the amounts in question order)."""
    hi = 3 + 3 * level
    first = rng.randint(1, hi)
    second = first + rng.choice([k for k in range(-hi, hi + 1)
                                 if k % 2 and 1 <= first + k <= hi])  # odd gap: parities differ
    give = total > hi + 1 and rng.random() < 0.5
    sign = -1 if give else 1
    right = first if (total + sign * first) % 2 == 0 else second
    value = total + sign * right
    op = "-" if give else "+"
    sentence = (f"Then {first} or {second} {item} are given away, so that an even number is left."
                if give else
                f"Then {first} or {second} more {item} are added, so that an even number is there.")
    return Step(sentence, f"{total}{op}{right}={value}", value, ()), first, second


def _explore_part(prev: int, step: Step, amounts: tuple[int, int], item: str,
                  explore: bool) -> Part:
    op = "-" if step.value < prev else "+"
    if not explore:
        return Part((step.line,), "")
    lines = tuple(f"{prev}{op}{a}={prev - a if op == '-' else prev + a}" for a in amounts)
    return Part(lines, f"{step.value} is even, so {step.value} {item}.", is_block=True)


def _check_part(prev: int, step: Step, item: str) -> Part:
    """Two lines that re-derive the previous value and the final one from written numbers."""
    value, diff = step.value, abs(step.value - prev)
    if value == 2 * prev and diff == prev:  # a doubling
        lines = (f"{value}-{prev}={prev}", f"2*{prev}={value}")
    elif value > prev:
        lines = (f"{value}-{diff}={prev}", f"{prev}+{diff}={value}")
    else:
        lines = (f"{value}+{diff}={prev}", f"{prev}-{diff}={value}")
    return Part(lines, f"Both check out: {value} {item}.", is_block=True)


def make_trap_problem(seed: int, level: int, index: int) -> TrapProblem:
    """Problem number `index` of trap level `level` for `seed`.

    Raises:
        ConfigError: `level` outside 1..MAX_TRAP_LEVEL.
    """
    if not 1 <= level <= MAX_TRAP_LEVEL:
        raise ConfigError(f"trap level must be in 1..{MAX_TRAP_LEVEL}, got {level}", field="level")
    rng = random.Random(f"trap:{seed}:{level}:{index}")
    name, item = rng.choice(NAMES), rng.choice(ITEMS)
    steps = [_mul_step(rng, NUMBERS, name, item)]
    choice_at = rng.randint(1, level)
    parts: list[Part] = [Part((steps[0].line,))]
    route_at = rng.randint(1, level) if level >= 2 and rng.random() < ROUTES else -1
    for i in range(1, level + 1):
        prev = steps[-1].value
        if i == choice_at:
            step, a, b = _choice(rng, NUMBERS, prev, item)
            steps.append(step)
            parts.append(_explore_part(prev, step, (a, b), item, rng.random() < EXPLORE))
            prev = step.value
        maker = rng.choice(_LATER_STEPS[: 2 + min(level, 2)])
        if maker is _sub_step and prev < 2:  # a give-away step needs something to give
            maker = _add_step
        step = maker(rng, NUMBERS, prev, item)
        steps.append(step)
        if i == route_at:
            parts.append(Part(step.routes[:2], f"Both give {step.value} {item}.", is_block=True))
        else:
            parts.append(Part((step.line,)))
    if rng.random() < VERIFY:
        parts.append(_check_part(steps[-2].value, steps[-1], item))
    question = " ".join(s.sentence for s in steps) + f" How many {item} are there now?"
    return TrapProblem(question, steps[-1].value, tuple(parts))


def write_trap_trace(problem: TrapProblem, *, blocks: bool = True) -> str:
    """The teacher's solution: blocks for the block parts when `blocks`, else the same lines.

    Returns:
        canonical parallel-format text ending with "Final Answer: N" (no tags when not `blocks`).
    """
    out = []
    for part in problem.parts:
        if part.is_block and blocks:
            paths = "".join(f"{PATH_OPEN}\n{line}\n{PATH_CLOSE}" for line in part.lines)
            out.append(f"{PARALLEL_OPEN}{paths}{PARALLEL_CLOSE}\n"
                       f"{SUMMARY_OPEN}\n{part.conclusion}\n{SUMMARY_CLOSE}\n")
        else:
            out.extend(f"{line}\n" for line in part.lines)
            if part.is_block:
                out.append(f"{part.conclusion}\n")
    return "".join(out) + f"{ANSWER_PREFIX} {problem.answer}"


def generate_trap(level: int, count: int, seed: int = 0) -> list[Record]:
    """`count` trap problems of `level` as Records (extras as `synthetic.generate`'s).

    extras: `level` ("trapN"), `trajectory` (with blocks), `trajectory_plain` (same lines, no tags).
    """
    if count < 0:
        raise ConfigError(f"count must be >= 0, got {count}", field="count")
    records = []
    for index in range(count):
        problem = make_trap_problem(seed, level, index)
        extras = {"level": f"trap{level}", "trajectory": write_trap_trace(problem),
                  "trajectory_plain": write_trap_trace(problem, blocks=False)}
        records.append(Record(f"synth-trap{level}-s{seed}-{index:05d}", problem.question,
                              str(problem.answer), "synthetic", extras))
    return records
