"""Every gold answer of every offline data file, written as `Final Answer: <gold>`, grades correct.

Run on the whole files where the offline data folder is present (`shared_data`), and on the few
real rows the repository ships (`sample_data`) everywhere, so a clone checks the same property."""

import json

import pytest

from parallel_r1.rewards.grading import grade_response

FILES = ["aime24", "aime25", "amc23", "math300", "gsm8k_test", "gsm8k_train",
         "dapo_math17k_dedup_train", "parallel_gsm8k_v2_sft"]


def _rows(folder, name):
    with open(folder / f"{name}.jsonl", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


@pytest.mark.parametrize("folder", ["sample_data", "shared_data"])
@pytest.mark.parametrize("name", FILES)
def test_gold_answers_grade_correct(request, folder, name):
    # All 27k golds take ~3 s: gold strings repeat, and parsing is cached.
    rows = _rows(request.getfixturevalue(folder), name)
    assert rows
    for grader in ("math-verify", "paper"):
        wrong = [r["id"] for r in rows
                 if not grade_response(f"Final Answer: {r['answer']}", r["answer"], grader)[1]]
        assert wrong == [], f"{grader}: {len(wrong)} of {len(rows)} wrong, e.g. {wrong[:5]}"


def test_teacher_traces_grade_correct(v2_rows):
    rows = v2_rows
    assert all(grade_response(r["trajectory"], r["answer"])[1] for r in rows)
    assert all(grade_response(r["trajectory"], r["answer"], "paper")[1] for r in rows)
    raw_mv = sum(grade_response(r["teacher_output_raw"], r["answer"])[1] for r in rows)
    raw_paper = sum(grade_response(r["teacher_output_raw"], r["answer"], "paper")[1] for r in rows)
    assert (raw_mv, raw_paper) == (341, 329)  # the paper's grader misses 12 raw teacher outputs
