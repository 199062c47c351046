"""The block program over a live `parallel-r1 serve` process through its OpenAI API (token ids in,
token ids and log-probs out): the same samples as in process, for the engine, `eval` and
`data coldstart`."""

from __future__ import annotations

import json
import math

import httpx
import pytest

from parallel_r1.engine.driver import Engine
from parallel_r1.engine.openai_backend import OpenAIBackend, parse_choice
from parallel_r1.engine.segments import Segment
from parallel_r1.engine.torch_engine import TorchEngine
from parallel_r1.engine.types import ParallelParams, SamplingParams
from parallel_r1.errors import EngineError
from parallel_r1.format.tags import TagIds

pytest.importorskip("fastapi")


def tagged_checkpoint(directory, **boost: float):
    """Save the tiny model edited (in its weights) to write some tags often."""
    from parallel_r1.models.load import save
    from parallel_r1.models.tiny import bias_tags, build_tiny

    model, tok = build_tiny(seed=0)
    bias_tags(model, tok, **boost)
    save(model, tok, directory)
    return directory


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return tagged_checkpoint(tmp_path_factory.mktemp("tagged") / "model", parallel_open=4.0,
                             path_close=4.0, path_open=1.0)


@pytest.fixture(scope="module")
def live(tmp_path_factory, checkpoint, server_process):
    server = server_process(tmp_path_factory.mktemp("serve") / "server.log", model=str(checkpoint))
    try:
        server.wait_healthy()
        yield server
    finally:
        server.kill()


@pytest.fixture(scope="module")
def local(checkpoint):
    from parallel_r1.models.load import load

    model, tok = load(str(checkpoint))
    return model.eval(), tok


def threads(temperature, **kw):
    return SamplingParams(temperature=temperature, max_tokens=90, n=2, seed=3,
                          parallel=ParallelParams(mode="threads", max_path_tokens=14, **kw))


@pytest.mark.parametrize("temperature,num_paths", [(0.0, 2), (1.0, 3)])
def test_threads_over_the_server_equal_the_built_in_engine(live, local, temperature, num_paths):
    model, tok = local
    prompts = [tok.encode(t) for t in ("What is 2+3?", "Compute 17 + 25", "x y z")]
    params = threads(temperature, num_paths=num_paths)
    backend = OpenAIBackend(live.base + "/v1", max_concurrency=4)
    try:
        remote = Engine(backend, tok, model=model).generate(prompts, params)
    finally:
        backend.close()
    ours = TorchEngine(model, tok).generate(prompts, params)
    assert sum(r.num_blocks for r in ours) >= 3  # the blocks really ran
    for a, b in zip(remote, ours):
        assert a.completion_ids == b.completion_ids and a.finish_reason == b.finish_reason
        assert a.loss_mask == b.loss_mask
        sampled = [i for i, m in enumerate(a.loss_mask) if m]
        gap = max(abs(a.logprobs[i] - b.logprobs[i]) for i in sampled)
        assert gap < 1e-4, gap
        injected = [a.logprobs[i] for i, m in enumerate(a.loss_mask) if not m]
        assert all(math.isnan(x) for x in injected)  # a stock server cannot score them


def test_structured_is_refused_and_unknown_models_are_named(live, local):
    _, tok = local
    with pytest.raises(EngineError, match="does not serve model 'nope'.*serves"):
        OpenAIBackend(live.base + "/v1", "nope")
    engine = Engine(OpenAIBackend(live.base + "/v1"), tok)
    with pytest.raises(EngineError, match="structured layout needs the built-in engine"):
        engine.generate([tok.encode("x")], SamplingParams(max_tokens=5))


def test_server_answers_token_ids_like_vllm(live, local):
    _, tok = local
    tags = TagIds.from_tokenizer(tok)
    body = {"model": json.loads(httpx.get(live.base + "/v1/models").text)["data"][0]["id"],
            "prompt": tok.encode("What is 2+3?"), "max_tokens": 40, "temperature": 1.0,
            "seed": 5, "stop_token_ids": [tags.parallel_open], "logprobs": 0,
            "return_token_ids": True, "return_tokens_as_token_ids": True,
            "parallel": {"mode": "causal"}}
    choice = httpx.post(live.base + "/v1/completions", json=body, timeout=60).json()["choices"][0]
    assert choice["prompt_token_ids"] == body["prompt"]
    assert choice["logprobs"]["tokens"] == [f"token_id:{t}" for t in choice["token_ids"]]
    assert len(choice["logprobs"]["token_logprobs"]) == len(choice["token_ids"])
    if choice["finish_reason"] == "stop":
        assert choice["token_ids"][-1] in (tags.parallel_open, tok.eos_token_id)
    reply = httpx.post(live.base + "/v1/completions", json={**body, "stream": True}, timeout=60)
    assert reply.status_code == 400 and "without streaming" in reply.text


