"""What a model directory records about how it is run (`models.settings`), and the thread rule
every command shares (`cpu_threads`)."""

from __future__ import annotations

import pytest

from parallel_r1.cpu_threads import DEFAULT_THREADS, thread_count, use_threads
from parallel_r1.errors import ConfigError
from parallel_r1.models import build_tiny, save
from parallel_r1.models.card import record_eval
from parallel_r1.models.settings import recorded, settle

SUMMARY = {"benchmarks": {}, "avg": {}, "graders": ["paper"],
           "config": {"benchmarks": "synthetic-l1", "limit": 3, "template": "none",
                      "batch_size": 5, "sc_baseline": True}}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    model, tok = build_tiny(0)
    meta = {"recipe": "r", "stage": "sft", "kind": "sft", "mode": "causal", "num_paths": None,
            "training": {"template": "none"}}
    return save(model, tok, tmp_path_factory.mktemp("m") / "model", meta=meta)


def test_recorded_reads_the_layout_template_and_the_last_evals_settings(model_dir):
    assert recorded(model_dir) == ({"mode": "causal", "template": "none"}, {})
    record_eval(model_dir, "eval-b", {**SUMMARY, "config": {**SUMMARY["config"], "limit": 9}},
                "| t |")
    record_eval(model_dir, "eval-a", SUMMARY, "| t |")  # the latest, though it sorts first
    identity, last = recorded(model_dir)
    assert identity == {"mode": "causal", "template": "none"}  # num_paths null: not recorded
    # Sampling settings only: how many run side by side and the SC baseline are not replayed.
    assert last == {"benchmarks": "synthetic-l1", "limit": 3, "template": "none"}


def test_a_hub_id_or_a_folder_without_a_record_records_nothing(tmp_path):
    assert recorded("Qwen/Qwen3-4B-Base") == ({}, {})
    assert recorded(tmp_path) == ({}, {})


def test_settle_prefers_given_then_recorded_then_default_and_warns_on_identity_only():
    defaults = {"mode": "structured", "template": "parallel", "limit": None, "seed": 0}
    record = {"mode": "causal", "template": "none", "limit": 64}
    values, warnings = settle({"mode": None, "template": "parallel", "limit": 8}, record,
                              defaults, model="m")
    assert values == {"mode": "causal", "template": "parallel", "limit": 8, "seed": 0}
    assert warnings == ["warning: --template parallel differs from the template none that m "
                        "records (parallel_r1.json); using parallel"]  # not --limit: no identity
    values, warnings = settle({"num_paths": 3}, {"num_paths": 2}, {"num_paths": 2}, model="m",
                              flags={"num_paths": "--paths"})
    assert values == {"num_paths": 3} and warnings[0].startswith("warning: --paths 3 differs")
    assert settle({"mode": "causal"}, record, defaults, model="m")[1] == []  # agrees: silent


def test_thread_count_given_then_the_users_omp_then_one(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert thread_count() == DEFAULT_THREADS == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert thread_count() == 3  # the user's environment wins over our default
    assert thread_count(2) == 2  # and an explicit --threads over both
    monkeypatch.setenv("OMP_NUM_THREADS", "4,2")  # OpenMP's nested form: its first level
    assert thread_count() == 4
    for bad in ("0", "lots"):
        monkeypatch.setenv("OMP_NUM_THREADS", bad)
        with pytest.raises(ConfigError, match="OMP_NUM_THREADS"):
            thread_count()
    with pytest.raises(ConfigError, match="field 'threads'"):
        thread_count(0)


def test_use_threads_sets_torch_and_the_environment_of_child_processes(monkeypatch):
    import torch

    before = torch.get_num_threads()
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    try:
        assert use_threads(2) == 2 and torch.get_num_threads() == 2
        assert __import__("os").environ["OMP_NUM_THREADS"] == "2"
    finally:
        torch.set_num_threads(before)
