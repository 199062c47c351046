"""Loading, tagging, templating and saving models (on the tiny model)."""

import json

import pytest
import torch

from parallel_r1.errors import ConfigError
from parallel_r1.format.tags import TAGS, TagIds
from parallel_r1.models import (
    add_tags,
    apply_template,
    build_tiny,
    build_tokenizer,
    fix_special_tokens,
    load,
    load_model,
    load_tokenizer,
    read_provenance,
    save,
)


def _untagged(extra_rows: int):
    """A tiny model whose tokenizer lacks the tags, with `extra_rows` spare embedding rows."""
    from transformers import Qwen3Config, Qwen3ForCausalLM

    tokenizer = build_tokenizer(with_tags=False)
    config = Qwen3Config(vocab_size=len(tokenizer) + extra_rows, hidden_size=32,
                         intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                         num_key_value_heads=1, head_dim=16, tie_word_embeddings=True)
    torch.manual_seed(0)
    return Qwen3ForCausalLM(config).eval(), tokenizer


def test_save_load_round_trip_identical_logits(tmp_path):
    model, tokenizer = build_tiny(0, num_layers=3, hidden=96)
    path = save(model, tokenizer, tmp_path / "m", meta={"source": "test", "seed": 0})
    loaded, loaded_tok = load(path)
    ids = torch.tensor([apply_template(tokenizer, "What is 17 + 25?")])  # [1, T]
    with torch.no_grad():
        assert torch.equal(model(ids).logits, loaded(ids).logits)  # [1, T, V]
    assert loaded_tok.get_vocab() == tokenizer.get_vocab()
    assert loaded_tok.chat_template == tokenizer.chat_template
    assert TagIds.from_tokenizer(loaded_tok) == TagIds.from_tokenizer(tokenizer)
    record = read_provenance(path)
    assert record["source"] == "test" and record["transformers"]
    assert record["tag_ids"] == dict(zip(TAGS, TagIds.from_tokenizer(tokenizer).as_tuple()))
    assert (path / "model.safetensors").is_file()


