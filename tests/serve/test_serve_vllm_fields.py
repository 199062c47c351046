"""vLLM's fields on the server, one kind per test: echo and prompt log-probs, top-k alternatives,
sampling extras, seeds, limits, and the tokenizer routes (the app in process, a tiny model)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

pytest.importorskip("fastapi")


@pytest.fixture(scope="module")
def tiny():
    from parallel_r1.models.tiny import bias_tags, build_tiny

    model, tok = build_tiny(seed=0)
    bias_tags(model, tok, parallel_open=4.0, path_close=4.0)  # blocks: structured layouts
    return model, tok


@pytest.fixture(scope="module")
def client(tiny):
    from fastapi.testclient import TestClient

    from parallel_r1.engine.torch_engine import TorchEngine
    from parallel_r1.serve.app import create_app

    model, tok = tiny
    with TestClient(create_app(TorchEngine(model, tok), tok, "tiny", max_samples=100)) as c:
        yield c


def complete(client, **body):
    reply = client.post("/v1/completions", json={"model": "tiny", "max_tokens": 6, **body})
    assert reply.status_code == 200, reply.text
    return reply


def full_logp(model, ids):
    """log_softmax of the model's causal forward: [T, V], row t predicts token t + 1."""
    with torch.no_grad():
        return model(input_ids=torch.tensor([ids])).logits[0].float().log_softmax(-1)


def test_echo_prompt_logprobs_equal_the_trainers(client, tiny):
    from parallel_r1.eval.agreement import trainer_logprobs
    from parallel_r1.format.tags import TagIds

    model, tok = tiny
    prompt = tok.encode("The answer is 42", add_special_tokens=False)
    choice = complete(client, prompt=prompt, max_tokens=0, echo=True, logprobs=1).json()[
        "choices"][0]
    lp = choice["logprobs"]
    assert choice["text"] == tok.decode(prompt) == "".join(lp["tokens"])
    assert lp["token_logprobs"][0] is None and lp["top_logprobs"][0] is None
    trainer = trainer_logprobs(model, TagIds.from_tokenizer(tok), SimpleNamespace(
        prompt_ids=prompt[:2], completion_ids=prompt[2:]), "causal")  # [T - 2]
    assert torch.allclose(torch.tensor(lp["token_logprobs"][2:], dtype=torch.float64), trainer,
                          atol=1e-5)
    assert lp["text_offset"] == [sum(map(len, lp["tokens"][:i])) for i in range(len(prompt))]


@pytest.mark.parametrize("k", [0, 1, 5])
def test_top_k_alternatives_are_the_models_exactly(client, tiny, k):
    model, tok = tiny
    prompt = tok.encode("2 + 2 =", add_special_tokens=False)
    body = complete(client, prompt=prompt, echo=True, logprobs=k, temperature=0,
                    parallel={"mode": "causal"}, return_token_ids=True).json()
    choice = body["choices"][0]
    lp = choice["logprobs"]
    logp = full_logp(model, prompt + choice["token_ids"])  # [T, V]
    for i in range(1, len(lp["tokens"])):
        top = lp["top_logprobs"][i]
        assert lp["token_logprobs"][i] == top[lp["tokens"][i]]  # no nulls; lm-eval's check
        assert len(top) in (k, k + 1)
        got = sorted(top.values(), reverse=True)[:k]  # the token itself ranks below them or
        assert torch.allclose(torch.tensor(got), logp[i - 1].topk(k).values, atol=1e-4)  # is one
    for i in range(len(prompt), len(lp["tokens"])):  # greedy: each token is the likeliest
        assert lp["token_logprobs"][i] == max(lp["top_logprobs"][i].values()) or k == 0


def test_alternatives_in_the_structured_layout_match_the_trainer(tiny):
    from parallel_r1.engine.torch_engine import TorchEngine
    from parallel_r1.engine.types import SamplingParams
    from parallel_r1.eval.agreement import trainer_logprobs
    from parallel_r1.format.tags import TagIds
    from parallel_r1.serve.scoring import score

    model, tok = tiny
    tags = TagIds.from_tokenizer(tok)
    rollouts = TorchEngine(model, tok).generate([tok.encode("Solve: 3 + 4")],
                                                SamplingParams(max_tokens=48, n=4, seed=1))
    assert any(r.num_blocks for r in rollouts)
    for r in rollouts:
        ids = r.prompt_ids + r.completion_ids
        got = score(model, ids, len(r.prompt_ids), tags=tags, layout="structured",
                    temperature=1.0, num_top=3)
        scored = torch.tensor(got.logprobs[len(r.prompt_ids):], dtype=torch.float64)
        assert torch.allclose(scored, trainer_logprobs(model, tags, r, "structured"), atol=1e-5)
        sampled = torch.tensor(r.loss_mask, dtype=torch.bool)
        assert torch.allclose(scored[sampled], torch.tensor(r.logprobs, dtype=torch.float64)[
            sampled], atol=1e-4)  # the engine's own, while it sampled
        assert all(got.top[p][0][1] >= got.logprobs[p] for p in range(1, len(ids)))


