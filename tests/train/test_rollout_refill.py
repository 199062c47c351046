"""DAPO dynamic sampling with refill: groups whose rewards are all equal are replaced."""

from __future__ import annotations

from types import SimpleNamespace

from parallel_r1.engine.torch_engine import TorchEngine
from parallel_r1.engine.types import ParallelParams, SamplingParams
from parallel_r1.models.load import apply_template
from parallel_r1.models.tiny import build_tiny
from parallel_r1.train.rollout import EngineRollouts

G = 4


def reward(texts, golds, step):
    """Prompts whose gold is 'dead' score the same everywhere; the others alternate 0/1."""
    scores = [0.0 if g == "dead" else float(i % 2) for i, g in enumerate(golds)]
    return scores, [{"acc": s} for s in scores]


def run(refill_rounds):
    model, tok = build_tiny(0)
    golds = {"dead one": "dead", "live one": "1", "live two": "2", "dead two": "dead"}
    rollouts = EngineRollouts(TorchEngine(model, tok), tok,
                              SamplingParams(max_tokens=6, parallel=ParallelParams(mode="causal")),
                              reward, golds, dynamic_sampling=True, refill_rounds=refill_rounds)
    trainer = SimpleNamespace(state=SimpleNamespace(global_step=0), num_generations=G, model=model)
    out = rollouts(["dead one"] * G + ["live one"] * G, trainer)
    return out, rollouts.last_metrics, tok


def test_without_refill_the_dead_group_is_masked_out():
    out, metrics, _ = run(0)
    assert [any(m) for m in out["env_mask"]] == [False] * G + [True] * G
    assert metrics["filter/dropped_groups"] == 0.5


def test_refill_replaces_the_dead_group_with_a_live_one():
    out, metrics, tok = run(3)
    live = {tuple(apply_template(tok, p)) for p in ("live one", "live two")}
    assert all(tuple(p) in live for p in out["prompt_ids"][:G])  # a fresh, live prompt
    assert len({tuple(p) for p in out["prompt_ids"][:G]}) == 1  # one prompt per group
    assert all(any(m) for m in out["env_mask"])
    assert out["reward"][:G] == [0.0, 1.0, 0.0, 1.0]
    assert metrics["filter/refilled_groups"] == 0.5 and metrics["filter/dropped_groups"] == 0.0


def test_refill_does_not_depend_on_how_the_batch_is_sharded():
    """Two dead groups refilled in one process, and the same two groups on two processes (one
    each, as TRL slices a global batch), draw the same refills, and the two refills differ
    (issue 19: each process drew the same prompt and samples for its own dead group)."""
    model, tok = build_tiny(0)
    golds = {"dead one": "dead", "dead two": "dead", "live one": "1", "live two": "2",
             "live three": "3", "live four": "4"}

    def call(prompts, process):
        rollouts = EngineRollouts(
            TorchEngine(model, tok), tok,
            SamplingParams(max_tokens=6, parallel=ParallelParams(mode="causal")), reward, golds,
            dynamic_sampling=True, refill_rounds=2)
        trainer = SimpleNamespace(state=SimpleNamespace(global_step=0), num_generations=G,
                                  model=model, accelerator=SimpleNamespace(process_index=process))
        return rollouts(prompts, trainer)

    batch = ["dead one"] * G + ["dead two"] * G
    whole = call(batch, 0)
    halves = [call(batch[:G], 0), call(batch[G:], 1)]
    for key in ("prompt_ids", "completion_ids", "reward"):
        assert whole[key] == halves[0][key] + halves[1][key], key
    assert whole["completion_ids"][:G] != whole["completion_ids"][G:]
    assert all(any(m) for m in whole["env_mask"])  # both were refilled with live groups
