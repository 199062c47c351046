"""A tiny random model nudged to write tags often, so rollouts contain blocks."""

import pytest
import torch

from parallel_r1.format.tags import TagIds
from parallel_r1.models.tiny import build_tiny


def nudge(model, tokenizer, **boost: float):
    """Add a fixed bias to the logits of some tags (a forward hook: still a real HF model)."""
    tags = TagIds.from_tokenizer(tokenizer)
    bias = torch.zeros(model.config.vocab_size)
    for name, value in boost.items():
        bias[getattr(tags, name)] = value
    model.lm_head.register_forward_hook(lambda module, args, out: out + bias)
    return model


@pytest.fixture(scope="module")
def tagged():
    """(model, tokenizer, tags): blocks open often and paths close after a few tokens."""
    model, tok = build_tiny(seed=0)
    nudge(model, tok, parallel_open=3.5, path_close=3.5, path_open=2.0, parallel_close=2.0)
    return model, tok, TagIds.from_tokenizer(tok)


@pytest.fixture(scope="module")
def prompts(tagged):
    _, tok, _ = tagged
    texts = ["What is 2+3?", "Hello there, compute 17 + 25 please", "x", "Solve step by step: 6 * 7"]
    return [tok.encode(t) for t in texts]
