"""`parallel-r1 grade --answer-reader` on a file of answers in other common forms, end to end, and
`parallel-r1 eval --answer-reader`."""

import json

from parallel_r1.eval.graded import grade_file

# What a model not trained on the Final-Answer contract writes (GSM8K-tuned, lm-eval style,
# instruct), plus one contract answer and one without any answer.
ROWS = [
    {"response": "She sells 16 - 3 - 4 = 9 eggs.\n9 * 2 = 18\n#### 18", "answer": "18"},
    {"response": "#### Step 1\nadd them\nSo the answer is $1,234$.", "answer": "1234"},
    {"response": "The final answer is $\\frac{1}{2}$. I hope it is correct.", "answer": "0.5"},
    {"response": "**Answer:** -3", "answer": "-3"},
    {"response": "#### 17", "answer": "18"},
    {"response": "Final Answer: 18", "answer": "18"},
    {"response": "I do not know.", "answer": "18"},
]


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_common_reader_grades_what_the_model_wrote(cli, tmp_path):
    src, out = _write(tmp_path / "in.jsonl", ROWS), tmp_path / "out.jsonl"
    code, stdout, _ = cli("grade", src)
    assert code == 0
    # The contract reads only the Final Answer line: six rows "without an answer".
    assert "accuracy 0.1429 (1/7) with grader math-verify, answer reader final-answer" in stdout
    assert "rows without an answer: 6" in stdout
    code, stdout, _ = cli("grade", src, "--answer-reader", "common", "-o", out)
    assert code == 0
    assert "accuracy 0.7143 (5/7) with grader math-verify, answer reader common" in stdout
    assert "rows without an answer: 1" in stdout
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["pred"] for r in rows] == ["18", "$1,234$", "$\\frac{1}{2}$", "-3", "17", "18", None]
    assert [r["correct"] for r in rows] == [True, True, True, True, False, True, False]


def test_common_reader_with_the_paper_grader_and_the_audit(cli, tmp_path):
    src = _write(tmp_path / "in.jsonl", ROWS)
    report = grade_file(src, grader="paper", reader="common")
    # The paper grader compares normalised strings: "\frac{1}{2}" and 0.5 differ.
    assert (report.num_correct, report.num_no_answer) == (4, 1)
    code, stdout, _ = cli("grade", "--audit", src, "--graders", "math-verify,paper",
                          "--answer-reader", "common")
    assert code == 0 and "7 rows; graders disagree on 1; correct: math-verify 5, paper 4" in stdout


def test_unknown_reader_is_one_line_naming_the_known_ones(cli, tmp_path):
    src = _write(tmp_path / "in.jsonl", ROWS)
    line = cli.refused("grade", src, "--answer-reader", "gsm8k")
    assert "unknown answer reader 'gsm8k'; known: common, final-answer" in line
    line = cli.refused("grade", "--audit", src, "--answer-reader", "gsm8k")
    assert "unknown answer reader 'gsm8k'" in line


def test_eval_command_takes_the_reader(cli, tmp_path):
    args = ["eval", "tiny", "--benchmarks", "synthetic-l1", "--limit", "1", "--samples", "1",
            "--max-tokens", "4", "--out", tmp_path / "ev"]
    code, stdout, _ = cli(*args, "--answer-reader", "common")
    assert code == 0 and "answer reader common" in stdout
    line = cli.refused(*args, "--answer-reader", "final-answer")
    assert "answer_reader" in line
    assert "unknown answer reader 'nope'" in cli.refused(*args[:-1], tmp_path / "ev2",
                                                         "--answer-reader", "nope")
