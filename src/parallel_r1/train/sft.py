"""Supervised fine-tuning on parallel traces through TRL's SFTTrainer, with our collator.

The collator right-pads, puts labels only on response tokens (the EOS included, SPEC 5.3), and in
structured mode passes the 4-D additive mask and multiverse positions of
`parallel_r1.structure.batch_structure` (padding rows see themselves: no NaN). Causal mode ("Seen")
is the plain causal forward with a 2-D padding mask.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch

from parallel_r1.format.tags import TagIds
from parallel_r1.structure import batch_structure

IGNORE = -100


def tokenize_example(tokenizer: Any, prompt: str, completion: str, *, chat: bool = True,
                     max_length: int | None = None) -> dict[str, Any]:
    """Token ids of prompt + completion + EOS, and where the response starts.

    Args:
        prompt: the rendered prompt text (the chat template is applied here when `chat`).
        completion: the target response, tags included.
        max_length: drop the example (return None-like empty dict) when longer.
    Returns:
        {"input_ids": [T], "response_start": int}, or {} when longer than `max_length`.
    """
    from parallel_r1.models.load import apply_template

    prompt_ids = apply_template(tokenizer, prompt, chat=chat)
    response_ids = list(tokenizer.encode(completion, add_special_tokens=False))
    ids = prompt_ids + response_ids + [tokenizer.eos_token_id]
    if max_length is not None and len(ids) > max_length:
        return {}
    return {"input_ids": ids, "response_start": len(prompt_ids)}


@dataclass
class ParallelCollator:
    """Batch tokenized examples for SFT: right padding, response-only labels, optional structure."""

    pad_id: int
    tags: TagIds | None = None  # needed when structured
    structured: bool = True
    dtype: torch.dtype = torch.float32  # dtype of the additive mask (the model's)

    def __call__(self, features: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
        """features: dicts with input_ids [T_i] and response_start. Returns the model inputs:
        input_ids [B, T], labels [B, T], attention_mask [B, T] (causal) or [B, 1, T, T]
        (structured), position_ids [B, T] (structured), token_mask [B, T]."""
        seq = max(len(f["input_ids"]) for f in features)
        bsz = len(features)
        input_ids = torch.full((bsz, seq), self.pad_id, dtype=torch.long)  # [B, T]
        labels = torch.full((bsz, seq), IGNORE, dtype=torch.long)  # [B, T]
        token_mask = torch.zeros(bsz, seq, dtype=torch.long)  # [B, T]
        starts = []
        for b, f in enumerate(features):
            ids = torch.tensor(f["input_ids"], dtype=torch.long)  # [T_b]
            start = int(f["response_start"])
            input_ids[b, : len(ids)] = ids
            labels[b, start: len(ids)] = ids[start:]
            token_mask[b, : len(ids)] = 1
            starts.append(start)
        batch = {"input_ids": input_ids, "labels": labels, "token_mask": token_mask}
        if not self.structured:
            batch["attention_mask"] = token_mask
            return batch
        if self.tags is None:
            raise ValueError("a structured collator needs the tokenizer's TagIds")
        position_ids, mask = batch_structure(input_ids, token_mask, self.tags, starts,
                                             structured=True, dtype=self.dtype)
        batch["attention_mask"] = mask  # [B, 1, T, T]
        batch["position_ids"] = position_ids  # [B, T]
        return batch


def _sft_trainer_class():
    from trl import SFTTrainer

    from parallel_r1.train.cards import CardedCheckpoints
    from parallel_r1.train.distributed import CpuFsdp
    from parallel_r1.train.phases import PhaseTimedTrainer

    class ParallelSFTTrainer(CpuFsdp, PhaseTimedTrainer, CardedCheckpoints, SFTTrainer):
        """SFTTrainer whose token count reads our `token_mask` (a 4-D float mask cannot be summed),
        with timed phases and our card in each checkpoint."""

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            token_mask = inputs.pop("token_mask", None)
            before = self._total_train_tokens
            out = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            if token_mask is not None and model.training:
                count = self.accelerator.gather_for_metrics(token_mask.sum()).sum().item()
                self._total_train_tokens = before + count
                self._metrics["train"]["num_tokens"] = [self._total_train_tokens]
            return out

    return ParallelSFTTrainer


@dataclass
class SFTHyper:
    """Optimisation settings of one SFT run (SPEC 5.3 defaults)."""

    learning_rate: float = 1e-5
    adam_beta1: float = 0.9
    adam_beta2: float = 0.95
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    lr_scheduler_type: str = "cosine"
    max_grad_norm: float = 1.0
    per_device_batch_size: int = 1
    gradient_accumulation_steps: int = 16
    num_epochs: float = 5.0
    max_steps: int = -1
    save_steps: int = 50
    logging_steps: int = 1
    seed: int = 0
    bf16: bool = False
    activation_checkpointing: bool = False  # recompute activations in backward: less memory


def sft_args(output_dir: str | Path, hp: SFTHyper, **extra: Any):
    """TRL SFTConfig for our collator (dataset preparation skipped, extra columns kept).

    Args:
        extra: more SFTConfig fields, e.g. report_to=["tensorboard"], run_name="demo/sft".
    """
    from trl import SFTConfig

    from parallel_r1.train.trainer_args import checkpointing_args

    fields = dict(
        output_dir=str(output_dir), learning_rate=hp.learning_rate, adam_beta1=hp.adam_beta1,
        adam_beta2=hp.adam_beta2, weight_decay=hp.weight_decay, warmup_steps=hp.warmup_ratio,
        lr_scheduler_type=hp.lr_scheduler_type, max_grad_norm=hp.max_grad_norm,
        per_device_train_batch_size=hp.per_device_batch_size,
        gradient_accumulation_steps=hp.gradient_accumulation_steps,
        num_train_epochs=hp.num_epochs, max_steps=hp.max_steps, save_steps=hp.save_steps,
        logging_steps=hp.logging_steps, seed=hp.seed, data_seed=hp.seed, bf16=hp.bf16,
        report_to=[],
        save_strategy="steps", dataset_kwargs={"skip_prepare_dataset": True},
        remove_unused_columns=False, max_length=None, disable_tqdm=True, optim="adamw_torch",
        dataloader_pin_memory=torch.cuda.is_available(),
        use_cpu=not torch.cuda.is_available(), ddp_find_unused_parameters=False,
        **checkpointing_args(SFTConfig, hp.activation_checkpointing))
    return SFTConfig(**(fields | extra))


def lora_model(model: Any, *, r: int = 16, alpha: int = 32, dropout: float = 0.0,
               target_modules: Sequence[str] | str = "all-linear") -> Any:
    """Wrap `model` with a peft LoRA adapter on its linear layers.

    The embedding table (and a tied output head) stays frozen, so tags newly added to a
    pretrained model keep their initial rows: the adapter has to learn to emit them through the
    hidden states. peft's trainable-token rows are not used because TRL's fused log-prob head
    reads `lm_head.weight` directly and would not see them (trainer and engine would disagree).
    """
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, task_type="CAUSAL_LM",
                        target_modules=list(target_modules) if not isinstance(target_modules, str)
                        else target_modules)
    return get_peft_model(model, config)


def train_sft(model: Any, tokenizer: Any, examples: Sequence[dict[str, Any]], *,
              output_dir: str | Path, hp: SFTHyper | None = None, structured: bool = True,
              resume_from_checkpoint: str | bool | None = None, callbacks: list | None = None,
              card_meta: dict[str, Any] | None = None,
              **extra_args: Any) -> tuple[Any, dict[str, float]]:
    """Fine-tune `model` on tokenized examples and return it with the final metrics.

    Args:
        examples: dicts from `tokenize_example` (input_ids, response_start).
        output_dir: where the trainer writes checkpoints (`checkpoint-N/`).
        hp: optimisation settings (SPEC 5.3 defaults).
        structured: structured ("Unseen") or causal ("Seen") forward.
        resume_from_checkpoint: a checkpoint dir, or True for the last one in output_dir.
        callbacks: more TrainerCallbacks (tracker callbacks included).
        card_meta: provenance for the model card of each checkpoint (models.card).
        extra_args: more SFTConfig fields (see `sft_args`).
    Returns:
        (trained model, train metrics of the trainer).
    Raises:
        DataError: no example left to train on.
    """
    from datasets import Dataset

    from parallel_r1.train.distributed import announce
    from parallel_r1.train.progress import quiet_progress

    hp = hp or SFTHyper()
    rows = [e for e in examples if e]
    if not rows:
        from parallel_r1.errors import DataError

        raise DataError(f"no SFT examples: {len(examples)} given, all empty or longer than "
                        "max_length")
    dtype = next(model.parameters()).dtype
    tags = TagIds.from_tokenizer(tokenizer) if structured else None
    collator = ParallelCollator(tokenizer.pad_token_id, tags, structured, dtype)
    trainer = _sft_trainer_class()(
        model=model, args=sft_args(output_dir, hp, **extra_args),
        train_dataset=Dataset.from_list(rows), data_collator=collator,
        processing_class=tokenizer, callbacks=callbacks)
    trainer.card_meta = card_meta
    announce(trainer, "SFT")
    quiet_progress(trainer, "SFT")
    result = trainer.train(resume_from_checkpoint=resume_from_checkpoint)
    model = trainer.model
    model.eval()
    return model, dict(result.metrics)
