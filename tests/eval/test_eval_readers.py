"""`eval --answer-reader common` end to end: a tiny model taught to answer GSM8K's way (`#### 7`)
has "no answer" under the contract and is graded on what it wrote under the common reader; the
reader is recorded, named in the tables, and a resume with another reader is refused."""

from __future__ import annotations

import json
import shutil

import pytest

from parallel_r1.errors import ConfigError
from parallel_r1.eval.compare import compare_table
from parallel_r1.eval.evaluate import EvalConfig, evaluate, read_samples
from parallel_r1.models import build_tiny
from parallel_r1.rewards.readers import read_common, read_final_answer

LIMIT, K = 3, 2


@pytest.fixture(scope="module")
def gsm8k_style():
    """The tiny model, fitted (40 Adam steps, about a second) to answer every prompt `#### 7`."""
    import torch

    from parallel_r1.data.templates import render_prompt
    from parallel_r1.eval.benchmarks import load_problems, parse_names
    from parallel_r1.models import apply_template

    torch.manual_seed(0)
    model, tok = build_tiny(0)
    records, _ = load_problems(parse_names("synthetic-l1")[0], limit=LIMIT)
    target = tok("#### 7", add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    prompts = [apply_template(tok, render_prompt("none", r.question), chat=True)
               for r in records]
    n = max(len(p) for p in prompts) + len(target)
    pad = [n - len(p) - len(target) for p in prompts]
    ids = torch.tensor([p + target + [tok.eos_token_id] * m for p, m in zip(prompts, pad)])  # [B, T]
    labels = torch.tensor([[-100] * len(p) + target + [-100] * m
                           for p, m in zip(prompts, pad)])  # [B, T]
    mask = (labels != -100) | torch.tensor([[1] * len(p) + [0] * (n - len(p))
                                            for p in prompts]).bool()  # [B, T]
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(40):
        model(input_ids=ids, attention_mask=mask.long(), labels=labels).loss.backward()
        opt.step()
        opt.zero_grad()
    model.eval()
    return model, tok


def _cfg(**kw) -> EvalConfig:
    base = {"benchmarks": "synthetic-l1", "samples": K, "limit": LIMIT, "max_tokens": 12,
            "max_path_tokens": 6, "batch_size": 2, "mode": "causal", "temperature": 0.3,
            "template": "none"}
    return EvalConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def evals(gsm8k_style, tmp_path_factory):
    out = {reader: tmp_path_factory.mktemp(reader) for reader in ("final-answer", "common")}
    summaries = {reader: evaluate(*gsm8k_style, _cfg(answer_reader=reader), path,
                                  model_name="gsm8k-style", progress=False)
                 for reader, path in out.items()}
    return out, summaries


def test_common_reader_grades_what_the_model_wrote(evals):
    out, summaries = evals
    rows = {reader: read_samples(path / "samples.jsonl") for reader, path in out.items()}
    # The same seeds draw the same responses; only the reading differs.
    assert [r["response"] for r in rows["common"]] == [r["response"] for r in rows["final-answer"]]
    written = [r for r in rows["common"] if r["response"] == "#### 7"]
    assert len(written) >= LIMIT  # the model answers GSM8K's way
    for row in rows["common"]:
        assert row["answer_reader"] == "common"
        for grader, grade in row["grades"].items():
            reading = {"math-verify": "strict", "paper": "paper"}[grader]
            assert grade["pred"] == read_common(row["response"], reading)
    for row in written:
        assert row["pred"] == "7" and row["correct"] == (row["answer"] == "7")
    for row in rows["final-answer"]:
        assert row["pred"] == read_final_answer(row["response"]) and row["pred"] is None
    figures = {reader: s["benchmarks"]["synthetic-l1"]["grades"]["math-verify"]
               for reader, s in summaries.items()}
    assert figures["final-answer"]["no_answer"] == 1.0
    assert figures["common"]["no_answer"] <= 1 - len(written) / (LIMIT * K)


def test_reader_is_recorded_and_named_in_the_tables(evals):
    out, summaries = evals
    for reader, path in out.items():
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
        assert config["sampling"]["answer_reader"] == config["config"]["answer_reader"] == reader
        assert summaries[reader]["answer_reader"] == reader
        assert f"(grader math-verify, answer reader {reader};" in (path / "table.md").read_text()
    table = compare_table([out["final-answer"], out["common"]])
    assert f"| {out['common'].name} (answer reader common) |" in table
    assert f"| {out['final-answer'].name} |" in table


def test_resume_with_another_reader_is_refused(evals, gsm8k_style):
    out, _ = evals
    with pytest.raises(ConfigError, match=r"other settings \(answer_reader\)"):
        evaluate(*gsm8k_style, _cfg(answer_reader="final-answer"), out["common"],
                 model_name="gsm8k-style", progress=False)


def test_an_older_folder_was_read_by_the_contract(evals, gsm8k_style, tmp_path):
    """A folder written before readers existed has no answer_reader: it was the contract's."""
    out, _ = evals
    old = tmp_path / "old"
    shutil.copytree(out["final-answer"], old)
    config = json.loads((old / "config.json").read_text(encoding="utf-8"))
    del config["sampling"]["answer_reader"]
    (old / "config.json").write_text(json.dumps(config), encoding="utf-8")
    with pytest.raises(ConfigError, match="answer_reader"):
        evaluate(*gsm8k_style, _cfg(answer_reader="common"), old, model_name="gsm8k-style",
                 progress=False)


def test_unknown_reader_names_the_field():
    with pytest.raises(ConfigError, match="field 'answer_reader': unknown answer reader 'x'; "
                                          "known: common, final-answer"):
        _cfg(answer_reader="x")
