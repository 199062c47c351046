"""A server no request can stall, that speaks OpenAI's dialect at its edges (issue 12 items 9-12):
bounded bodies, cheap context checks, templating off the event loop, neutral fields, error shapes,
strict types, exact log-probs, and a shutdown grace."""

from __future__ import annotations

import json
import signal
import threading
import time

import httpx
import pytest

from parallel_r1.models.tiny import build_tokenizer
from parallel_r1.serve.choice import ChoiceSpec, ChoiceState

openai = pytest.importorskip("openai")
CHAT = [{"role": "user", "content": "What is 17 + 25?"}]


def chat_body(**extra) -> dict:
    return {"model": "tiny", "messages": CHAT, "max_tokens": 3, "seed": 0, **extra}


def is_openai_error(reply: httpx.Response, status: int, *words: str) -> dict:
    assert reply.status_code == status, reply.text
    error = reply.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert all(w in error["message"] for w in words), error["message"]
    return error


@pytest.fixture(scope="module")
def server(bounded_server):
    """This module's server: API key required, request bodies bounded at 2 MB."""
    return bounded_server


@pytest.fixture(scope="module")
def api(server):
    """httpx client of the module's server (key required), base URL /v1."""
    with httpx.Client(base_url=server.base + "/v1", timeout=60,
                      headers={"Authorization": f"Bearer {server.api_key}"}) as client:
        yield client


# ---------------------------------------------------------------- item 9: nothing stalls the loop

def health_during(base: str, action) -> tuple[object, list[float]]:
    """Run `action()` in a thread while polling /health; (its result, health latencies in s)."""
    result, latencies = {}, []
    worker = threading.Thread(target=lambda: result.update(value=action()))
    worker.start()
    with httpx.Client(timeout=60) as client:
        while True:  # at least one poll, even when the action is over at once
            start = time.perf_counter()
            client.get(base + "/health")
            latencies.append(time.perf_counter() - start)
            if not worker.is_alive():
                break
            time.sleep(0.02)
    worker.join()
    return result["value"], latencies


def test_a_body_over_the_bound_is_refused_unread_and_health_stays_fast(server):
    words = "the cat sat on a mat " * 250_000  # 5 MB
    body = json.dumps({"model": "tiny", "messages": [{"role": "user", "content": words}]})
    started = time.monotonic()
    reply, latencies = health_during(server.base, lambda: httpx.post(
        server.base + "/v1/chat/completions", content=body, timeout=60,
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {server.api_key}"}
    ))
    assert time.monotonic() - started < 5
    is_openai_error(reply, 413, "MB is over this server's limit of 2.0 MB", "--max-body-mb")
    assert max(latencies) < 1.0  # generous: milliseconds when nothing blocks the loop


def test_a_prompt_longer_than_the_context_is_refused_before_tokenizing(api):
    words = "the cat sat on a mat " * 50_000  # 1 MB: under the bound, far over the context
    for path, body in (("/chat/completions", {"messages": [{"role": "user", "content": words}]}),
                       ("/completions", {"prompt": words})):
        started = time.monotonic()
        reply = api.post(path, json={"model": "tiny", **body})
        assert time.monotonic() - started < 2
        error = is_openai_error(reply, 400, "1050000 characters", "more than the model's context")
        assert error["code"] == "context_length_exceeded"


def test_the_chat_template_runs_off_the_event_loop():
    import torch
    from fastapi.testclient import TestClient

    from parallel_r1.engine.torch_engine import TorchEngine
    from parallel_r1.models.tiny import build_tiny
    from parallel_r1.serve.app import create_app

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # on a shared CPU, more threads thrash
    try:
        waited = _health_wait_during_a_slow_template(TestClient, TorchEngine, build_tiny,
                                                     create_app)
    finally:
        torch.set_num_threads(threads)
    assert waited < 0.6  # on the loop it would wait out the template (~1.2 s)


def _health_wait_during_a_slow_template(TestClient, TorchEngine, build_tiny, create_app) -> float:
    model, tok = build_tiny(seed=0)
    slow = type(tok)  # a tokenizer whose chat template takes 1.5 s, like a huge prompt's

    class SlowTemplate(slow):
        def apply_chat_template(self, *args, **kwargs):
            time.sleep(1.5)
            return super().apply_chat_template(*args, **kwargs)

    tok.__class__ = SlowTemplate
    with TestClient(create_app(TorchEngine(model, tok), tok, "tiny")) as client:
        worker = threading.Thread(target=lambda: client.post("/v1/chat/completions",
                                                             json=chat_body()))
        worker.start()
        time.sleep(0.3)
        started = time.perf_counter()
        assert client.get("/health").status_code == 200
        waited = time.perf_counter() - started
        worker.join()
    return waited


