"""The three stage kinds of a recipe: a Stage's settings -> one library call each.

sft: records with a trace -> `sft.train_sft`; rl: prompts and golds -> `grpo.build_grpo_trainer`;
eval: `parallel_r1.eval.evaluate.evaluate`. Data specs: "synthetic:LEVEL[/plain]:COUNT[:SEED]"
(the offline task, `data.synthetic.from_spec`), or a data set name / file read by
`parallel_r1.data.sources`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from parallel_r1.errors import ConfigError
from parallel_r1.train.distributed import rank
from parallel_r1.train.recipe import Recipe, Stage
from parallel_r1.train.trackers import tracker_setup
from parallel_r1.train.train_layout import describe, is_mismatch

TRACE_FIELDS = ("completion", "trajectory", "trace", "response")


def load_records(spec: str) -> list[Any]:
    """Records for a data spec (see the module docstring)."""
    if spec.startswith("synthetic:"):
        from parallel_r1.data.synthetic import from_spec

        return from_spec(spec)
    from parallel_r1.data.sources import load_dataset

    return load_dataset(spec)


def _trace(record: Any) -> str:
    for name in TRACE_FIELDS:
        if record.extras.get(name):
            return str(record.extras[name])
    raise ConfigError(f"record '{record.id}' has no trace; SFT data needs one of "
                      f"{', '.join(TRACE_FIELDS)}", field="data")


def with_lora(model: Any, recipe: Recipe) -> Any:
    """The model wrapped in a LoRA adapter when the recipe asks (model.lora_r > 0); the runner
    merges it back before saving."""
    if not recipe.model.lora_r:
        return model
    from parallel_r1.train.sft import lora_model

    return lora_model(model, r=recipe.model.lora_r, alpha=2 * recipe.model.lora_r)


def _optimiser(stage: Stage, recipe: Recipe) -> dict[str, Any]:
    """The optimisation settings SFT and GRPO share, from a stage of the recipe."""
    return {"learning_rate": stage.learning_rate, "adam_beta1": stage.adam_beta1,
            "adam_beta2": stage.adam_beta2, "weight_decay": stage.weight_decay,
            "lr_scheduler_type": stage.lr_scheduler_type, "warmup_ratio": stage.warmup_ratio,
            "max_grad_norm": stage.max_grad_norm,
            "per_device_batch_size": stage.per_device_batch_size,
            "gradient_accumulation_steps": stage.gradient_accumulation_steps,
            "max_steps": stage.max_steps, "save_steps": stage.save_steps, "seed": recipe.seed,
            "bf16": recipe.model.dtype == "bfloat16",
            "activation_checkpointing": stage.activation_checkpointing}


def base_model_of(recipe: Recipe, source: str | None) -> str:
    """The original base model of a stage: the recipe's model, through earlier stages' outputs."""
    if source is not None:
        from parallel_r1.models.load import read_provenance

        return (read_provenance(source) or {}).get("base_model") or source
    from parallel_r1.models import smollm2

    return smollm2.HUB_ID if recipe.model.name == smollm2.NAME else recipe.model.name


def lineage_of(source: str | None) -> list[dict[str, Any]]:
    """The training steps that made the model in `source` ({recipe, stage, kind, data} each,
    oldest first; [] for the recipe's own model): its provenance's lineage, or its own stage
    when an older provenance has none."""
    if source is None:
        return []
    from parallel_r1.models.load import read_provenance

    meta = read_provenance(source) or {}
    if "lineage" in meta:
        return list(meta["lineage"])
    return [{k: meta.get(k) for k in ("recipe", "stage", "kind", "data")}] \
        if meta.get("kind") in ("sft", "rl") else []


def card_meta(recipe: Recipe, stage: Stage, source: str | None) -> dict[str, Any]:
    """The provenance of a stage's model (its card, `parallel_r1.models.card`)."""
    training = {"learning_rate": stage.learning_rate, "max_steps": stage.max_steps,
                "per_device_batch_size": stage.per_device_batch_size,
                "gradient_accumulation_steps": stage.gradient_accumulation_steps,
                "template": stage.template, "seed": recipe.seed}
    if stage.kind == "rl":
        training |= {"num_generations": stage.num_generations, "loss_type": stage.loss_type,
                     "reward": stage.reward, "grader": stage.grader,
                     "max_tokens": stage.max_tokens, "temperature": stage.temperature,
                     "num_iterations": stage.num_iterations,
                     "train_layout": stage.train_layout or stage.mode}
        mismatch = describe(stage.mode, stage.train_layout)
        if mismatch:  # a model trained on a deliberate mismatch says so wherever it goes
            training["layout_mismatch"] = mismatch
    step = {"recipe": recipe.name, "stage": stage.name, "kind": stage.kind, "data": stage.data}
    return {"recipe": recipe.name, "stage": stage.name, "kind": stage.kind,
            "lineage": [*lineage_of(source), step],
            "base_model": base_model_of(recipe, source), "parent": source, "data": stage.data,
            "mode": stage.mode, "num_paths": stage.num_paths if stage.mode == "structured"
            else None, "lora_r": recipe.model.lora_r or None, "training": training}


def run_sft(model: Any, tok: Any, stage: Stage, out: Path, recipe: Recipe,
            resume: str | None, source: str | None = None) -> tuple[Any, dict[str, float]]:
    """Structured or causal SFT of `model` on the stage's traces (`source`: where it came from,
    for the model card)."""
    from parallel_r1.data.templates import render_prompt
    from parallel_r1.train.sft import SFTHyper, tokenize_example, train_sft

    examples = [tokenize_example(tok, render_prompt(stage.template, r.question), _trace(r),
                                 chat=recipe.model.chat, max_length=stage.max_length)
                for r in load_records(stage.data)]
    if examples and not any(examples):
        raise ConfigError(f"all {len(examples)} SFT examples are longer than max_length "
                          f"({stage.max_length} tokens); raise it", field=f"stages.{stage.name}"
                          ".max_length")
    hp = SFTHyper(**_optimiser(stage, recipe), num_epochs=stage.num_epochs)
    model = with_lora(model, recipe)
    from parallel_r1.train.logs import JsonlMetrics

    extra, callbacks = tracker_setup(recipe, stage, out)
    return train_sft(model, tok, examples, output_dir=out, hp=hp,
                     structured=stage.mode == "structured", resume_from_checkpoint=resume,
                     callbacks=[JsonlMetrics(out / "metrics.jsonl"), *callbacks],
                     card_meta=card_meta(recipe, stage, source), **extra)


def run_rl(model: Any, tok: Any, stage: Stage, out: Path, recipe: Recipe,
           resume: str | None, source: str | None = None) -> tuple[Any, dict[str, float]]:
    """GRPO with engine rollouts, the stage's reward schedule, filters and loss."""
    trainer = build_rl(model, tok, stage, out, recipe, source)
    result = trainer.train(resume_from_checkpoint=resume)
    trainer.model.eval()
    return trainer.model, dict(result.metrics)


def build_rl(model: Any, tok: Any, stage: Stage, out: Path, recipe: Recipe,
             source: str | None = None) -> Any:
    """The ready GRPO trainer of an rl stage (`run_rl` trains it)."""
    from parallel_r1.data.templates import render_prompt
    from parallel_r1.engine.types import ParallelParams, SamplingParams
    from parallel_r1.rewards import build_reward
    from parallel_r1.train.grpo import GRPOHyper, build_grpo_trainer
    from parallel_r1.train.rollout import EngineRollouts, rollout_backend

    model = with_lora(model, recipe)
    engine, backend_args = rollout_backend(stage, model, tok)  # a missing vllm fails here
    records = load_records(stage.data)
    prompts = [render_prompt(stage.template, r.question) for r in records]
    params = SamplingParams(
        temperature=stage.temperature, max_tokens=stage.max_tokens,
        parallel=ParallelParams(mode=stage.mode, num_paths=stage.num_paths,
                                max_path_tokens=stage.max_path_tokens,
                                max_blocks=stage.max_blocks))
    reward = build_reward(stage.reward, grader=stage.grader)
    rollouts = EngineRollouts(
        engine, tok, params, reward.score_parts,
        {p: r.answer for p, r in zip(prompts, records)}, chat=recipe.model.chat,
        seed=recipe.seed, dynamic_sampling=stage.dynamic_sampling,
        refill_rounds=stage.refill_rounds, malformed=stage.malformed,
        dump_dir=str(out), dump_every=stage.dump_every, rank=rank())
    hp = GRPOHyper(
        **_optimiser(stage, recipe), num_generations=stage.num_generations,
        loss_type=stage.loss_type, advantage=stage.advantage, epsilon=stage.epsilon,
        epsilon_high=stage.epsilon_high, beta=stage.beta, temperature=stage.temperature,
        max_completion_length=stage.max_tokens, num_iterations=stage.num_iterations)
    extra, callbacks = tracker_setup(recipe, stage, out)
    mismatch = is_mismatch(stage.mode, stage.train_layout)
    return build_grpo_trainer(model, tok, prompts, rollouts, output_dir=out, hp=hp,
                              layout=stage.train_layout or stage.mode,
                              sampled_layout=stage.mode if mismatch else None,
                              check_logprobs=stage.check_logprobs,
                              logprob_check_every=stage.logprob_check_every, callbacks=callbacks,
                              card_meta=card_meta(recipe, stage, source), **backend_args, **extra)


def eval_stage_on(recipe: Recipe, stage: Stage, model_dir: str | None) -> Stage:
    """An eval stage as it runs on `model_dir` (None: the recipe's model): a mode or template
    the recipe does not set comes from the model's record (`models.settings`; none for a hub id
    or the tiny model); a set one that contradicts the record is kept, with a warning line. A
    recipe built in code (no record of what its file set) sets every field."""
    import dataclasses
    import sys

    from parallel_r1.models.settings import recorded, settle

    model_dir = model_dir or (recipe.model.name if recipe.model.name != "tiny" else None)
    if model_dir is None:
        return stage
    keys = ("mode", "template")
    given = {k: getattr(stage, k) if stage.given is None or k in stage.given else None
             for k in keys}
    values, warnings = settle(given, recorded(model_dir)[0], {k: getattr(stage, k) for k in keys},
                              model=model_dir, flags={k: f"stages.{stage.name}.{k}" for k in keys})
    for line in warnings if rank() == 0 else []:
        print(line, file=sys.stderr, flush=True)
    return dataclasses.replace(stage, **values)


def run_eval(model: Any, tok: Any, stage: Stage, out: Path, seed: int) -> dict[str, Any]:
    """`parallel_r1.eval.evaluate` on the stage's `eval` settings; returns its headline numbers."""
    from parallel_r1.eval.evaluate import evaluate
    from parallel_r1.train.preflight import eval_config

    cfg = eval_config(stage, seed, f"stages.{stage.name}.eval")
    if rank() != 0:
        return {}
    engine = None
    if stage.kv_cache_gb is not None:  # the built-in engine under a KV budget
        from parallel_r1.engine.torch_engine import TorchEngine

        engine = TorchEngine(model, tok, kv_budget_gb=stage.kv_cache_gb)
    summary = evaluate(model, tok, cfg, out, model_name=stage.name, progress=True, engine=engine)
    return {"summary": {k: v for k, v in summary.items() if k not in ("table", "config")}}


def card_eval(model_dir: str | None, stage: Stage, out: Path) -> None:
    """Add an eval stage's table (`out/table.md`) to the card of the model it measured (one of
    ours: `model_dir` from an earlier stage; None = the recipe's own model, left alone)."""
    from parallel_r1.models.load import read_provenance

    if model_dir is None or rank() != 0 or \
            read_provenance(model_dir) is None:  # not a directory models.save wrote
        return
    import json

    from parallel_r1.models.card import record_eval

    summary = json.loads((out / "summary.json").read_text())
    record_eval(model_dir, stage.name, summary, (out / "table.md").read_text())
