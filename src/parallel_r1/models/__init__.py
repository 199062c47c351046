"""Models: load a causal LM and tokenizer, add the six tags, apply the chat template, save; build
tiny test models and prepare SmolLM2. torch and transformers are imported inside the functions
(importing this package stays cheap); never TRL, vLLM or a web framework.
"""

# Eager imports on purpose: the function `load` shadows the submodule `load` only if it is bound
# after the submodule is imported, which a lazy __getattr__ cannot guarantee.
from parallel_r1.models.load import (
    add_tags,
    apply_template,
    describe,
    fix_special_tokens,
    load,
    load_model,
    load_tokenizer,
    missing_tags,
    read_provenance,
    save,
)
from parallel_r1.models.smollm2 import prepare_smollm2, prepared_dir
from parallel_r1.models.tiny import build_tiny, build_tokenizer, save_tiny
from parallel_r1.registry import Registry

# Models that `parallel-r1 models prepare NAME DIR` can write: fn(directory, *, force) ->
# (path, info).
PREPARERS: Registry = Registry("preparable model")
PREPARERS.add("smollm2-135m-instruct", prepare_smollm2)

__all__ = [
    "PREPARERS", "add_tags", "apply_template", "build_tiny", "build_tokenizer", "describe",
    "fix_special_tokens", "load", "load_model", "load_tokenizer", "missing_tags",
    "prepare_smollm2", "prepared_dir", "read_provenance", "save", "save_tiny",
]