# ---------------------------------------------------------------- item 10: OpenAI's dialect

NEUTRAL = {"logit_bias": {}, "response_format": {"type": "text"}, "tools": [],
           "tool_choice": "none", "parallel_tool_calls": True, "functions": [],
           "service_tier": "auto", "store": False, "metadata": {"run": "x"},
           "modalities": ["text"], "user": "u1", "prompt_cache_key": "k", "audio": None,
           "safety_identifier": "s", "top_logprobs": 0, "stream_options": None}


def test_neutral_values_of_unimplemented_fields_are_accepted(api, client):
    reply = api.post("/chat/completions", json=chat_body(**NEUTRAL))
    assert reply.status_code == 200, reply.text
    messages = [{"role": "assistant", "content": "hi", "tool_calls": [], "refusal": None},
                *CHAT]
    assert api.post("/chat/completions", json=chat_body(messages=messages)).status_code == 200
    assert api.post("/completions", json={"model": "tiny", "prompt": "x", "max_tokens": 2,
                                          "logit_bias": {}, "echo": False}).status_code == 200
    assert client.chat.completions.create(model="tiny", messages=CHAT, max_tokens=2, tools=[],
                                          logit_bias={}, response_format={"type": "text"})


@pytest.mark.parametrize("field, value", [
    ("logit_bias", {"5": 10}), ("response_format", {"type": "json_object"}),
    ("tools", [{"type": "function", "function": {"name": "f"}}]), ("tool_choice", "required"),
    ("store", True), ("modalities", ["text", "audio"]), ("reasoning_effort", "high")])
def test_other_values_are_refused_naming_the_field(api, field, value):
    reply = api.post("/chat/completions", json=chat_body(**{field: value}))
    error = is_openai_error(reply, 400, f"{field}=", "is not supported by this server; leave it out")
    assert error["param"] == field


@pytest.mark.parametrize("field, value", [("max_tokens", "3"), ("stream", "yes"), ("n", 1.0),
                                          ("temperature", "1"), ("seed", True)])
def test_types_are_strict(api, field, value):
    error = is_openai_error(api.post("/chat/completions", json=chat_body(**{field: value})), 400,
                            field)
    assert error["param"] == field


def test_models_by_id(server, client, api):
    assert client.models.retrieve("tiny").id == "tiny"
    error = is_openai_error(api.get("/models/gpt-4"), 404, "'gpt-4' is not served here")
    assert error["code"] == "model_not_found"


def test_routes_methods_and_bodies_fail_in_openai_shape(api):
    is_openai_error(api.get("/nowhere"), 404, "no such route: GET /v1/nowhere")
    is_openai_error(api.get("/completions"), 405, "method not allowed: GET /v1/completions")
    bad = api.post("/chat/completions", content=b'{"model": "tiny", "messages": [',
                   headers={"Content-Type": "application/json"})
    is_openai_error(bad, 400, "request body is not valid JSON")
    form = api.post("/chat/completions", content=json.dumps(chat_body()),
                    headers={"Content-Type": "text/plain"})
    is_openai_error(form, 415, "send the body as JSON with 'Content-Type: application/json'",
                    "'text/plain'")


def test_the_bearer_scheme_is_case_insensitive(server):
    url = server.base + "/v1/models"
    for scheme in ("bearer", "BEARER", "Bearer"):
        reply = httpx.get(url, headers={"Authorization": f"{scheme} {server.api_key}"})
        assert reply.status_code == 200, scheme
    assert httpx.get(url, headers={"Authorization": f"Basic {server.api_key}"}).status_code == 401


# ---------------------------------------------------------------- item 11: exact log-probs

def pieces_of(text: str, cut: str | None = None):
    tok = build_tokenizer()
    choice = ChoiceState(ChoiceSpec(tok, [1]))
    choice.ids = tok.encode(text, add_special_tokens=False)
    choice.logprobs = [-float(i) for i in range(len(choice.ids))]
    choice.text = cut if cut is not None else tok.decode(choice.ids, skip_special_tokens=False)
    return choice, choice.token_pieces()


@pytest.mark.parametrize("text", ["√2 ≈ 1.414", "答案是 42。", "x² + y² = 1 🙂 done"])
def test_byte_tokens_keep_every_entry_and_their_bytes(text):
    choice, (tokens, logprobs, offsets, raw) = pieces_of(text)
    assert len(tokens) == len(choice.ids) == len(logprobs)  # none dropped, the last included
    assert "".join(tokens) == text and b"".join(raw) == text.encode("utf-8")
    assert offsets == [sum(map(len, tokens[:i])) for i in range(len(tokens))]
    assert all(text[o:o + len(t)] == t for o, t in zip(offsets, tokens))
    assert any(len(b) == 1 and b[0] >= 0x80 for b in raw)  # characters split into bytes


