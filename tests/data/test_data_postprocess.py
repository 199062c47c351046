"""The SFT filter on the paper's raw teacher outputs, and the `data` commands end to end."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from parallel_r1.cli import app
from parallel_r1.data.sources import PACKAGED_DIR
from parallel_r1.data.teacher import postprocess, postprocess_rows

V2 = PACKAGED_DIR / "parallel_gsm8k_v2_sft.jsonl.gz"  # the 341 real traces, shipped gzipped


def test_report_on_the_v2_teacher_outputs_matches_spec(tmp_path):
    out = tmp_path / "sft.jsonl"
    report = postprocess(V2, out, field="teacher_output_raw", mode="paper")
    print(json.dumps(report, indent=1))
    assert (report["num_rows"], report["num_kept"]) == (341, 341)
    assert report["valid_share"] == 1.0 and report["answer_accuracy"] == 1.0
    assert report["rejections"] == {}
    assert report["blocks_per_trace"] == {0: 3, 1: 261, 2: 59, 3: 12, 4: 6}  # SPEC §5.2
    assert report["paths_per_block"] == {2: 427, 3: 11, 4: 1}
    kept = [json.loads(line) for line in out.read_text().split("\n")[:-1]]
    assert len(kept) == 341 and all(row["completion"].rstrip().splitlines()[-1].startswith(
        "Final Answer:") for row in kept)


def test_rejections_are_counted_by_reason():
    good = ("a<Parallel><Path>1</Path><Path>1</Path></Parallel>\n<Summary>1</Summary>\n"
            "Final Answer: 2")
    rows = [{"output": good, "answer": "2"}, {"output": good, "answer": "3"},
            {"output": "no answer here", "answer": "1"},
            {"output": "<Parallel><Path>x</Path></Parallel>\nFinal Answer: 1", "answer": "1"}]
    kept, report = postprocess_rows(rows)
    assert len(kept) == 1 and kept[0]["completion"].endswith("Final Answer: 2")
    assert report["rejections"] == {"format:missing_summary": 1, "format:too_few_paths": 1,
                                    "format:summary_count_mismatch": 1, "no_final_answer": 1,
                                    "wrong_answer": 1}
    assert report["valid_share"] == 0.75 and report["answer_accuracy"] == 0.5


def test_data_commands(sample_data, tmp_path):
    runner = CliRunner()
    listed = runner.invoke(app, ["data", "list", "--data-dir", str(sample_data)])
    assert listed.exit_code == 0 and "gsm8k" in listed.output and "local" in listed.output
    out = tmp_path / "gsm.jsonl"
    done = runner.invoke(app, ["data", "prepare", "gsm8k", str(out), "--split", "test",
                               "--limit", "4", "--data-dir", str(sample_data)])
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["num_rows"] == 4 and len(out.read_text().splitlines()) == 4
    syn = tmp_path / "syn.jsonl"
    done = runner.invoke(app, ["data", "synthetic", str(syn), "--count", "3", "--no-blocks"])
    assert done.exit_code == 0 and "<Parallel>" not in syn.read_text()
    sft = tmp_path / "sft.jsonl"
    done = runner.invoke(app, ["data", "postprocess", str(V2), "--field",
                               "teacher_output_raw", "--out", str(sft)])
    assert done.exit_code == 0 and json.loads(done.output)["num_kept"] == 341


def test_postprocess_refuses_a_blank_gold_answer(tmp_path):
    """A blank gold would keep a trace whose final answer is blank (it grades correct)."""
    import pytest

    from parallel_r1.errors import DataError

    path = tmp_path / "log.jsonl"
    rows = [{"id": "a", "output": "Final Answer: 2", "answer": "2"},
            {"id": "b", "output": "Final Answer: ", "answer": " "}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(DataError) as err:
        postprocess(path)
    assert str(err.value).startswith(f"{path}:2, field 'answer': empty: every row needs")