def test_chat_top_logprobs_and_prompt_logprobs(client, tiny):
    model, tok = tiny
    body = client.post("/v1/chat/completions", json={
        "model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4,
        "logprobs": True, "top_logprobs": 3, "prompt_logprobs": 2, "temperature": 0,
        "parallel": {"mode": "causal"}}).json()
    content = body["choices"][0]["logprobs"]["content"]
    assert all(len(c["top_logprobs"]) == 3 for c in content)
    assert all(c["logprob"] == c["top_logprobs"][0]["logprob"] for c in content)  # greedy
    prompt = body["prompt_logprobs"]
    assert prompt[0] is None and len(prompt) == body["usage"]["prompt_tokens"]
    for entry in prompt[1:]:
        ranks = sorted(e["rank"] for e in entry.values())
        assert ranks[:2] == [1, 2] and len(entry) in (2, 3)


def test_completion_prompt_logprobs_rank_the_prompt_tokens(client, tiny):
    model, tok = tiny
    prompt = tok.encode("one two three", add_special_tokens=False)
    entries = complete(client, prompt=prompt, prompt_logprobs=0).json()["choices"][0][
        "prompt_logprobs"]
    logp = full_logp(model, prompt)
    for i in range(1, len(prompt)):
        entry = entries[i][str(prompt[i])]
        assert math.isclose(entry["logprob"], logp[i - 1, prompt[i]].item(), abs_tol=1e-5)
        assert entry["rank"] == int((logp[i - 1] > logp[i - 1, prompt[i]]).sum()) + 1


def test_limits_refused_with_the_field(client):
    for body, field in [({"logprobs": 21}, "logprobs"), ({"max_tokens": 0}, "max_tokens"),
                        ({"max_tokens": 0, "echo": True, "stream": True}, "max_tokens"),
                        ({"stop": [str(i) for i in range(33)]}, "stop"),
                        ({"prompt_logprobs": 1, "stream": True}, "prompt_logprobs")]:
        reply = client.post("/v1/completions", json={"model": "tiny", "prompt": "hi", **body})
        assert reply.status_code == 400 and field in reply.json()["error"]["message"], reply.text
    reply = client.post("/v1/completions", json={"model": "tiny", "prompt": ["a"] * 101})
    assert reply.status_code == 400 and reply.json()["error"]["param"] == "n"


def test_vllm_values_accepted(client):
    many = complete(client, prompt=["x"] * 70, max_tokens=1, stop=list("abcdefgh")).json()
    assert len(many["choices"]) == 70
    greedy = complete(client, prompt="hi", temperature=0).json()["choices"][0]["text"]
    assert complete(client, prompt="hi", temperature=0, top_p=0.3, top_k=5, min_p=0.5).json()[
        "choices"][0]["text"] == greedy  # greedy ignores top_p / top_k / min_p, as in vLLM
    # min_p = 1 keeps only the likeliest token: sampling at any temperature is greedy
    assert complete(client, prompt="hi", temperature=1.5, min_p=1.0, seed=3).json()[
        "choices"][0]["text"] == greedy
    for seed in (-1, 2**63 - 1, -(2**63)):
        complete(client, prompt="hi", seed=seed, top_k=-1)


