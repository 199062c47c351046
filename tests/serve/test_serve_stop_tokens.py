"""A generated token that ends the choice (EOS, a `stop_token_ids` entry) is a generated token with
a log-prob: listed in `logprobs` as vLLM lists it, left out of the text (the app in process)."""

from __future__ import annotations

import math

import pytest
import torch

pytest.importorskip("fastapi")


@pytest.fixture(scope="module")
def eos_model():
    """The tiny model with the end-of-text logit raised: greedy after any prompt is EOS."""
    from parallel_r1.models.tiny import bias_tags, build_tiny

    model, tok = build_tiny(seed=0)
    bias_tags(model, tok, eos=2.0)
    return model, tok


def app_client(model, tok):
    from fastapi.testclient import TestClient

    from parallel_r1.engine.torch_engine import TorchEngine
    from parallel_r1.serve.app import create_app

    return TestClient(create_app(TorchEngine(model, tok), tok, "tiny"))


def next_logp(model, ids: list[int]) -> torch.Tensor:
    """Log-probs of the token after `ids` [V], float64."""
    return model(input_ids=torch.tensor([ids])).logits[0, -1].double().log_softmax(-1)


@torch.no_grad()
def test_lm_eval_request_lists_the_eos_it_generated(eos_model):
    model, tok = eos_model
    prompt = "The sky is blue"
    ids = tok.encode(prompt, add_special_tokens=False)
    assert int(next_logp(model, ids).argmax()) == tok.eos_token_id  # the case under test
    with app_client(model, tok) as client:  # lm-eval's loglikelihood request
        reply = client.post("/v1/completions", json={
            "model": "tiny", "prompt": prompt, "max_tokens": 1, "echo": True, "logprobs": 1,
            "temperature": 0, "parallel": {"mode": "causal"}}).json()["choices"][0]
    lp = reply["logprobs"]
    assert reply["finish_reason"] == "stop" and reply["text"] == prompt  # text without EOS
    assert len(lp["tokens"]) == len(ids) + 1 == len(lp["token_logprobs"]) \
        == len(lp["top_logprobs"]) == len(lp["text_offset"])
    assert lp["tokens"][-1] == tok.eos_token and lp["text_offset"][-1] == len(prompt)
    assert math.isclose(lp["token_logprobs"][-1], float(next_logp(model, ids)[tok.eos_token_id]),
                        abs_tol=1e-5)
    assert lp["top_logprobs"][-1] == {tok.eos_token: lp["token_logprobs"][-1]}  # greedy
    # lm-eval's slice [ctxlen:-1] now drops the generated token, not the prompt's last one
    ctxlen = len(ids) - 1
    expected = float(next_logp(model, ids[:-1])[ids[-1]])
    assert math.isclose(sum(lp["token_logprobs"][ctxlen:-1]), expected, abs_tol=1e-5)


@torch.no_grad()
def test_a_stop_token_id_is_listed_in_completion_and_chat_logprobs():
    from parallel_r1.models.tiny import build_tiny

    model, tok = build_tiny(seed=0)
    messages = [{"role": "user", "content": "hi"}]
    ids = tok.encode("hi", add_special_tokens=False)
    chat_ids = tok.apply_chat_template(messages, add_generation_prompt=True,
                                       tokenize=True, return_dict=True)["input_ids"]
    stop = int(next_logp(model, ids).argmax())  # the greedy next token, made a stop token
    chat_stop = int(next_logp(model, chat_ids).argmax())
    body = {"model": "tiny", "max_tokens": 5, "temperature": 0, "parallel": {"mode": "causal"}}
    with app_client(model, tok) as client:
        done = client.post("/v1/completions", json={**body, "prompt": "hi", "logprobs": 0,
                                                    "stop_token_ids": [stop]})
        chat = client.post("/v1/chat/completions", json={
            **body, "messages": messages, "logprobs": True, "stop_token_ids": [chat_stop]})
    choice = done.json()["choices"][0]
    assert choice["finish_reason"] == "stop" and choice["text"] == ""
    assert choice["logprobs"]["tokens"] == [tok.decode([stop])]
    assert math.isclose(choice["logprobs"]["token_logprobs"][0],
                        float(next_logp(model, ids)[stop]), abs_tol=1e-5)
    content = chat.json()["choices"][0]["logprobs"]["content"]
    text = chat.json()["choices"][0]["message"]["content"]
    assert chat.json()["choices"][0]["finish_reason"] == "stop"
    assert len(content) == 1 and content[0]["token"] == tok.decode([chat_stop]) and text == ""
    assert bytes(content[0]["bytes"]).decode() == tok.decode([chat_stop])
