"""Issue #12 item 7: format and reward functions stay linear on 1 MB adversarial inputs.

A policy controls the text every reward reads, so no scan may be quadratic. The inputs are
bench/adversarial_inputs.py's (tag spam, unclosed boxes, one `$`, whitespace runs, ...).
Timings live in bench/adversarial_bench.py (bench/results/adversarial.md: before/after); here
only a generous bound is checked (a linear function takes at most ~4 s per 1 MB call on this
CPU; each of the quadratic scans found took from 30 s to hours).

The default tier runs every scan that was quadratic on the input that exposed it; the slow tier
runs every format and reward function (every reward by name, under both graders) on every input.
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import pytest

import parallel_r1.format as F
import parallel_r1.rewards as R
from parallel_r1.format.answer import find_answer, readable_text
from parallel_r1.rewards import answer as A
from parallel_r1.rewards import grading as G
from parallel_r1.rewards.expression import reduce_answer

SIZE = 1 << 20
BOUND_SECONDS = 30.0
_spec = importlib.util.spec_from_file_location(
    "adversarial_inputs", Path(__file__).resolve().parents[2] / "bench" / "adversarial_inputs.py")
INPUTS = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(INPUTS)

PRIMITIVES = {
    "parse": F.parse, "render": lambda t: F.render(F.parse(t)), "find_tags": F.find_tags,
    "validate[strict]": lambda t: F.validate(t, "strict"),
    "validate[paper]": lambda t: F.validate(t, "paper"),
    "normalize": F.normalize, "normalize_answer": F.normalize_answer,
    "response_stats": F.response_stats, "summarize": lambda t: F.summarize([t], "strict"),
    "compare_normalized": lambda t: F.compare_normalized(
        [{"id": 0, "teacher_output_raw": t, "trajectory": t + " x"}]),
    "find_answer[strict]": lambda t: find_answer(t, "strict"),
    "find_answer[paper]": lambda t: find_answer(t, "paper"), "readable_text": readable_text,
    "extract_final_answer": A.extract_final_answer, "extract_boxed": A.extract_boxed,
    "extract_answer": A.extract_answer,
    "extract_gsm8k_number": lambda t: A.extract_gsm8k_number(t, first=True),
    "strip_tags": A.strip_tags, "normalize_paper": G.normalize_paper,
    "reduce_answer": reduce_answer, "num_blocks": R.num_blocks,
    "num_valid_blocks": R.num_valid_blocks,
    "is_format_valid[paper]": R.is_format_valid,
    "is_format_valid[strict]": lambda t: R.is_format_valid(t, "strict"),
    "self_bleu": R.self_bleu, "efficiency_gain": R.efficiency_gain,
    **{f"grade[{g}]": (lambda t, g=g: G.grade(t, "18", g)) for g in G.GRADERS.names()},
    **{f"grade_gold[{g}]": (lambda t, g=g: G.grade("18", t, g)) for g in G.GRADERS.names()},
    **{f"grade_response[{g}]": (lambda t, g=g: G.grade_response(t, "18", g))
       for g in G.GRADERS.names()},
}
REWARD_CALLS = {f"{name}[{g}]": (lambda t, n=name, g=g: R.REWARDS.get(n)(t, "18", grader=g,
                                                                        step=9))
                for name in R.REWARDS.names() for g in ("paper", "math-verify")}

# Each scan found quadratic before the fix, with the input that exposed it.
FOUND = [
    ("validate[strict]", "path_open"), ("validate[paper]", "path_open"),
    ("summarize", "path_open"), ("compare_normalized", "newlines"),
    ("extract_boxed", "boxed_open"), ("extract_answer", "boxed_open"),
    ("normalize_paper", "boxed_nested"), ("normalize_paper", "one_dollar"),
    ("normalize_paper", "text_open"), ("is_format_valid[paper]", "summary_open"),
    ("self_bleu", "paths_in_one_block"), ("efficiency_gain", "parallel_open"),
    ("grade_response[math-verify]", "boxed_open"), ("grade_response[paper-gsm8k]", "boxed_nested"),
    ("grade[paper]", "paths_in_one_block"), ("normalize", "lt_space_run"),
    ("find_answer[strict]", "label_newline_run"), ("find_answer[strict]", "final_answer_markdown"),
]


def _timed(fn, text: str) -> float:
    started = time.perf_counter()
    fn(text)
    return time.perf_counter() - started


@pytest.mark.parametrize("function, name", FOUND)
def test_scans_found_quadratic_are_linear(function, name):
    seconds = _timed(PRIMITIVES[function], INPUTS.adversarial(name, SIZE))
    assert seconds < BOUND_SECONDS, f"{function} on 1 MB of {name}: {seconds:.1f} s"


def test_every_reward_on_its_heaviest_input():
    text = INPUTS.adversarial("path_close", SIZE // 8)  # 128 KB of the costliest tag spam
    slow = {name: t for name, fn in REWARD_CALLS.items() if (t := _timed(fn, text)) > 10.0}
    assert slow == {}


@pytest.mark.slow
def test_every_function_on_every_input():
    slowest, over = (0.0, ""), []
    for text_name in INPUTS.PATTERNS:
        text = INPUTS.adversarial(text_name, SIZE)
        for name, fn in {**PRIMITIVES, **REWARD_CALLS}.items():
            seconds = _timed(fn, text)
            slowest = max(slowest, (seconds, f"{name} on {text_name}"))
            if seconds > BOUND_SECONDS:
                over.append((name, text_name, round(seconds, 1)))
    assert over == [], f"over {BOUND_SECONDS} s: {over}"
    print(f"slowest 1 MB call: {slowest[1]}, {slowest[0]:.2f} s")