def test_save_replaces_atomically_and_leaves_no_temp(tmp_path):
    model, tokenizer = build_tiny(0)
    save(model, tokenizer, tmp_path / "m", meta={"n": 1})
    save(model, tokenizer, tmp_path / "m", meta={"n": 2})
    assert read_provenance(tmp_path / "m")["n"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_failed_save_keeps_the_old_directory(tmp_path, monkeypatch):
    model, tokenizer = build_tiny(0)
    save(model, tokenizer, tmp_path / "m", meta={"n": 1})

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(tokenizer, "save_pretrained", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        save(model, tokenizer, tmp_path / "m", meta={"n": 2})
    assert read_provenance(tmp_path / "m")["n"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_add_tags_resizes_only_when_the_table_is_full():
    model, tokenizer = _untagged(extra_rows=0)
    rows = len(tokenizer)
    ids = torch.tensor([tokenizer.encode("Final Answer: 42")])  # [1, T]
    with torch.no_grad():
        before = model(ids).logits  # [1, T, V]
    assert add_tags(model, tokenizer) == 6
    assert model.get_input_embeddings().weight.shape[0] == rows + 6 == len(tokenizer)
    assert model.config.vocab_size == rows + 6
    with torch.no_grad():
        after = model(ids).logits  # [1, T, V + 6]
    assert torch.equal(after[..., :rows], before)  # old rows untouched
    assert TagIds.from_tokenizer(tokenizer).as_tuple() == tuple(range(rows, rows + 6))
    # idempotent
    assert add_tags(model, tokenizer) == 0
    assert model.get_input_embeddings().weight.shape[0] == rows + 6


def test_add_tags_uses_spare_rows_without_resizing():
    model, tokenizer = _untagged(extra_rows=16)
    weight = model.get_input_embeddings().weight.detach().clone()
    assert add_tags(model, tokenizer) == 6
    assert torch.equal(model.get_input_embeddings().weight, weight)
    assert max(TagIds.from_tokenizer(tokenizer).as_tuple()) < weight.shape[0]


def test_add_tags_keeps_existing_extra_special_tokens():
    _model, tokenizer = _untagged(extra_rows=0)
    tokenizer.add_special_tokens({"extra_special_tokens": ["<tool>"]})
    add_tags(None, tokenizer)
    assert len(tokenizer.encode("<tool>", add_special_tokens=False)) == 1
    assert "<tool>" in tokenizer.extra_special_tokens
    assert all(t in tokenizer.extra_special_tokens for t in TAGS)


def test_add_tags_on_a_tagged_tokenizer_adds_nothing():
    model, tokenizer = build_tiny(0)
    before = tokenizer.get_vocab()
    assert add_tags(model, tokenizer) == 0
    assert tokenizer.get_vocab() == before


def test_fix_special_tokens_quirk_and_missing_pad():
    tokenizer = build_tokenizer()
    tokenizer.eos_token = "<|im_start|>"  # what transformers 5.17 reads from SmolLM2's GGUF
    tokenizer.pad_token = None
    fix_special_tokens(tokenizer)
    assert tokenizer.eos_token == tokenizer.pad_token == "<|im_end|>"
    tokenizer = build_tokenizer()
    tokenizer.pad_token = None
    fix_special_tokens(tokenizer)
    assert tokenizer.pad_token == tokenizer.eos_token == "<|endoftext|>"


def test_apply_template_chat_plain_and_system():
    _, tokenizer = build_tiny(0)
    chat = apply_template(tokenizer, "2+2?")
    assert tokenizer.decode(chat) == "<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n"
    messages = [{"role": "user", "content": "2+2?"}]
    assert apply_template(tokenizer, messages) == chat
    with_system = tokenizer.decode(apply_template(tokenizer, "2+2?", system="Be brief."))
    assert with_system.startswith("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user")
    assert apply_template(tokenizer, "2+2?", chat=False) == tokenizer.encode("2+2?")
    assert tokenizer.decode(apply_template(tokenizer, "2+2?", chat=False, system="S")) == "S\n\n2+2?"
    tokenizer.chat_template = None
    assert apply_template(tokenizer, "2+2?") == tokenizer.encode("2+2?")


def test_errors(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_model(tmp_path / "nope")
    with pytest.raises(ConfigError, match="does not exist"):
        load_tokenizer("./no/such/dir")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no config.json"):
        load_model(tmp_path / "empty")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="is a file"):
        load(tmp_path / "file")
    model, tokenizer = build_tiny(0)
    path = save(model, tokenizer, tmp_path / "m")
    with pytest.raises(ConfigError, match="dtype"):
        load_model(path, dtype="float8")
    with pytest.raises(ConfigError, match="GGUF"):
        load_model(path, gguf_file="missing.gguf")


def test_not_a_causal_lm(tmp_path):
    from transformers import T5Config

    T5Config(d_model=8, num_layers=1, num_heads=1, d_kv=8, d_ff=8).save_pretrained(tmp_path)
    with pytest.raises(ConfigError, match="not a causal language model"):
        load_model(tmp_path)


def test_dtype_bfloat16(tmp_path):
    model, tokenizer = build_tiny(0)
    path = save(model, tokenizer, tmp_path / "m")
    assert load_model(path, dtype="bfloat16").dtype == torch.bfloat16
    assert load_model(path, dtype="auto").dtype == torch.float32
    assert json.loads((path / "config.json").read_text())["model_type"] == "qwen3"


def test_importing_models_stays_light():
    import subprocess
    import sys

    code = ("import sys, parallel_r1.models; "
            "print(sorted(m for m in ('transformers', 'trl', 'vllm', 'typer', 'fastapi') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_save_refuses_to_replace_a_foreign_directory(tmp_path):
    model, tokenizer = build_tiny(0)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="refusing to replace"):
        save(model, tokenizer, tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
    (tmp_path / "empty").mkdir()
    assert save(model, tokenizer, tmp_path / "empty") == tmp_path / "empty"


def test_saved_directory_is_readable_by_others(tmp_path):
    import os
    import stat

    model, tokenizer = build_tiny(0)
    old = os.umask(0o022)
    try:
        path = save(model, tokenizer, tmp_path / "m")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o755