def test_null_means_the_default_as_in_vllm(client):
    from parallel_r1.serve.schemas import NULL_IS_DEFAULT

    nulls = {name: None for name in NULL_IS_DEFAULT} | {"max_tokens": None, "seed": None}
    seeded = {"prompt": "hi", "max_tokens": 6, "seed": 4}
    reply = complete(client, **{**nulls, **seeded})
    assert "x-parallel-r1-ignored" not in reply.headers
    assert reply.json()["choices"] == complete(client, **seeded).json()["choices"]  # T = 1.0
    chat = client.post("/v1/chat/completions", json={
        "model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2,
        **nulls, "max_completion_tokens": None})
    assert chat.status_code == 200, chat.text
    assert complete(client, prompt="hi", max_tokens=None).json()["usage"]["completion_tokens"]


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity"])
@pytest.mark.parametrize("field", ["temperature", "top_p", "min_p", "presence_penalty"])
def test_nan_and_infinity_are_refused_naming_the_field(client, field, value):
    body = f'{{"model": "tiny", "prompt": "hi", "{field}": {value}}}'
    reply = client.post("/v1/completions", content=body,
                        headers={"content-type": "application/json"})
    error = reply.json()["error"]
    assert reply.status_code == 400 and error["param"] == field
    assert error["message"] == f"invalid request: {field}: Input should be a finite number"


def test_penalties_accepted_and_named_unless_zero(client):
    plain = complete(client, prompt="hi", seed=2).json()["choices"][0]["text"]
    for route, body in [("/v1/completions", {"prompt": "hi"}),
                        ("/v1/chat/completions", {"messages": [{"role": "user",
                                                                "content": "hi"}]})]:
        reply = client.post(route, json={"model": "tiny", "max_tokens": 6, "seed": 2, **body,
                                         "presence_penalty": 0.5, "frequency_penalty": -1.0})
        assert reply.status_code == 200, reply.text
        assert reply.headers["x-parallel-r1-ignored"] == "frequency_penalty, presence_penalty"
    assert complete(client, prompt="hi", seed=2, presence_penalty=1.5).json()["choices"][0][
        "text"] == plain  # not applied
    assert "x-parallel-r1-ignored" not in complete(client, prompt="hi", presence_penalty=0,
                                                   frequency_penalty=0.0).headers
    reply = client.post("/v1/completions", json={"model": "tiny", "prompt": "hi",
                                                 "presence_penalty": 2.5})
    assert reply.status_code == 400 and reply.json()["error"]["param"] == "presence_penalty"


def test_seed_does_not_depend_on_batch_position(client):
    alone = complete(client, prompt="beta", seed=7, n=2).json()["choices"]
    batch = complete(client, prompt=["alpha", "beta"], seed=7, n=2).json()["choices"]
    assert [c["text"] for c in batch[2:]] == [c["text"] for c in alone]
    assert alone[0]["text"] != alone[1]["text"]


def test_unhonoured_extras_are_named_in_a_header(client):
    reply = complete(client, prompt="hi", repetition_penalty=1.3, min_tokens=2,
                     skip_special_tokens=True, ignore_eos=True)
    assert reply.headers["x-parallel-r1-ignored"] == \
        "min_tokens, repetition_penalty, skip_special_tokens"
    assert "x-parallel-r1-ignored" not in complete(
        client, prompt="hi", repetition_penalty=1.0, skip_special_tokens=False).headers


def test_ignore_eos_keeps_sampling_past_the_end_token(tiny):
    from parallel_r1.engine.program import Rules, SampleProgram
    from parallel_r1.engine.types import ParallelParams, Request, SamplingParams
    from parallel_r1.format.tags import TagIds

    _, tok = tiny
    rules = Rules(TagIds.from_tokenizer(tok), frozenset({tok.eos_token_id}), (), True)
    for ignore in (False, True):
        params = SamplingParams(ignore_eos=ignore, stop_token_ids=(5,),
                                parallel=ParallelParams(mode="causal"))
        [seg] = SampleProgram(Request("r", [1, 2], params), 0, 0, rules, iter(range(9))).start()
        assert (tok.eos_token_id in seg.stop_ids) is not ignore and 5 in seg.stop_ids


