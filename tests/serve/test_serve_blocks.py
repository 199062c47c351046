"""In-process app over a tiny model nudged to write tags: blocks in the `parallel` field, depth,
stop strings at the text level, and the import layering of the web stack."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from parallel_r1.engine.torch_engine import TorchEngine
from parallel_r1.engine.types import ParallelParams
from parallel_r1.format.tags import PARALLEL_OPEN, TagIds
from parallel_r1.models.tiny import build_tiny, build_tokenizer
from parallel_r1.serve.choice import ChoiceSpec, ChoiceState

pytest.importorskip("fastapi")


def nudged_tiny():
    """The tiny model with a fixed bias towards the tags, so responses contain blocks."""
    model, tok = build_tiny(seed=0)
    tags = TagIds.from_tokenizer(tok)
    bias = torch.zeros(model.config.vocab_size)
    for name, value in {"parallel_open": 3.5, "path_close": 3.5, "path_open": 2.0,
                            "parallel_close": 2.0}.items():
        bias[getattr(tags, name)] = value
    model.lm_head.register_forward_hook(lambda module, args, out: out + bias)
    return model, tok


@pytest.fixture(scope="module")
def http():
    from fastapi.testclient import TestClient

    from parallel_r1.serve.app import create_app

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # on a shared CPU, more threads thrash (100x slower here)
    model, tok = nudged_tiny()
    app = create_app(TorchEngine(model, tok), tok, "nudged",
                     parallel=ParallelParams(mode="structured", num_paths=2, max_path_tokens=12))
    try:
        with TestClient(app) as client:  # runs the lifespan: the engine thread starts and stops
            yield client
    finally:
        torch.set_num_threads(threads)


def test_structured_blocks_are_parsed_and_shorten_the_depth(http):
    reply = http.post("/v1/completions", json={"model": "nudged", "prompt": "What is 2 + 3?",
                                               "max_tokens": 48, "n": 2, "seed": 0})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    with_blocks = [c for c in body["choices"] if c["parallel"]["num_blocks"]]
    assert with_blocks, [c["text"] for c in body["choices"]]
    for choice in with_blocks:
        extra = choice["parallel"]
        assert PARALLEL_OPEN in choice["text"]  # the text keeps the tags
        assert all(len(b["paths"]) == 2 for b in extra["blocks"] if b["closed"])
        assert extra["sequential_depth"] < extra["completion_tokens"]
    assert body["usage"]["sequential_depth"] == max(
        c["parallel"]["sequential_depth"] for c in body["choices"])


def test_stream_with_blocks_equals_non_stream(http):
    body = {"model": "nudged", "prompt": "What is 2 + 3?", "max_tokens": 48, "n": 2, "seed": 0}
    whole = [c["text"] for c in http.post("/v1/completions", json=body).json()["choices"]]
    texts = ["", ""]
    with http.stream("POST", "/v1/completions", json=body | {"stream": True}) as reply:
        lines = [line for line in reply.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    for line in lines[:-1]:
        for c in json.loads(line[6:])["choices"]:
            texts[c["index"]] += c["text"]
    assert texts == whole and any(PARALLEL_OPEN in t for t in texts)


def test_health_counts_return_to_zero(http):
    health = http.get("/health").json()
    assert health["active_requests"] == 0 and health["active_rows"] == 0


def test_choice_holds_back_a_partial_stop_string():
    tok = build_tokenizer()
    ids = tok.encode("First, compute the sum. Then multiply the result by 3.")
    spec = ChoiceSpec(tok, [1], stops=("multiply the",), incremental=True)
    choice, sent = ChoiceState(spec), []
    for token_id in ids:
        sent.append(choice.feed([token_id], [-1.0]))
        assert "multiply" not in "".join(sent)
        if choice.done:
            break
    assert "".join(sent) == choice.text == "First, compute the sum. Then "
    assert choice.finish_reason == "stop" and choice.engine_reason == "stop_string"
    assert choice.depth == len(choice.ids)  # no tags given: every token is sequential


def test_importing_the_package_and_cli_loads_no_web_stack():
    code = ("import sys, parallel_r1, parallel_r1.cli, parallel_r1.serve; "
            "print([m for m in ('fastapi', 'uvicorn', 'starlette', 'httpx', 'openai') "
            "if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
