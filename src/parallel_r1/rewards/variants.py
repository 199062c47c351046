"""Every reward variant of the paper (SPEC 4.3), by its paper name, in the REWARDS registry.

Naming: the math family (DAPO, AIME, AMC, MATH) keeps the paper's `reward_method` names
("accuracy_reward", "emphase_parallel", ...); the GSM8K family is "gsm8k/<paper name>"
("gsm8k/accuracy_times_special_token_reward"); a variant that exists only in the stale `build/`
copy of the original ends in "@build". Each is `(response, gold, *, grader, step) -> (score, parts)`
with the response holding its tags. `grader="paper"` (the default here) reproduces the paper's
whole answer pipeline for the family, quirks included (last 300 characters of the tag-free text;
GSM8K parallel rewards take the FIRST `Final Answer:` number) and its format rule f (SPEC 1.3:
empty paths pass). Any other grader follows the answer contract (`rewards.contract`): the strict
reading and the strict format rule, so a block whose paths or summary hold nothing is malformed
(f = 0) and earns no parallel bonus; the two rewards that ignore f in the paper
(`accuracy_parallel_reward`, `accuracy_add_parallel_add_diversity_reward`) count only
well-formed blocks with content there.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from parallel_r1.registry import Registry
from parallel_r1.rewards.answer import extract_gsm8k_number, strip_tags
from parallel_r1.rewards.grading import grade_response_detail, reading_of
from parallel_r1.rewards.parallel import (
    efficiency_gain,
    has_block,
    is_format_valid,
    num_blocks,
    num_valid_blocks,
    self_bleu,
)

Parts = dict[str, object]
RewardFn = Callable[..., tuple[float, Parts]]
REWARDS: Registry[RewardFn] = Registry("reward")
PAPER = "paper"


def format_mode(grader: str) -> str:
    """The format rule a grader's rewards use: "paper" for the paper's graders, else "strict"."""
    return "strict" if reading_of(grader) == "strict" else "paper"


def math_facts(response: str, gold: str, grader: str = PAPER) -> tuple[bool, Parts]:
    """c, n and f of a math-family response: (correct, {"acc", "pred", "num_parallel",
    "format_ok", "grade_timed_out"})."""
    verdict = grade_response_detail(response, gold, grader)
    parts: Parts = {"acc": float(verdict.correct), "pred": verdict.pred,
                    "num_parallel": num_blocks(response),
                    "format_ok": float(is_format_valid(response, format_mode(grader))),
                    "grade_timed_out": float(verdict.timed_out)}
    return verdict.correct, parts


def _paid_blocks(response: str, grader: str, parts: Parts) -> int:
    """n for the rewards that ignore f: every `<Parallel>` (paper), well-formed blocks (strict)."""
    if format_mode(grader) == "paper":
        return int(parts["num_parallel"])
    return num_valid_blocks(response)


def gsm8k_facts(response: str, gold: str, grader: str = PAPER, *,
                first: bool = True) -> tuple[bool | None, Parts]:
    """c of a GSM8K-family response (None: no answer found), plus "has_parallel" and "format_ok"."""
    timed_out = False
    if grader == PAPER:
        pred = extract_gsm8k_number(strip_tags(response), first=first)
        correct = None if pred is None else pred == gold
    else:
        verdict = grade_response_detail(response, gold, grader)
        pred, timed_out = verdict.pred, verdict.timed_out
        correct = None if pred is None else verdict.correct
    parts: Parts = {"acc": float(bool(correct)), "pred": pred,
                    "has_answer": float(pred is not None),
                    "has_parallel": float(has_block(response)),
                    "format_ok": float(is_format_valid(response, format_mode(grader))),
                    "grade_timed_out": float(timed_out)}
    return correct, parts


def _pm(correct: bool) -> float:
    return 1.0 if correct else -1.0


def _tiered(correct: bool, parts: Parts, bonus: float) -> float:
    """1.0 correct with no block; `bonus` correct with well-formed blocks; -1 otherwise."""
    if not correct:
        return -1.0
    if parts["num_parallel"] == 0:
        return 1.0
    return bonus if parts["format_ok"] else -1.0


def _parallel_ok(parts: Parts) -> bool:
    return parts["num_parallel"] >= 1 and bool(parts["format_ok"])


# --------------------------------------------------------------------------- math family


@REWARDS.register("accuracy_reward")
def accuracy(response: str, gold: str, *, grader: str = PAPER, step: int = 1):
    """+1 if correct else -1."""
    correct, parts = math_facts(response, gold, grader)
    return _pm(correct), parts


@REWARDS.register("emphase_parallel")
def emphase_parallel(response: str, gold: str, *, grader: str = PAPER, step: int = 1):
    """1.0 correct without a block; 1.2 correct with well-formed blocks; else -1."""
    correct, parts = math_facts(response, gold, grader)
    return _tiered(correct, parts, 1.2), parts


@REWARDS.register("accuracy_parallel_interv_reward")
def accuracy_parallel_interv(response: str, gold: str, *, grader: str = PAPER, step: int = 1):
    """S2: accuracy at steps with (s-1) mod 10 < 8, emphase_parallel at the other two."""
    if step < 1:
        raise ValueError(f"global steps start at 1, got step={step}")
    if (step - 1) % 10 < 8:
        return accuracy(response, gold, grader=grader, step=step)
    return emphase_parallel(response, gold, grader=grader, step=step)


@REWARDS.register("accuracy_add_parallel_reward")
def accuracy_add_parallel(response: str, gold: str, *, grader: str = PAPER, step: int = 1):
    """(+-1) + 0.5 if there are well-formed blocks."""
    correct, parts = math_facts(response, gold, grader)
    return _pm(correct) + 0.5 * _parallel_ok(parts), parts


@REWARDS.register("accuracy_times_parallel_reward")
@REWARDS.register("format_times_accuracy_times_parallel_reward")
def accuracy_times_parallel(response: str, gold: str, *, grader: str = PAPER, step: int = 1):
    """+1 if correct with well-formed blocks, else -1."""
    correct, parts = math_facts(response, gold, grader)
    return _pm(correct and _parallel_ok(parts)), parts


@REWARDS.register("accuracy_parallel_reward")
def accuracy_parallel(response: str, gold: str, *, grader: str = PAPER, step: int = 1):
    """(+-1) + sqrt(n): unbounded in n, format ignored (as in the paper)."""
    correct, parts = math_facts(response, gold, grader)
    return _pm(correct) + math.sqrt(_paid_blocks(response, grader, parts)), parts


@REWARDS.register("emphase_acc")
def emphase_acc(response: str, gold: str, *, grader: str = PAPER, step: int = 1):
    """1.0 if correct and (no block or well formed), else -1."""
    correct, parts = math_facts(response, gold, grader)
    return _tiered(correct, parts, 1.0), parts


@REWARDS.register("emphase_parallel_enhance")
def emphase_parallel_enhance(response: str, gold: str, *, grader: str = PAPER, step: int = 1):
    """1.0 correct without a block; 2.0 correct with well-formed blocks; else -1."""
    correct, parts = math_facts(response, gold, grader)
    return _tiered(correct, parts, 2.0), parts


@REWARDS.register("emphase_parallel_add_diversity")
def emphase_parallel_add_diversity(response: str, gold: str, *, grader: str = PAPER,
                                   step: int = 1):
    """1.0 correct without a block; 1.2 - 0.2*B correct with well-formed blocks; else -1."""
    correct, parts = math_facts(response, gold, grader)
    score = _tiered(correct, parts, 1.2)
    if score == 1.2:
        parts["self_bleu"] = self_bleu(response)
        score = 1.2 - 0.2 * parts["self_bleu"]
    return score, parts


@REWARDS.register("accuracy_add_diversity_reward")
def accuracy_add_diversity(response: str, gold: str, *, grader: str = PAPER, step: int = 1):
    """(+-1) - 0.3*B (B = 1 without blocks)."""
    correct, parts = math_facts(response, gold, grader)
    parts["self_bleu"] = self_bleu(response)
    return _pm(correct) - 0.3 * parts["self_bleu"], parts


@REWARDS.register("accuracy_add_parallel_add_diversity_reward")
def accuracy_add_parallel_add_diversity(response: str, gold: str, *, grader: str = PAPER,
                                        step: int = 1):
    """(+-1) + [n >= 1] - 0.3*B (no format check, as in the paper)."""
    correct, parts = math_facts(response, gold, grader)
    parts["self_bleu"] = self_bleu(response)
    has = _paid_blocks(response, grader, parts) >= 1
    return _pm(correct) + float(has) - 0.3 * parts["self_bleu"], parts


def _efficiency(response: str, gold: str, grader: str, scale: float) -> tuple[float, Parts]:
    correct, parts = math_facts(response, gold, grader)
    gain, extras = efficiency_gain(response)
    parts.update(extras, eff_gain=gain)
    score = 1.0 + 0.4 * scale * gain if correct else -1.0 + 0.1 * scale * gain
    return score, parts


@REWARDS.register("accuracy_add_efficiency_reward")
def accuracy_add_efficiency(response: str, gold: str, *, grader: str = PAPER, step: int = 1):
    """Correct: 1 + 0.4*e; wrong: -1 + 0.1*e (e = efficiency gain)."""
    return _efficiency(response, gold, grader, 1.0)


@REWARDS.register("accuracy_add_efficiency_reward_decay")
def accuracy_add_efficiency_decay(response: str, gold: str, *, grader: str = PAPER,
                                  step: int = 1):
    """As accuracy_add_efficiency_reward with both coefficients times exp(-s/50)."""
    ratio = math.exp(-step / 50.0)
    score, parts = _efficiency(response, gold, grader, ratio)
    parts["ratio"] = ratio
    return score, parts


@REWARDS.register("format_accuracy_parallel_reward@build")
def format_accuracy_parallel(response: str, gold: str, *, grader: str = PAPER, step: int = 1):
    """(+-1) + (0.3 if f else -0.3) + [c and f]*0.6*ln(1+n) - [not c and n>0]*0.1*ln(1+n)."""
    correct, parts = math_facts(response, gold, grader)
    n, f = parts["num_parallel"], bool(parts["format_ok"])
    score = _pm(correct) + (0.3 if f else -0.3)
    score += 0.6 * math.log1p(n) if correct and f else 0.0
    score -= 0.1 * math.log1p(n) if not correct and n > 0 else 0.0
    return score, parts


# --------------------------------------------------------------------------- GSM8K family
# Scores in {0, ...}; "no answer" (the paper's regex found nothing) always scores 0.


@REWARDS.register("gsm8k/accuracy_reward")
def gsm8k_accuracy(response: str, gold: str, *, grader: str = PAPER, step: int = 1):
    """1 if correct else 0 (the LAST numeric `Final Answer: ` in the last 300 characters)."""
    correct, parts = gsm8k_facts(response, gold, grader, first=False)
    return float(bool(correct)), parts


@REWARDS.register("gsm8k/accuracy_times_special_token_reward")
@REWARDS.register("gsm8k/format_times_accuracy_times_parallel_reward")
def gsm8k_accuracy_times_parallel(response: str, gold: str, *, grader: str = PAPER,
                                  step: int = 1):
    """1 if correct and `<Parallel>` occurs and the format is valid, else 0."""
    correct, parts = gsm8k_facts(response, gold, grader)
    return float(bool(correct) and bool(parts["has_parallel"]) and bool(parts["format_ok"])), parts


@REWARDS.register("gsm8k/accuracy_times_special_token_reward@build")
def gsm8k_accuracy_times_parallel_build(response: str, gold: str, *, grader: str = PAPER,
                                        step: int = 1):
    """The `build/` copy: 1 if correct and `<Parallel>` occurs, else 0 (no format factor)."""
    correct, parts = gsm8k_facts(response, gold, grader)
    return float(bool(correct) and bool(parts["has_parallel"])), parts


@REWARDS.register("gsm8k/accuracy_add_parallel_reward")
def gsm8k_accuracy_add_parallel(response: str, gold: str, *, grader: str = PAPER, step: int = 1):
    """[c] + 0.5*[has `<Parallel>` and f]; 0 with no answer."""
    correct, parts = gsm8k_facts(response, gold, grader)
    if correct is None:
        return 0.0, parts
    bonus = 0.5 * (bool(parts["has_parallel"]) and bool(parts["format_ok"]))
    return float(correct) + bonus, parts


def _gsm8k_tiered(correct: bool | None, parts: Parts, bonus: float) -> float:
    if not correct:
        return 0.0
    if not parts["has_parallel"]:
        return 1.0
    return bonus if parts["format_ok"] else 0.0


@REWARDS.register("gsm8k/emphase_acc")
def gsm8k_emphase_acc(response: str, gold: str, *, grader: str = PAPER, step: int = 1):
    """1 if correct and (no block or well formed), else 0."""
    correct, parts = gsm8k_facts(response, gold, grader)
    return _gsm8k_tiered(correct, parts, 1.0), parts


@REWARDS.register("gsm8k/emphase_parallel")
def gsm8k_emphase_parallel(response: str, gold: str, *, grader: str = PAPER, step: int = 1):
    """1 correct without a block; 1.2 correct with well-formed blocks; else 0."""
    correct, parts = gsm8k_facts(response, gold, grader)
    return _gsm8k_tiered(correct, parts, 1.2), parts


@REWARDS.register("gsm8k/emphase_parallel_add_diversity")
def gsm8k_emphase_parallel_add_diversity(response: str, gold: str, *, grader: str = PAPER,
                                         step: int = 1):
    """As gsm8k/emphase_parallel, but 1.2 - 0.2*B for correct with well-formed blocks."""
    correct, parts = gsm8k_facts(response, gold, grader)
    score = _gsm8k_tiered(correct, parts, 1.2)
    if score == 1.2:
        parts["self_bleu"] = self_bleu(response)
        score = 1.2 - 0.2 * parts["self_bleu"]
    return score, parts
