"""`parallel-r1 check-format`: text and JSON reports, and errors that name file, line and field."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from parallel_r1.cli import app
from parallel_r1.cli.format_cmds import read_jsonl
from parallel_r1.errors import DataError

runner = CliRunner()
GOOD = "<Parallel><Path>a</Path><Path>b</Path></Parallel>\n<Summary>s</Summary>\nFinal Answer: 1"


@pytest.fixture
def jsonl(tmp_path):
    def write(*lines: str):
        path = tmp_path / "rows.jsonl"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path
    return write


def test_text_report(jsonl):
    path = jsonl(json.dumps({"trajectory": GOOD}), json.dumps({"trajectory": "x</Path>"}))
    result = runner.invoke(app, ["check-format", str(path)])
    assert result.exit_code == 0, result.output
    assert "rows: 2   valid: 1 (50.0%)" in result.output
    assert "blocks per trace: 0:1  1:1" in result.output
    assert "paths per block:  2:1" in result.output
    assert "stray_tag" in result.output and "row 2" in result.output


def test_json_report_with_normalize(jsonl):
    raw = GOOD.replace("<Path>b", "\n<Path>b").replace("1", "$1")
    path = jsonl(json.dumps({"trajectory": GOOD, "raw": raw}))
    result = runner.invoke(app, ["check-format", str(path), "--mode", "paper", "--json",
                                 "--normalize-from", "raw"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["num_valid"] == 1 and report["mode"] == "paper"
    assert report["normalize"]["num_exact"] == 1
    assert report["normalize"]["edit_kinds"] == {"answer:dollar+tag_whitespace": 1}


def test_other_field(jsonl):
    path = jsonl(json.dumps({"text": "Final Answer: 3"}))
    result = runner.invoke(app, ["check-format", str(path), "--field", "text", "--json"])
    assert json.loads(result.output)["num_valid"] == 1


@pytest.mark.parametrize("lines, match", [
    (['{"trajectory": "a"}', "{bad"], r"rows.jsonl:2: bad JSON"),
    (['{"other": "a"}'], r"rows.jsonl:1, field 'trajectory': field is missing"),
    (['{"trajectory": 3}'], r"rows.jsonl:1, field 'trajectory': field is a int, not a string"),
    (["[1]"], r"rows.jsonl:1: record is not a JSON object"),
])
def test_bad_rows_name_file_and_line(jsonl, lines, match):
    with pytest.raises(DataError, match=match):
        list(read_jsonl(jsonl(*lines), "trajectory"))
    result = runner.invoke(app, ["check-format", str(jsonl(*lines))])
    assert isinstance(result.exception, DataError)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="nope.jsonl: cannot read"):
        list(read_jsonl(tmp_path / "nope.jsonl", "trajectory"))


def test_check_format_counts_rows_without_an_answer_as_graders_do(tmp_path):
    import json

    from typer.testing import CliRunner

    from parallel_r1.cli import app

    cut = ("Two ways.\n<Parallel><Path>\nFinal Answer: 18\n</Path><Path>\nmaybe")
    src = tmp_path / "t.jsonl"
    src.write_text(json.dumps({"trajectory": cut}) + "\n", encoding="utf-8")
    strict = CliRunner().invoke(app, ["check-format", str(src)])
    assert "without an answer (strict reading, as the graders read it): 1" in strict.output
    assert "missing_answer" in strict.output
    paper = CliRunner().invoke(app, ["check-format", str(src), "--mode", "paper"])
    assert "without an answer (paper reading, as the graders read it): 0" in paper.output
