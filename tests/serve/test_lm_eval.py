"""lm-evaluation-harness against a real `parallel-r1 serve tiny`: a multiple-choice task (echo and
prompt log-probs) and a generation task, defined on local files, with lm-eval's remote tokenizer
(our /tokenize, /detokenize and /tokenizer_info); and choices after which the model's greedy
token is end-of-text."""

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


def write_tasks(tmp_path, model, tok, mc=MC):
    rows = [{"q": q, "choices": [c if c is not None else greedy_text(model, tok, q)[1:]
                                 for c in choices], "gold": g} for q, choices, g in mc]
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


def check_choices(lm, samples, model, tok, mc) -> int:
    """Every choice's log-likelihood is the trainer's and its greedy flag the model's argmax;
    returns how many choices were greedy."""
    from parallel_r1.eval.agreement import trainer_logprobs
    from parallel_r1.format.tags import TagIds

    tags = TagIds.from_tokenizer(tok)
    assert sum(len(s["arguments"]) for s in samples) == sum(len(c) for _, c, _ in mc)
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
    return greedy_seen


def test_lm_eval_loglikelihood_and_generation_match_the_trainer_and_engine(tmp_path,
                                                                          server_factory):
    from lm_eval.api.registry import get_model
    from lm_eval.tasks import TaskManager

    from parallel_r1.engine.torch_engine import TorchEngine
    from parallel_r1.engine.types import ParallelParams, SamplingParams
    from parallel_r1.models.tiny import build_tiny

    model, tok = build_tiny(seed=0)  # the weights `serve tiny` runs
    tasks = TaskManager(include_path=str(write_tasks(tmp_path, model, tok)))
    server = server_factory(None, "--mode", "causal")
    lm = get_model("local-completions")(base_url=server.base + "/v1/completions", model="tiny",
                                        tokenizer_backend="remote", batch_size=2, max_retries=1)
    out = lm_eval.simple_evaluate(model=lm, tasks=["tiny_mc", "tiny_gen"], log_samples=True,
                                  task_manager=tasks)
    assert check_choices(lm, out["samples"]["tiny_mc"], model, tok, MC) >= 1  # greedy recognised
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


@torch.no_grad()
def test_lm_eval_choices_followed_by_end_of_text_score_every_token(tmp_path, server_process):
    """The greedy token after each prompt + choice is EOS: the server lists it (lm-eval's
    `[ctxlen:-1]` drops it), so no choice loses its last token or scores 0."""
    from lm_eval.api.registry import get_model
    from lm_eval.tasks import TaskManager

    from parallel_r1.models.load import save
    from parallel_r1.models.tiny import bias_tags, build_tiny

    model, tok = build_tiny(seed=0)
    bias_tags(model, tok, eos=2.0)  # EOS the likeliest next token everywhere
    save(model, tok, tmp_path / "eos-model")
    mc = [("The sky is", ["blue", "green"], 0), ("x", ["y", "z w"], 1)]
    for q, choices, _ in mc:
        for c in choices:
            ids = tok.encode(f"{q} {c}", add_special_tokens=False)
            assert int(model(input_ids=torch.tensor([ids])).logits[0, -1].argmax()) \
                == tok.eos_token_id
    tasks = TaskManager(include_path=str(write_tasks(tmp_path, model, tok, mc)))
    server = server_process(tmp_path / "server.log", None, "--mode", "causal",
                            model=str(tmp_path / "eos-model"))
    try:
        server.wait_healthy()
        lm = get_model("local-completions")(base_url=server.base + "/v1/completions",
                                            model=str(tmp_path / "eos-model"),
                                            tokenizer_backend="remote", batch_size=2,
                                            max_retries=1)
        out = lm_eval.simple_evaluate(model=lm, tasks=["tiny_mc"], log_samples=True,
                                      task_manager=tasks)
        assert check_choices(lm, out["samples"]["tiny_mc"], model, tok, mc) == 0  # EOS wins
    finally:
        server.kill()
