"""`eval.evaluate` on the tiny model: per-sample file, seeds, resume, figures vs a hand count."""

from __future__ import annotations

import json
from collections import defaultdict

import pytest

from parallel_r1.errors import ConfigError
from parallel_r1.eval.evaluate import EvalConfig, evaluate, read_samples, sample_seed
from parallel_r1.models import build_tiny

K, LIMIT = 4, 3


@pytest.fixture(scope="module")
def tiny():
    return build_tiny(0)


def _cfg(**kw) -> EvalConfig:
    base = {"benchmarks": "synthetic-l1", "samples": K, "limit": LIMIT, "max_tokens": 12,
            "max_path_tokens": 6, "batch_size": 2}
    return EvalConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def run(tiny, tmp_path_factory):
    out = tmp_path_factory.mktemp("eval")
    summary = evaluate(*tiny, _cfg(), out, model_name="tiny", progress=False)
    return out, summary


def test_writes_one_row_per_sample_with_distinct_recorded_seeds(run):
    out, _ = run
    rows = read_samples(out / "samples.jsonl")
    assert len(rows) == K * LIMIT
    seeds = defaultdict(list)
    for r in rows:
        seeds[r["problem_id"]].append(r["seed"])
        assert r["seed"] == sample_seed(0, "synthetic-l1", r["problem_index"], r["sample"])
        assert set(r["grades"]) == {"math-verify", "paper"}
        assert {"prompt", "response", "structure", "critical_path_length", "num_tokens"} <= set(r)
    for problem_seeds in seeds.values():
        assert len(set(problem_seeds)) == K  # no two samples of one problem share a seed
    assert len({s for v in seeds.values() for s in v}) == K * LIMIT
    assert (out / "summary.json").exists() and (out / "table.md").exists()


def _regrade(path, pattern):
    """Give the rows a known grading: pattern[problem_index][sample] = (pred, correct)."""
    rows = read_samples(path)
    for r in rows:
        pred, ok = pattern[r["problem_index"]][r["sample"]]
        r["grades"]["math-verify"] = {"pred": pred, "correct": ok}
        r["pred"], r["correct"] = pred, ok
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return rows


def test_mean_pass_and_maj_match_a_hand_count(run, tiny):
    out, _ = run
    pattern = [
        [("7", True), ("3", False), ("3", False), (None, False)],   # c=1, majority "3" wrong
        [("5", False), ("5", False), ("5", False), ("5", False)],  # c=0
        [("9", True), ("9", True), ("2", False), ("9", True)],     # c=3, majority right
    ]
    rows = _regrade(out / "samples.jsonl", pattern)
    # Hand count from the per-sample file.
    by_problem = defaultdict(list)
    for r in rows:
        by_problem[r["problem_id"]].append(r["grades"]["math-verify"]["correct"])
    mean_k = sum(sum(v) / len(v) for v in by_problem.values()) / len(by_problem)
    pass_k = sum(any(v) for v in by_problem.values()) / len(by_problem)
    # A rerun samples nothing (resume) and recomputes the summary from the file.
    summary = evaluate(*tiny, _cfg(), out, model_name="tiny", progress=False)
    fig = summary["benchmarks"]["synthetic-l1"]["grades"]["math-verify"]
    assert len(read_samples(out / "samples.jsonl")) == K * LIMIT
    assert fig["mean"]["value"] == pytest.approx(mean_k) == pytest.approx((1 / 4 + 0 + 3 / 4) / 3)
    assert fig["pass_unbiased"]["value"] == pytest.approx(pass_k) == pytest.approx(2 / 3)
    assert fig["maj"]["value"] == pytest.approx(1 / 3)
    assert fig["pass_bootstrap"]["value"] < fig["pass_unbiased"]["value"]  # the paper's runs low
    assert fig["mean"]["low"] <= fig["mean"]["value"] <= fig["mean"]["high"]
    assert summary["avg"]["math-verify"]["value"] == pytest.approx(mean_k)
    assert "Synth-L1 Mean@4 / Pass@4" in summary["table"]


def test_resume_after_a_torn_write_redraws_the_same_samples(tiny, tmp_path):
    cfg = _cfg(limit=2, samples=2)
    evaluate(*tiny, cfg, tmp_path, model_name="tiny", progress=False)
    path = tmp_path / "samples.jsonl"
    full = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text("".join(full[:-2]) + full[-2][: len(full[-2]) // 2], encoding="utf-8")
    evaluate(*tiny, cfg, tmp_path, model_name="tiny", progress=False)
    again = read_samples(path)
    before = {(r["problem_id"], r["sample"]): r["response"] for r in map(json.loads, full)}
    assert len(again) == len(full)
    assert {(r["problem_id"], r["sample"]): r["response"] for r in again} == before


def test_rerun_with_other_sampling_settings_is_refused(run, tiny):
    out, _ = run
    with pytest.raises(ConfigError, match="max_tokens"):
        evaluate(*tiny, _cfg(max_tokens=13), out, model_name="tiny", progress=False)


def test_sc_baseline_spends_at_most_the_model_budget(tiny, tmp_path):
    summary = evaluate(*tiny, _cfg(limit=2, samples=2, sc_baseline=True, sc_max_rounds=2),
                       tmp_path, model_name="tiny", progress=False)
    sc = summary["benchmarks"]["synthetic-l1"]["sc"]
    assert sc is not None and 1 <= sc["samples_used"] <= 4
    assert sc["tokens"] <= sc["budget"]
    assert "Self-consistency" in summary["table"]


def test_bad_config_names_the_field():
    with pytest.raises(ConfigError, match="mode"):
        EvalConfig(mode="sideways")


def test_a_samples_file_written_twice_summarises_as_once(run, tiny, tmp_path):
    out, _ = run
    summaries = []
    for copies in (1, 2):  # the same rows once, and as two writers on one file left them
        target = tmp_path / f"x{copies}"
        target.mkdir()
        (target / "config.json").write_bytes((out / "config.json").read_bytes())
        (target / ".parallel-r1.lock").write_text("")  # an eval folder of ours
        (target / "samples.jsonl").write_text((out / "samples.jsonl").read_text() * copies)
        assert len(read_samples(target / "samples.jsonl")) == K * LIMIT
        summaries.append(evaluate(*tiny, _cfg(), target, model_name="tiny", progress=False))
    assert summaries[0]["table"] == summaries[1]["table"]
    assert summaries[0]["benchmarks"] == summaries[1]["benchmarks"]
    assert len((tmp_path / "x2" / "samples.jsonl").read_text().splitlines()) == 2 * K * LIMIT