def test_replies_of_vllm_and_sglang_shapes_parse():
    seg = Segment(1, (1, 2), (1, 2), 8, frozenset({7, 9}), 1.0, 1.0, 0, 0, watch_ids=(9,))
    vllm = {"token_ids": [3, 7], "finish_reason": "stop", "stop_reason": 7,
            "logprobs": {"tokens": ["token_id:3", "token_id:7"], "token_logprobs": [-1.0, -2.0]}}
    res = parse_choice(seg, vllm)
    assert (res.tokens, res.logprobs, res.finish) == ([3, 7], [-1.0, -2.0], "stop")
    only_tokens = {"finish_reason": "length", "logprobs": {"tokens": ["token_id:3", "token_id:4"],
                                                           "token_logprobs": [-1.0, None]}}
    res = parse_choice(seg, only_tokens)
    assert res.tokens == [3, 4] and math.isnan(res.logprobs[1]) and res.finish == "length"
    trimmed = {"token_ids": [3], "finish_reason": "stop", "matched_stop": 9,  # SGLang, stop cut
               "logprobs": {"tokens": ["x"], "token_logprobs": [-1.0]}}
    res = parse_choice(seg, trimmed)
    assert res.tokens == [3, 9] and res.finish == "stop" and math.isnan(res.logprobs[1])
    with pytest.raises(ValueError, match="no token ids"):
        parse_choice(seg, {"logprobs": {"tokens": ["x"], "token_logprobs": [-1.0]}})


def _eval(args, out):
    from typer.testing import CliRunner

    from parallel_r1.cli import app

    common = ["--benchmarks", "synthetic-l1", "--limit", "6", "--samples", "2", "--mode",
              "threads", "--max-tokens", "80", "--grader", "paper", "--out", str(out)]
    result = CliRunner().invoke(app, ["eval", *args, *common])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    return {(r["benchmark"], r["problem_id"], r["sample"]): r for r in rows}


@pytest.mark.parametrize("temperature", ["0", "1"])
def test_eval_through_the_server_agrees_per_sample(live, checkpoint, tmp_path, temperature):
    remote = _eval([str(checkpoint), "--backend", "openai", "--base-url", live.base + "/v1",
                    "--temperature", temperature], tmp_path / "remote")
    local = _eval([str(checkpoint), "--temperature", temperature, "--device", "cpu"],
                  tmp_path / "local")
    assert remote.keys() == local.keys() and len(local) == 12
    assert sum(r["structure"]["num_blocks"] for r in local.values()) >= 3
    for key, row in local.items():
        other = remote[key]
        assert (other["response"], other["pred"], other["correct"], other["seed"]) == \
            (row["response"], row["pred"], row["correct"], row["seed"]), key


def test_coldstart_through_the_block_program_resumes(live, checkpoint, tmp_path):
    from typer.testing import CliRunner

    from parallel_r1.cli import app

    problems = tmp_path / "problems.jsonl"
    problems.write_text("".join(json.dumps({"id": f"p{i}", "question": f"What is {i} + 1?",
                                            "answer": str(i + 1)}) + "\n" for i in range(5)))
    out = tmp_path / "coldstart.jsonl"
    name = json.loads(httpx.get(live.base + "/v1/models").text)["data"][0]["id"]
    args = ["data", "coldstart", str(problems), str(out), "--base-url", live.base + "/v1",
            "--model", name, "--backend", "openai", "--tokenizer", str(checkpoint),
            "--max-tokens", "80", "--max-path-tokens", "14", "--temperature", "1.0",
            "--no-progress"]
    first = CliRunner().invoke(app, [*args, "--limit", "3"])
    assert first.exit_code == 0, first.output
    second = CliRunner().invoke(app, args)
    assert second.exit_code == 0, second.output
    assert json.loads(second.output)["num_skipped"] == 3
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["id"] for r in rows) == [f"p{i}" for i in range(5)]
    assert all(r["layout"] == "threads" and r["output"] for r in rows)
    assert sum(r["num_blocks"] for r in rows) >= 1


def test_the_server_itself_samples_the_threads_layout(live):
    body = {"model": json.loads(httpx.get(live.base + "/v1/models").text)["data"][0]["id"],
            "prompt": "What is 2+3?", "max_tokens": 80, "seed": 1, "n": 3,
            "parallel": {"mode": "threads", "num_paths": 3, "max_path_tokens": 12}}
    choices = httpx.post(live.base + "/v1/completions", json=body, timeout=60).json()["choices"]
    info = [c["parallel"] for c in choices]
    assert all(i["mode"] == "threads" for i in info)
    blocks = [b for i in info for b in i["blocks"]]
    assert blocks and all(len(b["paths"]) == 3 for b in blocks if b["closed"])


def test_trl_server_mode_rollouts_go_through_the_openai_backend(live, local):
    """`backend: vllm` with `vllm_mode: server`: every process talks to the server's OpenAI API
    (our server stands in for `trl vllm-serve`, which serves the same /v1/completions)."""
    from types import SimpleNamespace

    from parallel_r1.train.rollout import vllm_engine

    model, tok = local
    args = SimpleNamespace(vllm_server_base_url=live.base, vllm_server_host="0.0.0.0",
                           vllm_server_port=8000)
    engine = vllm_engine(SimpleNamespace(vllm_mode="server", args=args, model=model), tok)
    assert isinstance(engine.backend, OpenAIBackend)
    rollouts = engine.generate([tok.encode("What is 2+3?")], threads(1.0, num_paths=2))
    assert sum(r.num_blocks for r in rollouts) >= 1 and all(r.finish_reason != "error"
                                                           for r in rollouts)