def test_tokenize_detokenize_round_trip(client, tiny):
    _, tok = tiny
    text = "Parallel <Parallel><Path>a</Path></Parallel> ünïcode"
    out = client.post("/tokenize", json={"prompt": text, "add_special_tokens": False,
                                         "return_token_strs": True}).json()
    assert out["tokens"] == tok.encode(text, add_special_tokens=False)
    assert out["count"] == len(out["tokens"]) == len(out["token_strs"])
    assert client.post("/detokenize", json={"tokens": out["tokens"]}).json()["prompt"] == text
    chat = client.post("/tokenize", json={"messages": [{"role": "user", "content": "hi"}]}).json()
    usage = client.post("/v1/chat/completions", json={
        "model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1}).json()
    assert chat["count"] == usage["usage"]["prompt_tokens"]
    info = client.get("/tokenizer_info").json()
    assert info["eos_token"] == tok.eos_token and info["chat_template"] == tok.chat_template
    bad = client.post("/detokenize", json={"tokens": [len(tok)]})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "tokens"


def stream_chunks(client, route: str, body: dict) -> list[dict]:
    import json

    with client.stream("POST", route, json={"model": "tiny", "stream": True, **body}) as reply:
        return [json.loads(line[6:])["choices"][0] for line in reply.iter_lines()
                if line.startswith("data: {") and json.loads(line[6:])["choices"]]


def assert_adds_up(chunks: list[dict], whole: dict) -> None:
    """The chunks' completions log-probs joined are the whole reply's: the tokens, offsets and
    their own log-probs (the engine's) exactly; alternatives up to float rounding (a chunk's
    come from a forward over the tokens so far)."""
    joined = {key: sum((c["logprobs"][key] for c in chunks), []) for key in whole}
    assert {k: joined[k] for k in ("tokens", "token_logprobs", "text_offset")} == \
        {k: whole[k] for k in ("tokens", "token_logprobs", "text_offset")}
    for got, want in zip(joined["top_logprobs"], whole["top_logprobs"], strict=True):
        assert (got is None) == (want is None)
        if want is not None:
            assert got.keys() == want.keys()
            assert all(math.isclose(got[k], want[k], abs_tol=1e-5) for k in want)


@pytest.mark.parametrize("mode", ["causal", "structured"])
@pytest.mark.parametrize("echo,num_top", [(False, 0), (False, 2), (True, 2)])
def test_streamed_logprobs_come_per_chunk_and_add_up_to_the_whole_reply(client, echo, num_top,
                                                                        mode):
    body = {"prompt": "hi", "logprobs": num_top, "temperature": 0, "max_tokens": 12,
            "parallel": {"mode": mode}, "echo": echo}
    whole = complete(client, **body).json()["choices"][0]
    chunks = stream_chunks(client, "/v1/completions", body)
    assert_adds_up(chunks, whole["logprobs"])
    assert "".join(c["text"] for c in chunks) == whole["text"]
    assert whole["text"].startswith("hi") == echo
    assert sum(bool(c["logprobs"]["tokens"]) for c in chunks) > 1  # not all in the last chunk
    text = tokens = ""
    for c in chunks[:-1]:  # a chunk's tokens are its text (the last may add the stop token)...
        text, tokens = text + c["text"], tokens + "".join(c["logprobs"]["tokens"])
        # ...but a token the engine injects at a join waits for its log-prob (the next forward)
        assert tokens == text if mode == "causal" else text.startswith(tokens)


def test_streamed_chat_logprobs_come_per_chunk(client):
    body = {"messages": [{"role": "user", "content": "hi"}], "logprobs": True,
            "top_logprobs": 2, "temperature": 0, "max_tokens": 12, "parallel": {"mode": "causal"}}
    reply = client.post("/v1/chat/completions", json={"model": "tiny", **body})
    whole = reply.json()["choices"][0]["logprobs"]["content"]
    chunks = stream_chunks(client, "/v1/chat/completions", body)
    joined = sum((c["logprobs"]["content"] for c in chunks if c["logprobs"]), [])
    assert [(e["token"], e["logprob"], e["bytes"]) for e in joined] == \
        [(e["token"], e["logprob"], e["bytes"]) for e in whole]
    for got, want in zip(joined, whole):  # alternatives: up to float rounding
        assert [a["token"] for a in got["top_logprobs"]] == [a["token"] for a in want[
            "top_logprobs"]]
        assert all(math.isclose(a["logprob"], b["logprob"], abs_tol=1e-5)
                   for a, b in zip(got["top_logprobs"], want["top_logprobs"]))
    assert sum(bool(c["logprobs"] and c["logprobs"]["content"]) for c in chunks) > 1


def test_a_long_stream_with_alternatives_finishes_and_adds_up(client):
    """Each chunk is scored for its alternatives; deltas queued meanwhile merge into one chunk,
    so the scoring never leaves the stream's backlog to grow until it is stopped."""
    body = {"prompt": "hi", "logprobs": 5, "max_tokens": 200, "ignore_eos": True, "seed": 1,
            "parallel": {"mode": "causal"}}
    whole = complete(client, **body).json()["choices"][0]
    chunks = stream_chunks(client, "/v1/completions", body)
    assert chunks[-1]["finish_reason"] == "length"
    assert_adds_up(chunks, whole["logprobs"])
    assert len(whole["logprobs"]["tokens"]) == 200
