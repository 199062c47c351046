"""Data sets by path, by name (offline copy), and by hub name through a local hub-layout mirror."""

from __future__ import annotations

import json
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from parallel_r1.data.sources import (
    DATASETS,
    load_dataset,
    load_records,
    parse_gsm8k_answer,
    resolve,
    write_jsonl,
)
from parallel_r1.errors import ConfigError, DataError, UnknownNameError

# Row counts and suspect_truncated counts of shared/data (SPEC §8.1).
EXPECTED = {
    "aime24.jsonl": (30, 1), "aime25.jsonl": (30, 0), "amc23.jsonl": (40, 0),
    "math300.jsonl": (316, 4), "gsm8k_train.jsonl": (7473, 0), "gsm8k_test.jsonl": (1319, 0),
    "parallel_gsm8k_v2_sft.jsonl": (341, 0), "dapo_math17k_dedup_train.jsonl": (17917, 293),
}
BY_NAME = {("gsm8k", "train"): 7473, ("gsm8k", "test"): 1319, ("dapo-math-17k", "train"): 17917,
           ("math300", "test"): 316, ("aime24", "test"): 30, ("aime25", "test"): 30,
           ("amc23", "test"): 40, ("parallel-gsm8k-v2", "train"): 341}
# The same for the few real rows the repository ships (tests/fixtures/shared_data).
SAMPLE_BY_NAME = {("gsm8k", "train"): 5, ("gsm8k", "test"): 5, ("dapo-math-17k", "train"): 6,
                  ("math300", "test"): 6, ("aime24", "test"): 6, ("aime25", "test"): 5,
                  ("amc23", "test"): 5, ("parallel-gsm8k-v2", "train"): 3}


def test_every_shared_file_loads(shared_data):
    files = sorted(p.name for p in shared_data.glob("*.jsonl"))
    assert files == sorted(EXPECTED)
    for name in files:
        records, metrics = load_records(shared_data / name)
        print(f"{name:34s} rows={metrics['num_rows']:6d} suspect={metrics['num_suspect']}")
        assert (metrics["num_rows"], metrics["num_suspect"]) == EXPECTED[name]
        assert all(r.question and r.answer for r in records)


@pytest.mark.parametrize("folder, counts", [("sample_data", SAMPLE_BY_NAME),
                                            ("shared_data", BY_NAME)])
def test_every_name_resolves_to_its_offline_copy(request, folder, counts):
    data_dir = request.getfixturevalue(folder)
    for (name, split), count in counts.items():
        assert resolve(name, split=split, local_dir=data_dir)[0] == "local"
        records = load_dataset(name, split=split, local_dir=data_dir)
        print(f"{name:18s} {split:5s} rows={len(records)}")
        assert len(records) == count
    gsm = load_dataset("gsm8k", split="test", local_dir=data_dir)
    assert gsm[0].id == "gsm8k-test-00000" and gsm[0].answer == "18"
    assert gsm[0].extras["solution"].endswith("#### 18")


@pytest.mark.parametrize("folder, num_rows", [("sample_data", 6), ("shared_data", 30)])
def test_drop_suspect(request, folder, num_rows):
    data_dir = request.getfixturevalue(folder)
    kept, metrics = load_records("aime24", local_dir=data_dir)
    assert (len(kept), metrics["num_suspect"], metrics["num_dropped"]) == (num_rows, 1, 0)
    dropped, metrics = load_records("aime24", local_dir=data_dir, drop_suspect=True)
    assert (len(dropped), metrics["num_dropped"]) == (num_rows - 1, 1)


def test_gsm8k_answers():
    assert parse_gsm8k_answer("3 + 4 = 7\n#### 1,234") == "1234"
    assert parse_gsm8k_answer("#### -5 ") == "-5"
    with pytest.raises(ValueError):
        parse_gsm8k_answer("no marker")


