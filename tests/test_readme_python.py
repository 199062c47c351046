"""The README's "Use it from Python" code runs as written, and what it shows holds: structured
rollouts hold blocks whose paths restart their positions, and in both trainers of the TRL example
the engine's log-probs equal the trainer's (DESIGN's invariant), so the README cannot rot."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
HEADING = "## Use it from Python"


def python_blocks(text: str, heading: str) -> list[str]:
    """The ```python blocks of one `## ` section of a markdown text, in order."""
    start = text.index(heading + "\n")
    end = text.find("\n## ", start + len(heading))
    section = text[start: end if end >= 0 else len(text)]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


@pytest.fixture(scope="module")
def readme_run(tmp_path_factory):
    """The namespace the section's blocks leave behind, run one after another in a fresh folder."""
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    blocks = python_blocks(README.read_text(encoding="utf-8"), HEADING)
    assert len(blocks) == 2, "the section shows sampling, then training"
    namespace: dict = {"__name__": "__readme__"}
    cwd = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("readme"))
    try:
        for i, block in enumerate(blocks):
            exec(compile(block, f"{README.name}:python block {i + 1}", "exec"), namespace)
    finally:
        os.chdir(cwd)
    return namespace


def test_the_sampling_example_shows_blocks_log_probs_and_layouts(readme_run):
    results = readme_run["results"]
    structured, causal = results["structured"], results["causal"]
    assert len(structured) == len(causal) == 2
    for r in structured + causal:
        assert len(r.logprobs) == len(r.completion_ids) == len(r.loss_mask) > 0
        assert all(x <= 0 for x in r.logprobs)
    forked = [r for r in structured if r.num_blocks]
    assert forked, "the nudged model should open a block"
    for r in forked:
        pos = r.layout.position_ids
        assert len(set(pos)) < len(pos)  # sibling paths share positions
        assert 0 in r.loss_mask  # the engine injected tags (never trained)
    for r in causal:
        assert list(r.layout.position_ids) == list(range(len(r.layout)))


def _engine_trainer_gap(trainer) -> float:
    """Largest |engine - trainer| log-prob over a fresh batch, through the trainer's own pass."""
    from parallel_r1.train.logprob_check import LogprobCheck

    trainer.model.train()
    trainer.current_gradient_accumulation_steps = 1
    rows = [trainer.train_dataset[i] for i in range(2) for _ in range(trainer.num_generations)]
    batch = trainer._generate_and_score_completions(rows)
    return LogprobCheck.logprob_deltas(trainer, batch).max().item()


def test_the_structured_trainer_scores_what_the_engine_sampled(readme_run):
    trainer, gaps = readme_run["trainer"], readme_run["gaps"]
    assert trainer.layout == "structured"
    assert len(gaps) == 2 and max(gaps) < 1e-4, gaps  # logged at each step of the example
    assert _engine_trainer_gap(trainer) < 1e-4
    losses = [log for log in trainer.state.log_history if "grad_norm" in log]
    assert any(log["grad_norm"] > 0 for log in losses), "the rewards should move the weights"


def test_the_plain_trl_trainer_scores_causal_rollouts_exactly(readme_run):
    from trl import GRPOTrainer

    plain = readme_run["plain"]
    assert type(plain) is GRPOTrainer
    assert plain.state.global_step == 2
    assert _engine_trainer_gap(plain) < 1e-4
