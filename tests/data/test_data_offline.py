"""Where offline data comes from (issue 22, items 1 and 4): the rows the repository ships for its
tests, the `parallel-gsm8k-v2` copy packaged with the library, gzipped files, and a data set found
nowhere, which is refused with what to do."""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from parallel_r1.data import sources
from parallel_r1.data.sources import DATA_ENV, PACKAGED_DIR, load_dataset, load_records, resolve
from parallel_r1.errors import ConfigError, DataError

V2 = "parallel_gsm8k_v2_sft.jsonl"
V2_SHA256 = "45939939eb1e87f39e62089e6b8d4d07341e021e4aa9483abd242b668c9d3547"  # NOTICE.md


@pytest.fixture
def no_data_dir(tmp_path, monkeypatch):
    """$PARALLEL_R1_DATA set to an empty folder: no offline copy anywhere (as in a clone)."""
    empty = tmp_path / "no-data"
    empty.mkdir()
    monkeypatch.setenv(DATA_ENV, str(empty))
    monkeypatch.delenv(sources.HUB_MIRROR_ENV, raising=False)
    return empty


def test_the_shipped_rows_are_cut_from_the_real_files(sample_data, shared_data):
    files = sorted(p.name for p in sample_data.iterdir() if p.suffix in (".jsonl", ".json"))
    assert files == sorted(p.name for p in shared_data.iterdir() if p.suffix in (".jsonl", ".json"))
    for name in files:
        full = (shared_data / name).read_text(encoding="utf-8")
        if name.endswith(".json"):
            assert json.loads((sample_data / name).read_text()) == json.loads(full), name
            continue
        lines = set(full.splitlines())
        sample = (sample_data / name).read_text(encoding="utf-8").splitlines()
        assert sample and all(line in lines for line in sample), name


def test_the_packaged_v2_is_the_offline_file_byte_for_byte(shared_data):
    unpacked = gzip.decompress((PACKAGED_DIR / f"{V2}.gz").read_bytes())
    assert hashlib.sha256(unpacked).hexdigest() == V2_SHA256
    assert unpacked == (shared_data / V2).read_bytes()


def test_v2_loads_from_the_package_without_any_data_dir(no_data_dir):
    assert resolve("parallel-gsm8k-v2") == ("packaged", str(PACKAGED_DIR / f"{V2}.gz"))
    records, metrics = load_records("parallel-gsm8k-v2")
    assert (metrics["resolved_from"], metrics["num_rows"]) == ("packaged", 341)
    first = records[0]
    assert (first.id, first.answer) == ("pgsm8k-v2-0000", "19")
    assert all(r.extras["trajectory"].rstrip().endswith(f"Final Answer: {r.answer}")
               for r in records)


def test_a_copy_in_the_data_dir_comes_before_the_packaged_one(sample_data, monkeypatch):
    monkeypatch.setenv(DATA_ENV, str(sample_data))
    assert resolve("parallel-gsm8k-v2") == ("local", str(sample_data / V2))
    assert len(load_dataset("parallel-gsm8k-v2")) == 3


def test_a_set_with_no_copy_anywhere_says_what_to_do(no_data_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "PACKAGED_DIR", tmp_path / "not-packaged")
    kind, why = resolve("parallel-gsm8k-v2")
    assert kind == "missing"
    assert why == ("data set 'parallel-gsm8k-v2' (split train) is not available: no hub copy; "
                   f"give --data-dir DIR or set PARALLEL_R1_DATA=DIR to a folder holding {V2} "
                   f"(none in {no_data_dir})")
    with pytest.raises(DataError) as err:
        load_dataset("parallel-gsm8k-v2")
    assert str(err.value) == why


def test_a_hub_set_without_the_datasets_package_says_how_to_install_it(no_data_dir, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "datasets" else real(name, *a))
    kind, why = resolve("gsm8k", split="test")
    assert kind == "missing" and "pip install 'parallel-r1[data]'" in why
    assert "folder holding gsm8k_test.jsonl" in why


def test_a_hub_set_resolves_to_the_hub_or_the_mirror(no_data_dir, tmp_path, monkeypatch):
    assert resolve("gsm8k", split="test") == ("hub", "openai/gsm8k")
    mirror = tmp_path / "hub"
    monkeypatch.setenv(sources.HUB_MIRROR_ENV, str(mirror))
    kind, why = resolve("gsm8k", split="test")  # the mirror lacks it: no silent hub download
    assert kind == "missing" and "hub mirror has no files matching 'main/test-*.parquet'" in why
    (mirror / "openai/gsm8k/main").mkdir(parents=True)
    (mirror / "openai/gsm8k/main/test-0.parquet").write_bytes(b"")
    assert resolve("gsm8k", split="test") == ("mirror", str(mirror / "openai/gsm8k/main/"
                                                             "test-*.parquet"))


def test_gzipped_files_load_like_plain_ones_and_bad_gzip_names_the_file(tmp_path):
    rows = [{"question": "1+1?", "answer": "2"}, {"question": "2+2?", "answer": "4"}]
    text = "".join(json.dumps(r) + "\n" for r in rows)
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "train.jsonl.gz").write_bytes(gzip.compress(text.encode()))
    assert [r.answer for r in load_dataset(tmp_path / "d")] == ["2", "4"]  # found in a folder
    broken = tmp_path / "broken.jsonl.gz"
    broken.write_bytes(gzip.compress(text.encode())[:-9])
    with pytest.raises(DataError, match=rf"^{broken}: cannot read: not valid gzip"):
        load_dataset(broken)
    bad_row = tmp_path / "bad.jsonl.gz"
    bad_row.write_bytes(gzip.compress(b'{"question": "q", "answer": "1"}\n{"question": \n'))
    with pytest.raises(DataError, match=rf"^{bad_row}:2: invalid JSON"):
        load_dataset(bad_row)


@pytest.mark.parametrize("require, outcome", [("0", "1 skipped"), ("1", "1 error")])
def test_without_the_offline_folder_its_tests_skip_unless_ci_requires_it(tmp_path, require,
                                                                         outcome):
    """A clone has no shared/ beside it: a test needing the full data is skipped, naming the
    folder; CI, where the folder must be there, sets PARALLEL_R1_REQUIRE_DATA=1 to fail instead."""
    missing = tmp_path / "shared" / "data"
    test = f"{__file__}::test_the_packaged_v2_is_the_offline_file_byte_for_byte"
    env = {**os.environ, DATA_ENV: str(missing), "PARALLEL_R1_REQUIRE_DATA": require}
    done = subprocess.run([sys.executable, "-m", "pytest", test, "-rsf", "-p", "no:cacheprovider"],
                          cwd=Path(__file__).parents[2], env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert outcome in done.stdout, done.stdout + done.stderr
    assert f"needs the full offline data, which is not in the repository: {missing} not found" \
        in done.stdout


def test_a_data_dir_that_is_not_a_folder_is_refused_not_passed_over(tmp_path, monkeypatch):
    """A typo in the data dir would otherwise fall through to a hub download."""
    monkeypatch.setenv(DATA_ENV, str(tmp_path / "typo"))
    with pytest.raises(ConfigError) as err:
        resolve("gsm8k")
    assert str(err.value) == f"field 'PARALLEL_R1_DATA': not a directory: {tmp_path / 'typo'}"
    with pytest.raises(ConfigError) as err:
        load_dataset("aime24", local_dir=tmp_path / "typo2")
    assert str(err.value) == f"field 'local_dir': not a directory: {tmp_path / 'typo2'}"
