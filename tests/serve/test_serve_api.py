"""The server as a real process, spoken to with the official `openai` client."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

openai = pytest.importorskip("openai")
CHAT = [{"role": "user", "content": "What is 17 + 25?"}]
# A request the tiny model answers with all 2000 tokens (no EOS drawn with this seed): ~2 s.
LONG = {"prompt": "Tell a long story.", "seed": 5, "max_tokens": 2000}


def wait_idle(server, timeout: float = 15.0) -> dict:
    """Health once no request is in flight and the engine holds no rows."""
    deadline = time.monotonic() + timeout
    while True:
        health = server.health()
        if health["active_requests"] == 0 and health["active_rows"] == 0 \
                and health["waiting"] == 0:
            return health
        if time.monotonic() > deadline:
            raise AssertionError(f"server still busy: {health}")
        time.sleep(0.05)


def test_models_and_health(server, client):
    assert [m.id for m in client.models.list().data] == ["tiny"]
    health = server.health()
    assert health["status"] == "ok" and health["active_rows"] == 0


def test_completion_reports_text_usage_and_structure(client):
    reply = client.completions.create(model="tiny", prompt=[40, 41, 42], max_tokens=12, seed=3,
                                      logprobs=0)
    assert reply.usage.prompt_tokens == 3
    choice = reply.choices[0]
    extra = choice.model_extra["parallel"]
    assert choice.finish_reason in ("stop", "length")
    assert extra["completion_tokens"] == reply.usage.completion_tokens <= 12
    assert 1 <= reply.usage.model_extra["sequential_depth"] <= reply.usage.completion_tokens
    assert extra["num_blocks"] == len(extra["blocks"]) and extra["mode"] == "structured"
    assert all(lp <= 0 for lp in choice.logprobs.token_logprobs)
    assert "".join(choice.logprobs.tokens) == choice.text


def test_batched_prompts_are_numbered_prompt_major(client):
    reply = client.completions.create(model="tiny", prompt=["2 + 2 =", "x + 1"], n=2,
                                      max_tokens=4, seed=0)
    assert [c.index for c in reply.choices] == [0, 1, 2, 3]
    assert reply.usage.prompt_tokens == len(client_tokens("2 + 2 =")) + len(client_tokens("x + 1"))
    assert reply.usage.completion_tokens == sum(
        c.model_extra["parallel"]["completion_tokens"] for c in reply.choices)


def client_tokens(text: str) -> list[int]:
    from parallel_r1.models.tiny import build_tokenizer

    return build_tokenizer().encode(text)


def test_chat_n_samples_distinct_seeds_and_reproducible(client):
    kwargs = {"model": "tiny", "messages": CHAT, "max_tokens": 10, "n": 3, "seed": 11,
              "temperature": 1.0}
    first = client.chat.completions.create(**kwargs)
    again = client.chat.completions.create(**kwargs)
    texts = [c.message.content for c in first.choices]
    assert [c.index for c in first.choices] == [0, 1, 2]
    assert len(set(texts)) == 3  # sample j uses seed + j
    assert texts == [c.message.content for c in again.choices]
    assert first.usage.completion_tokens == sum(
        c.model_extra["parallel"]["completion_tokens"] for c in first.choices)


@pytest.mark.parametrize("chat", [False, True])
def test_stream_equals_non_stream(client, chat):
    if chat:
        kwargs = {"model": "tiny", "messages": CHAT, "max_tokens": 16, "n": 2, "seed": 5}
        whole = [c.message.content for c in client.chat.completions.create(**kwargs).choices]
        chunks = client.chat.completions.create(**kwargs, stream=True,
                                                stream_options={"include_usage": True})
        piece = lambda c: c.delta.content or ""
    else:
        kwargs = {"model": "tiny", "prompt": "Solve step by step: 6 * 7", "max_tokens": 16,
                  "n": 2, "seed": 5}
        whole = [c.text for c in client.completions.create(**kwargs).choices]
        chunks = client.completions.create(**kwargs, stream=True,
                                           stream_options={"include_usage": True})
        piece = lambda c: c.text
    texts, reasons, usage = ["", ""], [None, None], None
    for chunk in chunks:
        usage = chunk.usage or usage
        for c in chunk.choices:
            texts[c.index] += piece(c)
            if c.finish_reason is not None:
                reasons[c.index] = c.finish_reason
                assert "parallel" in c.model_extra
    assert texts == whole
    assert all(r in ("stop", "length") for r in reasons)
    assert usage.completion_tokens >= 2


def test_stop_string_truncates_text_and_stream(client):
    kwargs = {"model": "tiny", "prompt": "What is 6 * 7?", "max_tokens": 24, "seed": 7}
    full = client.completions.create(**kwargs).choices[0].text
    stop = full[6:9]
    expected = full[:full.find(stop)]
    cut = client.completions.create(**kwargs, stop=[stop, "never-there"]).choices[0]
    assert (cut.text, cut.finish_reason) == (expected, "stop")
    streamed = "".join(c.choices[0].text for c in
                       client.completions.create(**kwargs, stop=stop, stream=True) if c.choices)
    assert streamed == expected


def test_chat_logprobs_and_parallel_override(client):
    reply = client.chat.completions.create(
        model="tiny", messages=CHAT, max_tokens=8, seed=1, logprobs=True,
        extra_body={"parallel": {"mode": "causal"}})
    choice = reply.choices[0]
    assert choice.model_extra["parallel"]["mode"] == "causal"
    assert 1 <= len(choice.logprobs.content) <= 8
    assert all(t.logprob <= 0 for t in choice.logprobs.content)


def test_concurrent_requests_are_batched(server):
    before = wait_idle(server)

    async def main():
        async with openai.AsyncOpenAI(base_url=server.base + "/v1", api_key=server.api_key,
                                      max_retries=0, timeout=120) as aclient:
            return await asyncio.gather(*(
                aclient.completions.create(model="tiny", prompt=f"What is {i} + {i}?",
                                           max_tokens=16, seed=i) for i in range(8)))

    replies = asyncio.run(main())
    after = wait_idle(server)
    num_tokens = sum(r.usage.completion_tokens for r in replies)
    assert len({r.id for r in replies}) == 8 and num_tokens >= 8
    assert after["num_tokens"] - before["num_tokens"] == num_tokens
    # Sequential serving would take one engine step per token; batching shares steps.
    assert after["num_steps"] - before["num_steps"] < num_tokens / 2


@pytest.mark.parametrize("kwargs, status, words", [
    ({"temperature": -1}, 400, "temperature"),
    ({"n": 0}, 400, "n"),
    ({"max_tokens": 100000}, 400, "exceeds the model's context"),
    ({"extra_body": {"min_p": 1.5}}, 400, "min_p"),
    ({"model": "gpt-4"}, 404, "not served here"),
    ({"extra_body": {"bogus": 1}}, 400, "bogus"),
    ({"top_logprobs": 3}, 400, "needs logprobs=true"),
    ({"logprobs": True, "top_logprobs": 21}, 400, "top_logprobs"),
])
def test_bad_requests_get_a_clear_4xx(server, client, kwargs, status, words):
    body = {"model": "tiny", "messages": CHAT, "max_tokens": 4} | kwargs
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(**body)
    assert info.value.status_code == status
    assert words in info.value.body["message"]
    wait_idle(server)


def test_api_key_is_required(server):
    with openai.OpenAI(base_url=server.base + "/v1", api_key="wrong", max_retries=0) as bad, \
            pytest.raises(openai.AuthenticationError):
        bad.models.list()
    reply = httpx.post(server.base + "/v1/completions", json={"model": "tiny", "prompt": "x"})
    assert reply.status_code == 401 and "API key" in reply.json()["error"]["message"]
    assert httpx.get(server.base + "/health").status_code == 200  # health stays open


def test_disconnect_mid_stream_frees_rows(server, client):
    before = wait_idle(server)
    stream = client.completions.create(model="tiny", prompt=LONG["prompt"], seed=LONG["seed"],
                                       max_tokens=LONG["max_tokens"], stream=True)
    received = 0
    for chunk in stream:
        received += len(chunk.choices[0].text)
        if received >= 10:
            break
    assert server.health()["active_requests"] == 1
    stream.close()  # the client goes away mid-stream
    after = wait_idle(server)
    assert after["num_aborted"] == before["num_aborted"] + 1
    assert after["num_tokens"] - before["num_tokens"] < LONG["max_tokens"]  # cut short
    # ... and the server still serves.
    reply = client.completions.create(model="tiny", prompt="Still there?", max_tokens=4)
    assert reply.usage.completion_tokens >= 1
    wait_idle(server)


def test_disconnect_while_waiting_for_a_whole_reply_frees_rows(server):
    before = wait_idle(server)
    with pytest.raises(httpx.ReadTimeout):  # the client gives up and closes the connection
        httpx.post(server.base + "/v1/completions", timeout=0.5,
                   headers={"Authorization": f"Bearer {server.api_key}"},
                   json={"model": "tiny", **LONG})
    after = wait_idle(server)
    assert after["num_aborted"] == before["num_aborted"] + 1
    assert after["num_tokens"] - before["num_tokens"] < LONG["max_tokens"]
