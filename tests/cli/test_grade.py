"""`parallel-r1 grade`: graded rows written atomically, accuracy printed, bad rows named."""

import json

import pytest
from typer.testing import CliRunner

from parallel_r1.cli import app
from parallel_r1.errors import DataError
from parallel_r1.eval.graded import grade_file

ROWS = [
    {"id": 1, "response": "so Final Answer: 18.", "answer": "18"},
    {"id": 2, "response": "Final Answer: 17", "answer": 18},
    {"id": 3, "response": "I give up", "answer": "18"},
    {"id": 4, "response": "\u2028\\boxed{1,000}\x85", "answer": "1000"},  # odd line breaks
]


def _write(path, rows, extra=""):
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    path.write_text(text + extra, encoding="utf-8")
    return path


def test_grade_writes_rows_and_prints_accuracy(tmp_path):
    src, out = _write(tmp_path / "in.jsonl", ROWS, "\n"), tmp_path / "sub" / "out.jsonl"
    result = CliRunner().invoke(app, ["grade", str(src), "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert "accuracy 0.5000 (2/4)" in result.output
    assert "rows without an answer: 1" in result.output
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").split("\n") if line]
    assert [r["correct"] for r in rows] == [True, False, False, True]
    assert [r["pred"] for r in rows] == ["18.", "17", None, "1,000"]
    assert rows[0]["id"] == 1 and rows[1]["answer"] == 18  # every field kept
    assert [p.name for p in out.parent.iterdir()] == ["out.jsonl"]  # no temp file left


def test_grade_with_the_paper_grader(tmp_path):
    src = _write(tmp_path / "in.jsonl", ROWS)
    result = CliRunner().invoke(app, ["grade", str(src), "--grader", "paper"])
    assert result.exit_code == 0, result.output
    assert "accuracy 0.0000 (0/4)" in result.output  # "18." is wrong; boxes are not read
    assert "rows without an answer: 2" in result.output


def test_custom_fields(tmp_path):
    src = _write(tmp_path / "in.jsonl", [{"output": "Final Answer: 3", "gold": "3"}])
    report = grade_file(src, response_field="output", answer_field="gold")
    assert (report.num_rows, report.num_correct, report.accuracy) == (1, 1, 1.0)


@pytest.mark.parametrize("line, field, where", [
    ('{"response": "x"}', "answer", ":2"),
    ('{"response": 5, "answer": "1"}', "response", ":2"),
    ('{"response": "x", "answer": null}', "answer", ":2"),
    ('{"response": "", "answer": ""}', "answer", ":2"),  # a blank response would grade correct
    ('{"response": "", "answer": " "}', "answer", ":2"),
    ("not json", None, ":2"),
    ("[1, 2]", None, ":2"),
])
def test_bad_rows_name_file_line_and_field(tmp_path, line, field, where):
    src = _write(tmp_path / "bad.jsonl", ROWS[:1], line + "\n")
    out = tmp_path / "out.jsonl"
    with pytest.raises(DataError) as info:
        grade_file(src, out)
    message = str(info.value)
    assert f"bad.jsonl{where}" in message
    if field:
        assert f"field '{field}'" in message
    assert not out.exists()  # nothing half-written


def test_cli_error_is_one_line(tmp_path):
    src = _write(tmp_path / "bad.jsonl", [{"response": "x"}])
    result = CliRunner().invoke(app, ["grade", str(src)])
    assert isinstance(result.exception, DataError)
    result = CliRunner().invoke(app, ["grade", str(tmp_path / "missing.jsonl")])
    assert isinstance(result.exception, DataError)
    result = CliRunner().invoke(app, ["grade", str(src), "--grader", "nope"])
    assert "known: math-verify, paper, paper-gsm8k" in str(result.exception)


def test_audit_shows_disagreements_side_by_side(tmp_path):
    rows = [{"response": "Final Answer: 18.", "answer": "18", "kind": "decimals"},
            {"response": "Final Answer: 18", "answer": "18", "kind": "integers"},
            {"response": "so \\boxed{7}", "answer": "7"}]
    src = _write(tmp_path / "in.jsonl", rows)
    out = tmp_path / "dis.jsonl"
    result = CliRunner().invoke(app, ["grade", "--audit", str(src), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "3 rows; graders disagree on 2" in result.output
    assert "decimals" in result.output and "a grader reads no answer" in result.output
    written = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["line"] for r in written] == [1, 3]
    first = written[0]["grades"]
    assert first["math-verify"] == {"pred": "18.", "correct": True, "timed_out": False}
    assert first["paper"]["correct"] is False
    result = CliRunner().invoke(app, ["grade", "--audit", str(src), "--graders",
                                      "math-verify,paper-gsm8k"])
    assert "graders disagree on 2" in result.output  # "18." and the box
