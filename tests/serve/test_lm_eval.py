"""lm-evaluation-harness against a real `parallel-r1 serve tiny`: a multiple-choice task (echo and
prompt log-probs) and a generation task, defined on local files, with lm-eval's remote tokenizer
(our /tokenize, /detokenize and /tokenizer_info)."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import pytest
import torch

lm_eval = pytest.importorskip("lm_eval")
pytest.importorskip("tenacity")  # lm-eval's [api] extra

MC = [("2 + 2 =", ["4", "5", None], 0), ("The sky is", ["blue", "green"], 1),
      ("x", ["y", "z", "w"], 2)]  # None: the model's greedy continuation (lm-eval adds " ")
GEN = [("1 + 1 =", "2"), ("Say hi:", "hi")]
UNTIL = ["a", "b", "c", "d"]  # with the EOS lm-eval adds: 5 stop strings


def greedy_text(model, tok, context: str, num_tokens: int = 3) -> str:
    ids = tok.encode(context, add_special_tokens=False)
    for _ in range(num_tokens):
        ids.append(int(model(input_ids=torch.tensor([ids])).logits[0, -1].argmax()))
    return tok.decode(ids[-num_tokens:])


def write_tasks(tmp_path, model, tok):
    rows = [{"q": q, "choices": [c if c is not None else greedy_text(model, tok, q)[1:]
                                 for c in choices], "gold": g} for q, choices, g in MC]
    (tmp_path / "mc.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "gen.jsonl").write_text("".join(
        json.dumps({"q": q, "a": a}) + "\n" for q, a in GEN))
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    common = "test_split: test\ndataset_path: json\ndoc_to_text: '{{q}}'\n"
    (tasks / "tiny_mc.yaml").write_text(
        f"task: tiny_mc\n{common}dataset_kwargs:\n  data_files:\n    test: {tmp_path}/mc.jsonl\n"
        "output_type: multiple_choice\ndoc_to_choice: '{{choices}}'\ndoc_to_target: '{{gold}}'\n"
        "metric_list:\n  - metric: acc\n    aggregation: mean\n    higher_is_better: true\n")
    (tasks / "tiny_gen.yaml").write_text(
        f"task: tiny_gen\n{common}dataset_kwargs:\n  data_files:\n    test: {tmp_path}/gen.jsonl\n"
        f"output_type: generate_until\ndoc_to_target: '{{{{a}}}}'\ngeneration_kwargs:\n"
        f"  until: {json.dumps(UNTIL)}\n  max_gen_toks: 8\n"
        "metric_list:\n  - metric: exact_match\n    aggregation: mean\n    higher_is_better: true\n")
    return tasks


def test_lm_eval_loglikelihood_and_generation_match_the_trainer_and_engine(tmp_path,
                                                                          server_factory):
    from lm_eval.api.registry import get_model
    from lm_eval.tasks import TaskManager

    from parallel_r1.engine.torch_engine import TorchEngine
    from parallel_r1.engine.types import ParallelParams, SamplingParams
    from parallel_r1.eval.agreement import trainer_logprobs
    from parallel_r1.format.tags import TagIds
    from parallel_r1.models.tiny import build_tiny

    model, tok = build_tiny(seed=0)  # the weights `serve tiny` runs
    tags = TagIds.from_tokenizer(tok)
    tasks = TaskManager(include_path=str(write_tasks(tmp_path, model, tok)))
    server = server_factory(None, "--mode", "causal")
    lm = get_model("local-completions")(base_url=server.base + "/v1/completions", model="tiny",
                                        tokenizer_backend="remote", batch_size=2, max_retries=1)
    out = lm_eval.simple_evaluate(model=lm, tasks=["tiny_mc", "tiny_gen"], log_samples=True,
                                  task_manager=tasks)
    samples = out["samples"]["tiny_mc"]
    assert sum(len(s["arguments"]) for s in samples) == sum(len(c) for _, c, _ in MC)
    greedy_seen = 0
    for sample in samples:
        for (context, continuation), [(loglik, is_greedy)] in zip(sample["arguments"],
                                                                  sample["resps"]):
            ctx_ids, cont_ids = lm._encode_pair(context, continuation)  # lm-eval's own split
            rollout = SimpleNamespace(prompt_ids=ctx_ids, completion_ids=cont_ids)
            trainer = trainer_logprobs(model, tags, rollout, "causal")  # [T_c] float64
            assert math.isclose(loglik, float(trainer.sum()), abs_tol=1e-4)
            logits = model(input_ids=torch.tensor([ctx_ids + cont_ids])).logits[0]  # [T, V]
            argmax = logits[len(ctx_ids) - 1:-1].argmax(-1).tolist()
            assert is_greedy == (argmax == cont_ids)
            greedy_seen += is_greedy
    assert greedy_seen >= 1  # the greedy continuation is recognised as such
    assert 0 <= out["results"]["tiny_mc"]["acc,none"] <= 1

    engine = TorchEngine(model, tok)
    greedy = SamplingParams(temperature=0, max_tokens=8,
                            parallel=ParallelParams(mode="causal"))
    for sample in out["samples"]["tiny_gen"]:
        prompt = sample["arguments"][0][0]
        [rollout] = engine.generate([tok.encode(prompt, add_special_tokens=False)], greedy)
        text = rollout.text
        for stop in [*UNTIL, tok.eos_token]:
            text = text.split(stop)[0]
        assert sample["resps"] == [[text]]
