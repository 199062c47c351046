"""A hub that cannot be reached (issue 22 review, item 1): no network, a timeout, or offline mode
with nothing cached is one `DataError` naming the data set and what to do; `run --check` says so
up front when offline mode is set."""

from __future__ import annotations

import os
import subprocess
import sys

import datasets
import httpx
import pytest
import requests
from huggingface_hub.errors import LocalEntryNotFoundError, OfflineModeIsEnabled

from parallel_r1.data import hub, sources
from parallel_r1.data.sources import DATA_ENV, load_records
from parallel_r1.errors import DataError
from parallel_r1.train.preflight import describe_source

WHAT_TO_DO = "give --data-dir DIR or set PARALLEL_R1_DATA=DIR to a folder holding gsm8k_test.jsonl"


@pytest.fixture
def no_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv(DATA_ENV, str(tmp_path))
    monkeypatch.delenv(sources.HUB_MIRROR_ENV, raising=False)
    for name in hub.OFFLINE_ENVS:
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize("error", [
    ConnectionError("Couldn't reach 'openai/gsm8k' on the Hub (LocalEntryNotFoundError)"),
    OfflineModeIsEnabled("offline"), LocalEntryNotFoundError("not cached"),
    requests.exceptions.ConnectionError("dns"), requests.exceptions.ReadTimeout("slow"),
    httpx.ConnectError("refused"), TimeoutError("slow")])
def test_every_kind_of_unreachable_hub_is_one_data_error(no_data_dir, monkeypatch, error):
    def unreachable(*args, **kwargs):
        raise error

    monkeypatch.setattr(datasets, "load_dataset", unreachable)
    with pytest.raises(DataError) as caught:
        load_records("gsm8k", split="test")
    message = str(caught.value)
    assert message.startswith("data set 'gsm8k': cannot reach the hub for openai/gsm8k (no "
                              f"network? {type(error).__name__}); {WHAT_TO_DO}"), message
    assert message.endswith(f"or set {sources.HUB_MIRROR_ENV}=DIR to a mirror of the hub's files")


def test_other_hub_errors_are_not_called_unreachable(no_data_dir, monkeypatch):
    def broken(*args, **kwargs):
        raise ValueError("a bug, not the network")

    monkeypatch.setattr(datasets, "load_dataset", broken)
    with pytest.raises(ValueError, match="a bug"):
        load_records("gsm8k", split="test")


def test_run_check_says_an_offline_hub_download_cannot_happen(monkeypatch):
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    assert describe_source("hub", "openai/gsm8k", None).endswith("needs the network")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert "but HF_HUB_OFFLINE=1 is set: only a copy in the datasets cache will do" in (
        describe_source("hub", "openai/gsm8k", None))


def test_eval_on_an_offline_hub_is_one_line_at_once(tmp_path):
    """The real `datasets` in offline mode with an empty cache: no retries, no traceback."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"),
           DATA_ENV: str(tmp_path), "PARALLEL_R1_EVAL_DIR": str(tmp_path / "eval-out"),
           "OMP_NUM_THREADS": "1"}
    env.pop(sources.HUB_MIRROR_ENV, None)
    done = subprocess.run([sys.executable, "-m", "parallel_r1", "eval", "tiny", "--benchmarks",
                           "gsm8k", "--limit", "2"], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    (line,) = [x for x in done.stderr.splitlines() if x.startswith("error: ")]
    assert line.startswith("error: data set 'gsm8k': cannot reach the hub for openai/gsm8k "
                           f"(HF_HUB_OFFLINE=1 is set); {WHAT_TO_DO}"), line
    assert not (tmp_path / "eval-out").exists() or not any((tmp_path / "eval-out").iterdir())
