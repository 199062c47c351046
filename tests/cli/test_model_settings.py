"""`eval` and `serve` follow what a model records about itself (issue 22): no flags replay its
template, layout and last eval; a contradicting flag is used with one warning line; default
output folders never collide; a bad benchmark name is the error shown; --threads reaches torch."""

from __future__ import annotations

import json

import pytest

from parallel_r1.eval.evaluate import EvalConfig, evaluate, read_samples
from parallel_r1.models import build_tiny, save
from parallel_r1.models.card import record_eval

# The recorded eval: small enough for seconds, in the layout and template the model trained in.
RECORDED = {"benchmarks": "synthetic-l1", "samples": 2, "limit": 2, "max_tokens": 12,
            "max_path_tokens": 6, "template": "none", "mode": "structured", "batch_size": 2}


def _stage_model(root, recipe: str, stage: str, seed: int):
    """A model folder as the runner leaves it: provenance, then an eval stage's record."""
    model, tok = build_tiny(seed)
    meta = {"recipe": recipe, "stage": stage, "kind": "sft", "mode": "structured",
            "num_paths": 2, "training": {"template": "none"}}
    path = save(model, tok, root / recipe / stage / "model", meta=meta)
    out = root / recipe / f"eval-{stage}"
    summary = evaluate(model, tok, EvalConfig(**RECORDED), out, model_name=stage,
                       progress=False)
    record_eval(path, f"eval-{stage}", summary, summary["table"])
    return path, out


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    return _stage_model(root, "a", "sft", 0), _stage_model(root, "b", "rl", 1)


@pytest.fixture
def eval_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("PARALLEL_R1_EVAL_DIR", str(tmp_path / "eval-out"))
    return tmp_path / "eval-out"


def _only(folder):
    (found,) = [p for p in folder.iterdir()]
    return found


def _samples(folder) -> dict:
    return {(r["problem_id"], r["sample"]): (r["response"], r["correct"])
            for r in read_samples(folder / "samples.jsonl")}


def test_eval_with_no_flags_replays_the_models_recorded_eval(cli, models, eval_dir):
    (path, recorded_out), _ = models
    code, out, err = cli("eval", path)
    assert code == 0 and "warning" not in err, err
    folder = _only(eval_dir)
    assert folder.name.startswith("a-sft-")  # readable: the recipe and stage it records
    config = json.loads((folder / "config.json").read_text())["config"]
    assert {k: config[k] for k in RECORDED if k != "batch_size"} == {
        k: v for k, v in RECORDED.items() if k != "batch_size"}
    # The same samples, so the same Mean@k as the table on the model's card.
    assert _samples(folder) == _samples(recorded_out)
    mine = json.loads((folder / "summary.json").read_text())["benchmarks"]
    theirs = json.loads((recorded_out / "summary.json").read_text())["benchmarks"]
    assert mine["synthetic-l1"]["grades"] == theirs["synthetic-l1"]["grades"]


def test_a_flag_that_contradicts_the_record_is_used_with_one_warning_line(cli, models,
                                                                         eval_dir):
    (path, _), _ = models
    code, _, err = cli("eval", path, "--template", "parallel", "--mode", "threads")
    assert code == 0, err
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert warnings == [
        f"warning: --mode threads differs from the mode structured that {path} records "
        "(parallel_r1.json); using threads",
        f"warning: --template parallel differs from the template none that {path} records "
        "(parallel_r1.json); using parallel"]
    config = json.loads((_only(eval_dir) / "config.json").read_text())["config"]
    assert (config["mode"], config["template"]) == ("threads", "parallel")


def test_default_folders_of_two_models_or_two_settings_never_collide(cli, models, eval_dir):
    (sft, _), (rl, _) = models
    assert sft.name == rl.name == "model"  # what made every eval share eval-out/model
    for args in ((sft,), (rl,), (sft, "--seed", "1")):
        code, _, err = cli("eval", *args)
        assert code == 0, err
    folders = sorted(p.name for p in eval_dir.iterdir())
    assert len(folders) == 3 and [f[:-9] for f in folders] == ["a-sft", "a-sft", "b-rl"]
    before = {p.name: (p / "samples.jsonl").read_text() for p in eval_dir.iterdir()}
    code, _, err = cli("eval", sft)  # the same eval again resumes its own folder
    assert code == 0, err
    assert {p.name: (p / "samples.jsonl").read_text() for p in eval_dir.iterdir()} == before


def test_an_unknown_benchmark_is_the_error_even_over_a_folder_of_other_settings(cli, models,
                                                                               eval_dir):
    (path, recorded_out), _ = models
    # A folder holding samples of other settings (the refusal that hid the real error).
    line = cli.refused("eval", path, "--benchmarks", "gsm8", "--out", recorded_out, "--seed",
                       "7")
    assert "unknown benchmark 'gsm8'" in line and "field 'benchmarks'" in line
    assert cli("eval", path, "--seed", "7")[0] == 0
    line = cli.refused("eval", path, "--seed", "7", "--benchmarks", "synthetic-l1,gsm8")
    assert "unknown benchmark 'gsm8'" in line  # its default folder exists now
    line = cli.refused("eval", path, "--grader", "paper,exact")
    assert "unknown grader 'exact'" in line and "field 'graders'" in line


@pytest.fixture
def restore_threads(monkeypatch):
    import torch

    before = torch.get_num_threads()
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # restored after the test, as torch is
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("args, env, expected", [
    (["--threads", "2"], None, 2), ([], "3", 3), ([], None, 1)])
def test_threads_reach_torch_inside_the_eval(cli, monkeypatch, restore_threads, tmp_path,
                                            args, env, expected):
    import torch

    import parallel_r1.eval.evaluate as evaluate_module

    seen = []

    def spy(*a, **kw):
        seen.append(torch.get_num_threads())
        return {"table": ""}

    monkeypatch.setattr(evaluate_module, "evaluate", spy)
    if env is None:
        monkeypatch.delenv("OMP_NUM_THREADS")
    else:
        monkeypatch.setenv("OMP_NUM_THREADS", env)  # the user's own setting wins over ours
    code, _, err = cli("eval", "tiny", "--benchmarks", "synthetic-l1", "--out",
                       tmp_path / "e", *args)
    assert code == 0, err
    assert seen == [expected]


def test_threads_reach_torch_inside_a_recipe_run(cli, monkeypatch, restore_threads):
    import torch

    import parallel_r1.train.runner as runner
    from parallel_r1.train.demo import recipe_path

    seen = []
    monkeypatch.setattr(runner, "run", lambda recipe: seen.append(torch.get_num_threads())
                        or {"stages": {}})
    assert cli("run", recipe_path(), "--threads", "2")[0] == 0
    assert seen == [2]


@pytest.mark.parametrize("args, expected, warned", [
    ([], ("causal", 2), False), (["--mode", "threads", "--paths", "3"], ("threads", 3), True)])
def test_serve_takes_the_recorded_layout(cli, monkeypatch, tmp_path, args, expected, warned):
    import parallel_r1.serve.server as server

    model, tok = build_tiny(0)
    path = save(model, tok, tmp_path / "model", meta={"mode": "causal", "num_paths": None})
    configs = []
    monkeypatch.setattr(server, "serve", configs.append)
    code, _, err = cli("serve", path, *args)
    assert code == 0, err
    assert (configs[0].mode, configs[0].paths) == expected
    lines = [line for line in err.splitlines() if line.startswith("warning:")]
    assert lines == ([f"warning: --mode threads differs from the mode causal that {path} "
                      "records (parallel_r1.json); using threads"] if warned else [])
