"""Prompts at the engine's boundary: token ids, checked before any work.

The engine speaks token ids (vLLM's `prompt_token_ids`). Anything else a user may hold (text, a
chat template's `BatchEncoding`, a padded [B, T] tensor, a dict) is refused here with one line
naming what was given and what is accepted, instead of failing deep inside a backend.
"""

from __future__ import annotations

import numbers
from typing import Any, Sequence

from parallel_r1.errors import EngineError, describe_type

ACCEPTED = ("token ids: one prompt as list[int] (or a 1-D integer tensor), or several as "
            "list[list[int]]")


def _hint(value: Any) -> str:
    shape = getattr(value, "shape", None)
    if shape is not None and len(shape) == 2:
        return ("; a [B, T] tensor may hold padding: pass one list of ids per prompt, "
                "without padding (ids.tolist() after removing it)")
    if isinstance(value, dict) or hasattr(value, "input_ids") or (
            hasattr(value, "keys") and not isinstance(value, (list, tuple, str))):
        return ("; a tokenizer's BatchEncoding or dict holds them under 'input_ids': pass "
                "enc['input_ids'] (unpadded), or tokenize with parallel_r1.apply_template")
    if isinstance(value, str) or (isinstance(value, (list, tuple)) and value and
                                  isinstance(value[0], str)):
        return "; turn text into ids with parallel_r1.apply_template(tokenizer, text)"
    return ""


def _ids(value: Any) -> list[int] | None:
    """One prompt's ids as a list, or None when `value` is not one prompt of token ids."""
    if hasattr(value, "shape") and hasattr(value, "tolist"):  # torch / numpy
        if len(value.shape) != 1 or str(value.dtype).split(".")[-1].rstrip("0123456789") \
                not in ("int", "uint", "long"):
            return None
        return [int(t) for t in value.tolist()]
    if not isinstance(value, (list, tuple)):
        return None
    if not all(isinstance(t, numbers.Integral) and not isinstance(t, bool) for t in value):
        return None
    return [int(t) for t in value]


def _is_scalar(value: Any) -> bool:
    """Not a container: what a flat list of numbers (or Nones) holds."""
    return not isinstance(value, (list, tuple, str, dict)) and not hasattr(value, "shape") and \
        not hasattr(value, "keys")


def as_prompt_ids(prompts: Any, *, vocab_size: int | None = None) -> list[list[int]]:
    """The prompts of `Engine.generate` as a list of token-id lists, checked.

    Args:
        prompts: one prompt (list[int] or a 1-D integer tensor/array) or a sequence of them.
        vocab_size: when given, every id must be in [0, vocab_size).

    Returns:
        prompt_ids  # [B][T_b], one list per prompt

    Raises:
        EngineError: anything else (text, a BatchEncoding or dict, a 2-D tensor, None, nested
            lists of text, an empty prompt, an id out of the vocabulary), naming what was given.
    """
    single = _ids(prompts)
    if single is not None and (single or not isinstance(prompts, (list, tuple))):
        batch = [single]
    elif isinstance(prompts, (list, tuple)) and prompts and not all(map(_is_scalar, prompts)):
        batch = []
        for i, prompt in enumerate(prompts):
            ids = _ids(prompt)
            if ids is None:
                raise EngineError(f"prompts[{i}] is {describe_type(prompt)}; the engine takes "
                                  f"{ACCEPTED}{_hint(prompt)}")
            batch.append(ids)
    elif isinstance(prompts, (list, tuple)) and not prompts:
        raise EngineError("prompts is an empty list; pass at least one prompt of token ids")
    else:
        raise EngineError(f"prompts is {describe_type(prompts)}; the engine takes "
                          f"{ACCEPTED}{_hint(prompts)}")
    for i, ids in enumerate(batch):
        check_prompt_ids(ids, vocab_size, f"prompts[{i}]")
    return batch


def check_prompt_ids(ids: Sequence[Any], vocab_size: int | None, where: str) -> None:
    """Raise EngineError unless `ids` is a non-empty list of ints in [0, vocab_size)."""
    if not isinstance(ids, list) or not all(
            isinstance(t, numbers.Integral) and not isinstance(t, bool) for t in ids):
        raise EngineError(f"{where} is {describe_type(ids)}; prompt_ids must be a list of ints"
                          f"{_hint(ids)}")
    if not ids:
        raise EngineError(f"{where} is empty; a prompt needs at least one token")
    if vocab_size is not None:
        bad = next((t for t in ids if not 0 <= t < vocab_size), None)
        if bad is not None:
            raise EngineError(f"{where} holds token id {bad}, outside the vocabulary "
                              f"[0, {vocab_size})")
