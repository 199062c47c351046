"""SFT: the collator matches the structure function, one step moves every weight, blocks are learned."""

from __future__ import annotations

import copy

import torch

from parallel_r1.format.tags import TagIds
from parallel_r1.structure import batch_structure
from parallel_r1.train.sft import IGNORE, ParallelCollator, SFTHyper, train_sft


def test_structured_collator_equals_batch_structure(make_examples):
    from parallel_r1.models.tiny import build_tokenizer

    tok = build_tokenizer()
    tags = TagIds.from_tokenizer(tok)
    _, examples = make_examples(tok, 3, level=3)
    batch = ParallelCollator(tok.pad_token_id, tags)(examples)
    lengths = [len(e["input_ids"]) for e in examples]
    starts = [e["response_start"] for e in examples]
    pos, mask = batch_structure(batch["input_ids"], batch["token_mask"], tags, starts)
    assert torch.equal(batch["position_ids"], pos) and torch.equal(batch["attention_mask"], mask)
    assert batch["attention_mask"].shape == (3, 1, max(lengths), max(lengths))
    for b, (n, s) in enumerate(zip(lengths, starts)):  # labels: response tokens + EOS only
        assert (batch["labels"][b, :s] == IGNORE).all() and (batch["labels"][b, n:] == IGNORE).all()
        assert torch.equal(batch["labels"][b, s:n], batch["input_ids"][b, s:n])
        assert batch["input_ids"][b, n - 1] == tok.eos_token_id
    causal = ParallelCollator(tok.pad_token_id, structured=False)(examples)
    assert causal["attention_mask"].dim() == 2 and "position_ids" not in causal


def test_padded_structured_forward_has_no_nan(make_examples):
    from parallel_r1.models.tiny import build_tiny

    model, tok = build_tiny(0)
    _, examples = make_examples(tok, 4, level=2)
    batch = ParallelCollator(tok.pad_token_id, TagIds.from_tokenizer(tok))(examples)
    batch.pop("token_mask")
    out = model(**batch)
    assert torch.isfinite(out.logits).all() and torch.isfinite(out.loss)


def test_one_sft_step_changes_every_parameter(tmp_path, make_examples):
    from parallel_r1.models.tiny import build_tiny

    model, tok = build_tiny(0)
    before = copy.deepcopy(model.state_dict())
    _, examples = make_examples(tok, 4)
    hp = SFTHyper(per_device_batch_size=4, gradient_accumulation_steps=1, max_steps=1,
                  warmup_ratio=0.0, learning_rate=1e-3, save_steps=100)
    model, _ = train_sft(model, tok, examples, output_dir=tmp_path, hp=hp)
    unchanged = [k for k, v in model.state_dict().items() if torch.equal(v, before[k])]
    assert not unchanged, unchanged


def test_sft_teaches_blocks(sft_tiny):
    _, _, before, after = sft_tiny
    assert before <= 0.25
    assert after >= 0.6, (before, after)