@pytest.mark.parametrize("text, cut", [("The answer is 42 indeed", "The answer is 4"),
                                       ("√2 is about 1.41", "√2 is ab"),
                                       ("答案是 42", "答案")])
def test_a_stop_string_inside_a_token_leaves_none_of_it_listed(text, cut):
    _, (tokens, _, offsets, raw) = pieces_of(text, cut)
    assert "".join(tokens) == cut and b"".join(raw) == cut.encode("utf-8")
    assert offsets[-1] + len(tokens[-1]) == len(cut)


def streamed_choices(client, **kwargs) -> list[tuple[str, list, str, int]]:
    """(text, log-prob entries, finish reason, completion tokens) per choice of a stream."""
    texts, entries, reasons, tokens = {}, {}, {}, {}
    for chunk in client.chat.completions.create(stream=True, **kwargs):
        for c in chunk.choices:
            texts[c.index] = texts.get(c.index, "") + (c.delta.content or "")
            entries[c.index] = entries.get(c.index, []) + (c.logprobs.content or []
                                                          if c.logprobs else [])
            if c.finish_reason:
                reasons[c.index] = c.finish_reason
                tokens[c.index] = c.model_extra["parallel"]["completion_tokens"]
    return [(texts[i], entries[i], reasons[i], tokens[i]) for i in sorted(texts)]


@pytest.mark.parametrize("stream", [False, True])
def test_server_logprobs_describe_exactly_the_text(client, stream):
    kwargs = {"model": "tiny", "messages": CHAT, "max_tokens": 24, "n": 8, "seed": 3,
              "logprobs": True}
    if stream:
        choices = streamed_choices(client, **kwargs)
    else:
        choices = [(c.message.content, c.logprobs.content, c.finish_reason,
                    c.model_extra["parallel"]["completion_tokens"])
                   for c in client.chat.completions.create(**kwargs).choices]
    split = 0
    for text, entries, reason, num_tokens in choices:
        assert len(entries) == num_tokens  # every token listed, the last ones included...
        if reason == "stop":  # ...the end-of-text token too, outside the text (as vLLM)
            assert entries[-1].token == "<|endoftext|>"
            entries = entries[:-1]
        assert "".join(e.token for e in entries) == text
        raw = b"".join(bytes(e.bytes) for e in entries)  # a random model writes invalid UTF-8 too
        assert raw.decode("utf-8", errors="replace") == text
        assert raw == text.encode() or "\ufffd" in text
        split += any(len(e.bytes) == 1 and e.bytes[0] >= 0x80 for e in entries)
    assert split  # the random tiny model writes byte tokens: the case is exercised


# ---------------------------------------------------------------- item 12: shutdown grace

def test_streams_end_with_an_error_and_done_after_the_shutdown_grace(server_factory):
    server = server_factory(None, "--shutdown-grace", "0.5")
    body = {"model": "tiny", "prompt": "Tell a long story.", "seed": 5, "max_tokens": 2000,
            "stream": True}  # ~2 s of tokens: still running when the grace ends
    lines = []
    with httpx.stream("POST", server.base + "/v1/completions", json=body, timeout=60) as reply:
        for line in reply.iter_lines():
            if line and not lines:
                server.proc.send_signal(signal.SIGTERM)
                signalled = time.monotonic()
            if line:
                lines.append(line)
    ended = time.monotonic() - signalled
    assert 0.4 < ended < 3.0
    error = json.loads(lines[-2].removeprefix("data: "))["error"]
    assert error["code"] == "server_shutting_down" and "grace period" in error["message"]
    assert lines[-1] == "data: [DONE]"
    server.proc.wait(timeout=15)  # and the server is gone


# ------------------------------------------------------------ a busy port, before any work

def test_a_busy_port_is_one_line_naming_it_and_nothing_is_announced():
    import os
    import socket
    import subprocess
    import sys

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        run = subprocess.run([sys.executable, "-m", "parallel_r1", "serve", "tiny", "--port",
                              str(port)], capture_output=True, text=True, timeout=120,
                             env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert run.returncode == 2 and run.stdout == ""  # no "serving ... on ..." first
    assert run.stderr.strip().splitlines() == [
        f"error: port {port} is in use; pick another with --port"]
