"""Prompts at the public API boundary: every kind of wrong prompt is refused in one line that
names what was given and what is accepted, before any sampling (issue 22: a chat template's
BatchEncoding crashed deep in the backend with "too many dimensions 'str'")."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from parallel_r1.engine.prompts import as_prompt_ids
from parallel_r1.engine.torch_engine import TorchEngine
from parallel_r1.engine.types import ParallelParams, SamplingParams
from parallel_r1.errors import ConfigError, EngineError
from parallel_r1.models.load import apply_template
from parallel_r1.models.tiny import build_tiny

PARAMS = SamplingParams(max_tokens=6, seed=0, parallel=ParallelParams(mode="structured"))


@pytest.fixture(scope="module")
def tiny():
    model, tok = build_tiny(0, num_layers=1, hidden=32)
    return model, tok, TorchEngine(model, tok)


def _wrong_prompts(tok):
    """(what the message must name, the prompt) for each kind a user may pass by mistake."""
    messages = [{"role": "user", "content": "What is 6 * 7?"}]
    return [
        ("BatchEncoding", tok.apply_chat_template(messages, add_generation_prompt=True)),
        ("BatchEncoding", tok("What is 6 * 7?")),
        ("dict", {"input_ids": [1, 2, 3]}),
        ("2-D Tensor", torch.tensor([[1, 2, 3]])),
        ("0-D Tensor", torch.tensor(3)),
        ("1-D Tensor of torch.float32", torch.tensor([1.0, 2.0])),
        ("prompts[0] is a list of str", [["What is", "6 * 7?"]]),
        ("prompts[0] is a str", ["What is 6 * 7?"]),
        ("str", "What is 6 * 7?"),
        ("str", ""),
        ("None", None),
        ("list of None", [None]),
        ("empty list", []),
        ("list of float", [1.0, 2.0]),
        ("list of bool", [True, False]),
        ("int", 5),
    ]


def test_every_kind_of_wrong_prompt_is_refused_in_one_line(tiny):
    model, tok, engine = tiny
    for given, prompt in _wrong_prompts(tok):
        with pytest.raises(EngineError) as err:
            engine.generate(prompt, PARAMS)
        msg = str(err.value)
        assert "\n" not in msg and given in msg, (given, msg)
        if given != "empty list":
            assert "list[int]" in msg, msg  # says what is accepted


def test_the_messages_point_to_the_fix():
    tok = build_tiny(0, num_layers=1, hidden=32)[1]
    enc = tok.apply_chat_template([{"role": "user", "content": "hi"}], add_generation_prompt=True)
    with pytest.raises(EngineError, match=r"enc\['input_ids'\]"):
        as_prompt_ids(enc)
    with pytest.raises(EngineError, match="apply_template"):
        as_prompt_ids(["some text"])
    with pytest.raises(EngineError, match="padding"):
        as_prompt_ids(torch.ones(2, 3, dtype=torch.long))
    with pytest.raises(EngineError, match=r"prompts\[1\] is a list of str"):
        as_prompt_ids([[1, 2], ["a"]])


@pytest.mark.parametrize("prompt, where", [([[1, 2], []], r"prompts\[1\] is empty"),
                                           ([[1, 10**6]], "token id 1000000, outside"),
                                           ([[-1]], "token id -1, outside"),
                                           ([[]], r"prompts\[0\] is empty")])
def test_empty_prompts_and_ids_outside_the_vocabulary_are_refused(tiny, prompt, where):
    model, tok, engine = tiny
    with pytest.raises(EngineError, match=where):
        engine.generate(prompt, PARAMS)


def test_a_refused_batch_queues_nothing(tiny):
    """A bad prompt after good ones leaves no request behind: the next call works."""
    model, tok, engine = tiny
    good = apply_template(tok, "What is 6 * 7?")
    with pytest.raises(EngineError):
        engine.generate([good, ["oops"]], PARAMS)
    assert not engine.has_unfinished()
    assert len(engine.generate([good], PARAMS)) == 1


def test_every_accepted_form_samples_the_same(tiny):
    model, tok, engine = tiny
    ids = apply_template(tok, "What is 6 * 7?")
    enc = tok.apply_chat_template([{"role": "user", "content": "What is 6 * 7?"}],
                                  add_generation_prompt=True)
    forms = [[ids], ids, tuple(ids), [tuple(ids)], torch.tensor(ids), [torch.tensor(ids)],
             [np.array(ids)], [np.array(ids, dtype=np.int32)], [enc["input_ids"]]]
    outs = [[r.completion_ids for r in engine.generate(form, PARAMS)] for form in forms]
    assert all(out == outs[0] for out in outs)


@pytest.mark.parametrize("prompt, given", [(None, "None"), ("", "empty string"),
                                            ([1, 2, 3], "list of int"), ([], "empty list"),
                                            ({"role": "user"}, "dict"),
                                            ([{"role": "user"}], "list of dict")])
def test_apply_template_refuses_what_is_not_text_or_messages(prompt, given):
    tok = build_tiny(0, num_layers=1, hidden=32)[1]
    with pytest.raises(ConfigError, match=given) as err:
        apply_template(tok, prompt)
    assert "\n" not in str(err.value)
