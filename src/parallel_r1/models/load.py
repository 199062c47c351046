"""Load a causal LM and its tokenizer (hub id or local directory), add the tags, template, save.

Everything here is plain transformers (`from_pretrained` / `save_pretrained`), so a directory
written by `save` loads anywhere transformers or vLLM does.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from parallel_r1.errors import ConfigError, describe_type
from parallel_r1.format.tags import TAGS
from parallel_r1.outputs import temp_name

PROVENANCE_FILE = "parallel_r1.json"
DTYPES = ("float32", "bfloat16", "float16", "auto")


def resolve_source(name_or_path: str | os.PathLike, gguf_file: str | None = None) -> str:
    """A local directory (checked) or a hub id (left to transformers).

    Raises:
        ConfigError: a local path that is missing, a file, or a folder without config.json.
    """
    text = str(name_or_path)
    path = Path(text).expanduser()
    # A hub id is "name" or "org/name"; anything else is meant as a local path.
    looks_local = path.is_absolute() or text.startswith((".", "~")) or text.count("/") > 1
    if path.is_dir():
        if gguf_file is not None:
            if not (path / gguf_file).is_file():
                raise ConfigError(f"no GGUF file '{gguf_file}' in {path}", field="gguf_file")
        elif not (path / "config.json").is_file():
            raise ConfigError(f"{path} has no config.json: not a transformers model directory "
                              "(write one with `parallel-r1 models prepare` or models.save)")
        return str(path)
    if path.exists():
        raise ConfigError(f"{path} is a file, not a model directory")
    if looks_local:
        raise ConfigError(f"model directory {path} does not exist")
    return text  # a hub id such as "Qwen/Qwen3-4B-Base"


def _not_found(source: str, exc: Exception) -> str:
    if Path(source).is_dir():
        return f"cannot load {source}: {exc}"
    return (f"'{source}' is neither a local directory nor a model the hub could give "
            f"(offline, or a typo?): {exc}")


def _torch_dtype(dtype: str) -> Any:
    import torch

    if dtype == "auto":
        return "auto"
    if dtype not in DTYPES:
        raise ConfigError(f"unknown dtype '{dtype}'; known: {', '.join(DTYPES)}", field="dtype")
    return getattr(torch, dtype)


def load_model(
    name_or_path: str | os.PathLike,
    *,
    dtype: str = "float32",
    device: str = "cpu",
    attn_implementation: str = "sdpa",
    gguf_file: str | None = None,
) -> Any:
    """Load a causal language model in eval mode.

    Args:
        name_or_path: a hub id ("Qwen/Qwen3-4B-Base") or a local transformers directory.
        dtype: "float32", "bfloat16", "float16" or "auto" (the checkpoint's own dtype).
        device: where to put the weights ("cpu", "cuda", "cuda:1", ...).
        attn_implementation: "sdpa" (default, takes the 4-D structured mask), "eager", ...
        gguf_file: a GGUF file name inside the directory, dequantised on load.

    Returns:
        The model (`AutoModelForCausalLM`), on `device`, in eval mode.

    Raises:
        ConfigError: the directory is missing or not a causal LM, the dtype is unknown, or the
            device unknown or absent (`parallel_r1.devices.check_device`).
    """
    from transformers import AutoModelForCausalLM

    from parallel_r1.devices import check_device

    device = check_device(device)  # before the weights load

    source = resolve_source(name_or_path, gguf_file)
    torch_dtype = _torch_dtype(dtype)
    extra = {"gguf_file": gguf_file} if gguf_file else {}
    try:
        model = AutoModelForCausalLM.from_pretrained(
            source, dtype=torch_dtype, attn_implementation=attn_implementation, **extra
        )
    except ValueError as exc:  # transformers' "Unrecognized configuration class ..."
        if "Unrecognized configuration class" in str(exc) or "does not appear" in str(exc):
            raise ConfigError(f"{source} is not a causal language model: {exc}") from exc
        raise
    except OSError as exc:
        raise ConfigError(_not_found(source, exc)) from exc
    return model.to(device).eval()


def fix_special_tokens(tokenizer: Any) -> Any:
    """Make eos and pad usable: repair a start marker read as eos, and pad = eos when missing.

    transformers 5.17 reads SmolLM2's GGUF eos as `<|im_start|>` (5.23 reads `<|im_end|>`); a
    start-of-turn marker can never be the end of a reply, so it is replaced by `<|im_end|>`
    whenever the vocabulary has one. Changes `tokenizer` in place and returns it.
    """
    vocab = tokenizer.get_vocab()
    if tokenizer.eos_token == "<|im_start|>" and "<|im_end|>" in vocab:
        tokenizer.eos_token = "<|im_end|>"
        if tokenizer.pad_token in (None, "<|im_start|>"):
            tokenizer.pad_token = "<|im_end|>"
    if tokenizer.pad_token is None and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_tokenizer(name_or_path: str | os.PathLike, *, gguf_file: str | None = None) -> Any:
    """Load a tokenizer with eos and pad set (see `fix_special_tokens`).

    Raises:
        ConfigError: the directory is missing or has no tokenizer.
    """
    from transformers import AutoTokenizer

    source = resolve_source(name_or_path, gguf_file)
    extra = {"gguf_file": gguf_file} if gguf_file else {}
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, **extra)
    except (OSError, ValueError, TypeError) as exc:
        if Path(source).is_dir():
            raise ConfigError(f"cannot load a tokenizer from {source}: {exc}") from exc
        if isinstance(exc, OSError):
            raise ConfigError(_not_found(source, exc)) from exc
        raise
    if tokenizer is None or isinstance(tokenizer, bool):
        raise ConfigError(f"{source} has no tokenizer files")
    return fix_special_tokens(tokenizer)


def load(
    name_or_path: str | os.PathLike,
    *,
    dtype: str = "float32",
    device: str = "cpu",
    attn_implementation: str = "sdpa",
    gguf_file: str | None = None,
) -> tuple[Any, Any]:
    """Load (model, tokenizer) from one hub id or directory; arguments as in `load_model`.

    Raises:
        ConfigError: as `load_model` and `load_tokenizer`.
    """
    tokenizer = load_tokenizer(name_or_path, gguf_file=gguf_file)
    model = load_model(name_or_path, dtype=dtype, device=device,
                       attn_implementation=attn_implementation, gguf_file=gguf_file)
    return model, tokenizer


def missing_tags(tokenizer: Any) -> list[str]:
    """The tags that this tokenizer does not encode as one token."""
    return [t for t in TAGS if len(tokenizer.encode(t, add_special_tokens=False)) != 1]


def add_tags(model: Any, tokenizer: Any) -> int:
    """Add the six tags as single special tokens where missing; resize only when needed.

    The embedding table grows (new rows drawn from the model's plain init, `mean_resizing=False`)
    only when the tokenizer outgrows it: Qwen3's table has spare rows, so there the ids are
    simply taken. Also sets pad = eos when pad is missing and copies eos/pad ids into the model's
    config and generation config. Idempotent.

    Args:
        model: a causal LM, or None to change only the tokenizer.
        tokenizer: changed in place.

    Returns:
        The number of tokens added to the tokenizer (0 when all six were there).
    """
    fix_special_tokens(tokenizer)
    missing = missing_tags(tokenizer)
    # replace_extra_special_tokens=False keeps the tokenizer's own extra special tokens.
    num_added = tokenizer.add_special_tokens(
        {"extra_special_tokens": missing}, replace_extra_special_tokens=False
    ) if missing else 0
    still = missing_tags(tokenizer)
    if still:
        raise ConfigError(f"the tokenizer still splits {still} after adding them as special tokens")
    if model is None:
        return num_added
    num_rows = model.get_input_embeddings().weight.shape[0]
    if len(tokenizer) > num_rows:
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    for cfg in (model.config, getattr(model, "generation_config", None)):
        if cfg is not None:
            cfg.eos_token_id = tokenizer.eos_token_id
            cfg.pad_token_id = tokenizer.pad_token_id
    return num_added


def apply_template(
    tokenizer: Any,
    question_or_messages: str | list[dict[str, str]],
    *,
    chat: bool = True,
    system: str | None = None,
) -> list[int]:
    """Token ids of a prompt, ready for generation.

    Args:
        question_or_messages: one user question, or chat messages ({"role", "content"}).
        chat: use the tokenizer's chat template with the generation prompt; plain text when False
            or when the tokenizer has no chat template.
        system: an optional system message put first.

    Returns:
        prompt_ids  # [T]

    Raises:
        ConfigError: `question_or_messages` is neither non-empty text nor a non-empty list of
            {"role", "content"} messages (e.g. None, token ids, a BatchEncoding).
    """
    check_prompt_text(question_or_messages)
    if isinstance(question_or_messages, str):
        messages = [{"role": "user", "content": question_or_messages}]
    else:
        messages = list(question_or_messages)
    if system is not None:
        messages = [{"role": "system", "content": system}, *messages]
    if chat and tokenizer.chat_template:
        # Render text then encode without special tokens, as vLLM does: a template that writes
        # its own bos would otherwise get a second one.
        text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return list(tokenizer.encode(text, add_special_tokens=False))
    text = "\n\n".join(m["content"] for m in messages)
    return list(tokenizer.encode(text, add_special_tokens=True))


def check_prompt_text(prompt: Any, where: str = "prompt") -> None:
    """Raise ConfigError unless `prompt` is non-empty text or a non-empty list of chat messages
    (dicts with string "role" and "content"), naming what was given."""
    accepted = 'text (str) or chat messages (list of {"role": ..., "content": ...} dicts)'
    if isinstance(prompt, str):
        if not prompt.strip():
            raise ConfigError(f"{where} is an empty string; give the question's text")
        return
    if isinstance(prompt, list) and prompt and all(
            isinstance(m, dict) and isinstance(m.get("role"), str) and
            isinstance(m.get("content"), (str, list)) for m in prompt):
        return  # content may be typed parts ([{"type": "text", ...}]), as chat templates take
    raise ConfigError(f"{where} is {describe_type(prompt)}; expected {accepted}"
                      + ("; token ids need no template: pass them to engine.generate as they are"
                         if describe_type(prompt).endswith(" of int") else ""))


def read_provenance(directory: str | os.PathLike) -> dict[str, Any] | None:
    """The `parallel_r1.json` of a saved directory, or None when there is none.

    Raises:
        ConfigError: the file is not valid JSON, or not a JSON object (names the file, line
            and column).
    """
    path = Path(directory) / PROVENANCE_FILE
    if not path.is_file():
        return None
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text ({exc.reason} at byte {exc.start}); restore it from "
                          "the model's source", file=str(path)) from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"invalid JSON: {exc.msg} (column {exc.colno}); fix it or restore it "
                          "from the model's source", file=str(path), line=exc.lineno) from None
    if not isinstance(meta, dict):
        raise ConfigError(f"expected a JSON object, got {type(meta).__name__}", file=str(path))
    return meta


def save(model: Any, tokenizer: Any, directory: str | os.PathLike, *,
         meta: dict[str, Any] | None = None, state_dict: dict[str, Any] | None = None) -> Path:
    """Write a standard transformers directory (safetensors) plus `parallel_r1.json` and a model
    card (`README.md`, see `parallel_r1.models.card`), atomically.

    Everything is written into a temporary sibling directory which is then renamed into place,
    so a crash never leaves a half-written model at `directory`. An existing directory is
    replaced only when it is empty or was written by `save` (it has `parallel_r1.json`).

    Args:
        meta: provenance to record (base_model, recipe, stage, kind, data, mode, training, ...);
            the tags' ids and the library versions are added.
        state_dict: the weights to write instead of the model's own (the full weights of a
            sharded model, `train.distributed.full_state_dict`).

    Returns:
        The directory path.

    Raises:
        ConfigError: `directory` is a file, or a non-empty directory this function did not write.
    """
    import torch
    import transformers

    from parallel_r1.format.tags import TagIds
    from parallel_r1.models.card import CARD_FILE, render_card

    target = Path(directory).expanduser().resolve()
    if target.is_file() or (target.is_dir() and any(target.iterdir())
                            and not (target / PROVENANCE_FILE).is_file()):
        raise ConfigError(f"{target} exists and is not a model directory written by parallel-r1; "
                          "refusing to replace it: pick a new directory or remove it first")
    target.parent.mkdir(parents=True, exist_ok=True)
    # Not tempfile.mkdtemp: its 0o700 mode would hide the model from other users (a server).
    tmp = temp_name(target)
    tmp.mkdir()
    try:
        model.save_pretrained(tmp, state_dict=state_dict)
        tokenizer.save_pretrained(tmp)
        record = dict(meta or {})
        record.setdefault("transformers", transformers.__version__)
        record.setdefault("torch", torch.__version__)
        record["tag_ids"] = dict(zip(TAGS, TagIds.from_tokenizer(tokenizer).as_tuple()))
        (tmp / PROVENANCE_FILE).write_text(json.dumps(record, indent=2, sort_keys=True,
                                                      default=str) + "\n")
        (tmp / CARD_FILE).write_text(render_card(record, target.name))
        old = None
        if target.exists():
            old = temp_name(target, "old")
            os.replace(target, old)
        os.replace(tmp, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def describe(directory: str | os.PathLike) -> dict[str, Any]:
    """A summary of a model directory: parameters, vocabulary, tag ids, template, provenance.

    Raises:
        ConfigError: not a loadable model directory.
    """
    model, tokenizer = load(directory)
    missing = missing_tags(tokenizer)
    tag_ids = {t: tokenizer.convert_tokens_to_ids(t) for t in TAGS if t not in missing}
    return {
        "path": str(Path(directory).resolve()),
        "model_type": model.config.model_type,
        "parameters": sum(p.numel() for p in model.parameters()),
        "layers": model.config.num_hidden_layers,
        "hidden_size": model.config.hidden_size,
        "vocab": len(tokenizer),
        "embedding_rows": model.get_input_embeddings().weight.shape[0],
        "dtype": str(model.dtype).removeprefix("torch."),
        "eos": tokenizer.eos_token, "pad": tokenizer.pad_token,
        "has_chat_template": bool(tokenizer.chat_template),
        "tag_ids": tag_ids, "missing_tags": missing,
        "provenance": read_provenance(directory),
    }