@pytest.fixture
def hub_mirror(tmp_path):
    """A local stand-in for the hub: each repo in its own layout with the hub's own columns."""
    root = tmp_path / "hub"
    gsm = root / "openai/gsm8k/main"
    gsm.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist([
        {"question": "Tom has 2 apples and gets 3. How many?", "answer": "2+3=<<2+3=5>>5\n#### 5"},
        {"question": "A farm sells 1,000 eggs twice.", "answer": "1000*2=2000\n#### 2,000"},
    ]), gsm / "test-00000-of-00001.parquet")
    dapo = root / "BytedTsinghua-SIA/DAPO-Math-17k/data"
    dapo.mkdir(parents=True)
    wrap = ("Solve the following math problem step by step. The last line ...\n\n{}\n\n"
            "Remember to put your answer on its own line after \"Answer:\".")
    rows = [{"data_source": "math_dapo", "ability": "MATH",
             "prompt": [{"role": "user", "content": wrap.format(q)}],
             "reward_model": {"ground_truth": a, "style": "rule-lighteval/MATH_v2"},
             "extra_info": {"index": i}}
            for i, q, a in [("u1", "Evaluate:\n\n$1+1$", "2"), ("u2", "Find 3*3.", "9")]]
    pq.write_table(pa.Table.from_pylist(rows * 3), dapo / "dapo-math-17k.parquet")  # repeated
    math = root / "HuggingFaceH4/MATH-500"
    math.mkdir(parents=True)
    (math / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in [
        {"problem": "What is $1+1$?", "answer": "2", "subject": "Algebra", "level": 1},
        {"problem": "Simplify $\\frac{2}{4}$.", "answer": "\\frac{1}{2}", "subject": "Algebra",
         "level": 2}]))
    return root


def test_hub_names_load_through_a_local_mirror(tmp_path, hub_mirror, monkeypatch):
    empty = tmp_path / "no-offline-copies"
    empty.mkdir()
    monkeypatch.setenv("PARALLEL_R1_HUB_MIRROR", str(hub_mirror))
    assert resolve("gsm8k", split="test", local_dir=empty)[0] == "mirror"
    gsm, metrics = load_records("gsm8k", split="test", local_dir=empty)
    assert metrics["resolved_from"] == "mirror"
    assert [(r.id, r.answer) for r in gsm] == [("gsm8k-test-00000", "5"), ("gsm8k-test-00001", "2000")]
    assert gsm[0].extras["solution"].startswith("2+3=")
    dapo = load_dataset("dapo-math-17k", local_dir=empty)
    assert [(r.id, r.question, r.answer) for r in dapo] == [
        ("u1", "Evaluate:\n\n$1+1$", "2"), ("u2", "Find 3*3.", "9")]  # deduplicated, uncut
    assert [r.answer for r in load_dataset("math500", local_dir=empty)] == ["2", "\\frac{1}{2}"]
    assert [r.answer for r in load_dataset("math300", local_dir=empty)] == ["2"]  # integers only
    with pytest.raises(DataError, match="hub mirror has no files matching 'main/train-"):
        load_dataset("gsm8k", split="train", local_dir=empty)


def test_hub_row_missing_a_column_names_it(tmp_path, hub_mirror):
    gsm = hub_mirror / "openai/gsm8k/main/test-00000-of-00001.parquet"
    pq.write_table(pa.Table.from_pylist([{"question": "q", "solution": "#### 1"}]), gsm)
    with pytest.raises(DataError) as err:
        load_dataset("gsm8k", split="test", local_dir=tmp_path, hub_mirror=hub_mirror)
    assert str(err.value) == (f"{hub_mirror / 'openai/gsm8k'}:1, field 'answer': "
                              "missing required column")


def test_malformed_files_name_file_line_and_field(tmp_path):
    bad_json = tmp_path / "bad.jsonl"
    bad_json.write_text('{"question": "q", "answer": "1"}\n{"question": "q2", "answer": \n')
    with pytest.raises(DataError) as err:
        load_dataset(bad_json)
    assert str(err.value) == f"{bad_json}:2: invalid JSON: Expecting value (column 30)"
    missing = tmp_path / "missing.jsonl"
    missing.write_text('{"question": "q", "answer": "1"}\n\n{"question": "q3"}\n')
    with pytest.raises(DataError) as err:
        load_dataset(missing)
    assert str(err.value) == f"{missing}:3, field 'answer': missing required field"
    wrong = tmp_path / "wrong.json"
    wrong.write_text('[{"question": ["a"], "answer": "1"}]')
    with pytest.raises(DataError) as err:
        load_dataset(wrong)
    assert str(err.value) == f"{wrong}:1, field 'question': expected a string, got list"
    dup = tmp_path / "dup.jsonl"
    dup.write_text('{"id": "x", "question": "q", "answer": "1"}\n' * 2)
    with pytest.raises(DataError, match=r"dup.jsonl:2, field 'id': duplicate id 'x'"):
        load_dataset(dup)


