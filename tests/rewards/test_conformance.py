"""The conformance corpus: 413 (response, gold, expected, kind) cases across GSM8K, MATH, AMC
and AIME answer styles (tests/rewards/conformance.jsonl). Each expected value was decided from
the mathematics and the answer contract (`parallel_r1.rewards.contract`), not from a grader.

The default grader must pass every case. The paper's graders are measured, not required
(`bench/grading_bench.py --conformance` prints their pass rate per kind).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from parallel_r1.rewards.grading import grade_response_detail

CORPUS = Path(__file__).with_name("conformance.jsonl")
KINDS = {"integers", "negatives", "thousands", "decimals", "fractions", "dfrac_tfrac",
         "mixed_numbers", "radicals", "pi", "powers", "tiny_values", "scientific", "intervals",
         "sets_tuples", "matrices", "percentages", "money", "units", "degrees", "letters", "boxed",
         "latex_spacing", "hedged", "markdown", "missing_answer", "plain_text_math",
         "inside_block"}


def load_corpus() -> list[dict]:
    with open(CORPUS, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def test_corpus_covers_every_kind_and_style():
    cases = load_corpus()
    assert len(cases) >= 300
    assert {c["kind"] for c in cases} == KINDS
    assert {c["style"] for c in cases} == {"gsm8k", "math", "amc", "aime"}
    counts = Counter((c["kind"], c["expected"]) for c in cases)
    # Every kind holds right and wrong answers, except "missing answer" (always wrong).
    assert all(counts[(k, False)] for k in KINDS)
    assert all(counts[(k, True)] for k in KINDS - {"missing_answer"})
    assert len({c["id"] for c in cases}) == len(cases)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_default_grader_passes_every_case(kind):
    failures = []
    for case in (c for c in load_corpus() if c["kind"] == kind):
        verdict = grade_response_detail(case["response"], case["gold"])
        if verdict.correct is not case["expected"] or verdict.timed_out:
            failures.append((case["id"], verdict.pred, case["gold"], case["expected"]))
    assert failures == []
