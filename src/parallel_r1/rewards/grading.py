"""Decide whether an answer equals the gold answer: graders picked by name, one answer contract.

- "math-verify" (our default): the answer contract of `rewards.contract` — the strict reading,
  the reduction of the answer line, then math-verify with our number rule and post-checks.
- "paper": the paper's math pipeline (SPEC 4.2): the paper's reading and its Minerva-style string
  normaliser, quirks included (`18.` != `18`).
- "paper-gsm8k": the paper's `gsm8k.py`: the last number after `Final Answer: ` in the last 300
  characters, `,` and `$` removed, then plain string equality.

Every grade runs under a time limit (`TIMEOUT_SECONDS`, any thread, see `rewards.deadline`); a
grade that runs out counts as wrong and is reported as `timed_out` in its `Verdict`.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass
from types import EllipsisType

from parallel_r1.registry import Registry
from parallel_r1.rewards.deadline import GradeTimeout, run_with_limit
from parallel_r1.rewards.equivalence import AnswerRefused, math_equal, parse_latex
from parallel_r1.rewards.expression import reduce_answer
from parallel_r1.rewards.letters import choice_letter, is_choice, text_equal
from parallel_r1.rewards.paper import normalize_paper
from parallel_r1.rewards.readers import ANSWER_READERS, DEFAULT_READER

Grader = Callable[[str, str], bool]
GRADERS: Registry[Grader] = Registry("grader")
DEFAULT_GRADER = "math-verify"
TIMEOUT_SECONDS = float(os.environ.get("PARALLEL_R1_GRADE_TIMEOUT", "5"))
GRADER_READINGS = {"math-verify": "strict", "paper": "paper", "paper-gsm8k": "paper-gsm8k"}


@dataclass(frozen=True)
class Verdict:
    """One graded answer: the raw answer read (None: none), whether it is right, whether the
    grade ran out of time, and whether the answer was refused as not answer-shaped (too many or
    too deeply nested brackets, `equivalence.check_shape`); in both cases `correct` is False."""

    pred: str | None
    correct: bool
    timed_out: bool = False
    refused: bool = False


def reading_of(grader: str) -> str:
    """Where `grader` reads answers: "strict" (ours, also for user graders), "paper",
    "paper-gsm8k"."""
    return GRADER_READINGS.get(grader, "strict")


def grade_detail(pred: str | None, gold: str, grader: str = DEFAULT_GRADER,
                 *, timeout: float | None | EllipsisType = ...) -> Verdict:
    """Grade one extracted answer against the gold answer, under a time limit.

    Args:
        pred: the answer as read from a response (see `read_answer`), None when there is none.
        gold: the gold answer string.
        grader: a name in GRADERS or "pkg.mod:fn" (a `(pred, gold) -> bool`).
        timeout: seconds for this grade (None: no limit; default `TIMEOUT_SECONDS`, read at
            call time, settable with the PARALLEL_R1_GRADE_TIMEOUT environment variable).

    Returns:
        The verdict; no answer and a timed-out grade are wrong.

    Raises:
        UnknownNameError: `grader` is not registered.
    """
    fn = GRADERS.get(grader)
    if pred is None:
        return Verdict(None, False)
    seconds = TIMEOUT_SECONDS if timeout is ... else timeout
    try:
        correct = run_with_limit(lambda: bool(fn(pred, str(gold))), seconds)
    except GradeTimeout:
        _recover_after_timeout()
        return Verdict(pred, False, True)
    except AnswerRefused:
        return Verdict(pred, False, refused=True)
    return Verdict(pred, correct)


def _recover_after_timeout() -> None:
    """An interrupted sympy call may leave global switches or caches half-updated: reset them."""
    import sys

    if "sympy" in sys.modules:
        from sympy.core.cache import clear_cache
        from sympy.core.parameters import global_parameters

        global_parameters.evaluate = True
        global_parameters.distribute = True
        global_parameters.exp_is_pow = False
        clear_cache()
    parser = sys.modules.get("math_verify.parser")
    for fn in (getattr(parser, n, None) for n in ("parse_latex_cached", "parse_expr_cached",
                                                   "extract_latex")):
        if fn is not None:
            fn.cache_clear()
    for cached in (parse_latex, _math_equal_cached, _equivalent_cached):
        cached.cache_clear()


def grade(pred: str | None, gold: str, grader: str = DEFAULT_GRADER) -> bool | None:
    """Grade one extracted answer: True / False, or None when `pred` is None (no answer).

    Raises:
        UnknownNameError: `grader` is not registered.
    """
    verdict = grade_detail(pred, gold, grader)
    return None if pred is None else verdict.correct


def grade_response_detail(response: str, gold: str, grader: str = DEFAULT_GRADER,
                          reader: str = DEFAULT_READER) -> Verdict:
    """Read the answer of a whole response and grade it (see `grade_detail`).

    Args:
        response: the response text, with its tags if it has any.
        gold: the gold answer.
        grader: a name in GRADERS.
        reader: where the answer is read (`rewards.readers`): "final-answer" (the grader's own
            reading of the contract; what the RL reward uses) or "common" (that, else `####`
            and `the answer is` forms, for models not trained on the contract).

    Raises:
        UnknownNameError: `grader` or `reader` is not registered.
    """
    GRADERS.get(grader)
    reading = reading_of(grader)
    pred = ANSWER_READERS.get(reader)(response, reading)
    if reading == "paper" and pred is None:
        # The paper grades "[INVALID]" against the gold: wrong unless the gold normalises to it.
        return Verdict(None, paper_equal("[INVALID]", str(gold)))
    return grade_detail(pred, gold, grader)


def grade_response(response: str, gold: str, grader: str = DEFAULT_GRADER,
                   reader: str = DEFAULT_READER) -> tuple[str | None, bool]:
    """Read and grade a whole response: (pred, correct); pred None means no answer was found.

    Raises:
        UnknownNameError: `grader` or `reader` is not registered.
    """
    verdict = grade_response_detail(response, gold, grader, reader)
    return verdict.pred, verdict.correct


def equivalent(a: str, b: str, grader: str = DEFAULT_GRADER) -> bool:
    """Whether two answers (as read from responses) count as the same answer for `grader`.

    Used to group votes (Maj@k, self-consistency); `b` plays the gold. Cached; a timed-out
    comparison counts as different. For the default grader two answers that name different
    choice letters (`(B) 12`, `(C) 12`; or a letter and none) are different answers (a letter
    gold grades them differently), and a bare letter is the same answer as that letter with a
    value (`C`, `(C) 12`).
    """
    if a == b:
        return True
    if grader == DEFAULT_GRADER:
        letter = choice_letter(a)
        if letter != choice_letter(b):
            return False
        if letter is not None and (is_choice(a) or is_choice(b)):
            return True  # `C` and `(C) 12` name one choice
    return _equivalent_cached(a, b, grader)


@functools.lru_cache(maxsize=65536)
def _equivalent_cached(a: str, b: str, grader: str) -> bool:
    return grade_detail(a, b, grader).correct


# --------------------------------------------------------------------------- the graders


@GRADERS.register("math-verify")
def math_verify_equal(pred: str, gold: str) -> bool:
    """Our grader: both sides reduced (`rewards.expression`), then compared as choices, words or
    math (`rewards.equivalence`). Never raises."""
    gold_reduced = reduce_answer(gold)
    if is_choice(gold):
        return choice_letter(pred) == choice_letter(gold)
    pred_reduced = reduce_answer(pred)
    if pred_reduced.kind == "empty" or gold_reduced.kind == "empty":
        return False
    if pred_reduced.kind == "text" or gold_reduced.kind == "text":
        return text_equal(pred_reduced, gold_reduced)
    return _math_equal_cached(pred_reduced.value, gold_reduced.value)


@functools.lru_cache(maxsize=65536)
def _math_equal_cached(pred: str, gold: str) -> bool:
    return math_equal(pred, gold)


@GRADERS.register("paper")
def paper_equal(pred: str, gold: str) -> bool:
    """The paper's math grader: normalised strings are equal."""
    return normalize_paper(pred) == normalize_paper(gold)


@GRADERS.register("paper-gsm8k")
def paper_gsm8k_equal(pred: str, gold: str) -> bool:
    """The paper's GSM8K grader: `,` and `$` removed from the prediction, then `==` (no strip)."""
    return pred.replace(",", "").replace("$", "") == gold


__all__ = ["DEFAULT_GRADER", "GRADERS", "GRADER_READINGS", "TIMEOUT_SECONDS", "Verdict", "equivalent",
           "grade", "grade_detail", "grade_response", "grade_response_detail", "math_verify_equal",
           "normalize_paper", "paper_equal", "paper_gsm8k_equal", "reading_of"]