def test_json_parquet_and_directories(tmp_path):
    rows = [{"question": f"q{i}", "answer": i, "note": "n"} for i in range(3)]
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "train.json").write_text(json.dumps(rows))
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "d" / "test-0.parquet")
    both = load_dataset(tmp_path / "d")
    assert len(both) == 6  # ids come from file stems, so they do not collide
    test = load_dataset(tmp_path / "d", split="test")
    assert next((r.id, r.answer, r.source, r.extras) for r in test) == (
        "test-0-00001", "0", "test-0", {"note": "n"})


def test_unknown_names_and_splits_list_the_known_ones():
    with pytest.raises(UnknownNameError, match="known: aime24, aime25, amc23, dapo-math-17k"):
        load_dataset("gsm9k")
    with pytest.raises(ConfigError, match="no split 'dev'; known: train, test"):
        load_dataset("gsm8k", split="dev")
    assert {"gsm8k", "dapo-math-17k", "math500", "math300", "aime24", "aime25",
            "amc23"} <= set(DATASETS.names())


def test_write_jsonl_is_atomic(tmp_path):
    out = tmp_path / "o.jsonl"
    out.write_text("old\n")

    def rows():
        yield {"a": 1}
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        write_jsonl(out, rows())
    assert out.read_text() == "old\n" and list(tmp_path.iterdir()) == [out]
    assert write_jsonl(out, [{"a": "é"}]) == 1 and out.read_text() == '{"a": "é"}\n'


def test_importing_data_modules_imports_no_torch():
    code = ("import sys, parallel_r1.data, parallel_r1.data.sources, parallel_r1.data.templates, "
            "parallel_r1.data.synthetic; "
            "bad = [m for m in ('torch', 'transformers', 'httpx', 'datasets', 'pyarrow') "
            "if m in sys.modules]; print(bad); sys.exit(bool(bad))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("row, field", [
    ({"question": "1+1?", "answer": ""}, "answer"),
    ({"question": "1+1?", "answer": "  \n"}, "answer"),
    ({"question": "", "answer": "2"}, "question"),
])
def test_rows_with_a_blank_question_or_gold_answer_are_refused(tmp_path, row, field):
    """A blank gold answer would grade a blank response correct (the paper's grader)."""
    path = tmp_path / "rows.jsonl"
    path.write_text(json.dumps({"question": "2+2?", "answer": "4"}) + "\n" + json.dumps(row) + "\n")
    with pytest.raises(DataError) as err:
        load_dataset(path)
    assert str(err.value) == (f"{path}:2, field '{field}': empty: every row needs a question and "
                              "a gold answer; fill it in or drop the row")


def test_hub_rows_with_a_blank_gold_answer_are_refused(tmp_path, hub_mirror):
    math = hub_mirror / "HuggingFaceH4/MATH-500/test.jsonl"
    math.write_text(json.dumps({"problem": "What is $1+1$?", "answer": " "}) + "\n")
    with pytest.raises(DataError) as err:
        load_dataset("math500", local_dir=tmp_path, hub_mirror=hub_mirror)
    assert str(err.value).startswith(f"{hub_mirror / 'HuggingFaceH4/MATH-500'}:1, field 'answer': "
                                     "empty: every row needs")


@pytest.mark.parametrize("answer", ["#### ", "\u200b", "\\boxed{}", "$$", "{}"])
def test_a_gold_answer_that_says_nothing_is_refused(tmp_path, answer):
    """Blank once parsed or stripped of markup: under the paper's grader a blank response would
    grade correct against it (issue 20, a case beside the empty string)."""
    from parallel_r1.data.sources import read_records
    from parallel_r1.errors import DataError

    path = tmp_path / "rows.jsonl"
    path.write_text('{"question": "q", "answer": "1"}\n' + json.dumps(
        {"question": "q2", "answer": answer}) + "\n")
    with pytest.raises(DataError, match=r"rows\.jsonl:2.*answer"):
        read_records(path)
