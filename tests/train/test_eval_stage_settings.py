"""A recipe's or a grid's eval stage measures a model in the layout and template it was trained
in unless the recipe says otherwise (then it warns where they differ)."""

from __future__ import annotations

import yaml

from parallel_r1.models import build_tiny, save
from parallel_r1.train.grid import load_grid, plan
from parallel_r1.train.recipe import load
from parallel_r1.train.stages import eval_stage_on

EVAL = {"kind": "eval", "name": "eval", "eval": {"benchmarks": "synthetic-l1", "limit": 2}}


def _recipe(tmp_path, model: str, **eval_keys):
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump({"name": "r", "model": {"name": model},
                                    "stages": [{**EVAL, **eval_keys}]}))
    return load(path)


def test_a_runs_eval_stage_takes_what_its_model_records_unless_set(tmp_path, capsys):
    model, tok = build_tiny(0)
    path = str(save(model, tok, tmp_path / "model",
                    meta={"mode": "causal", "training": {"template": "none"}}))
    capsys.readouterr()  # transformers' save bar
    recipe = _recipe(tmp_path, path)
    stage = eval_stage_on(recipe, recipe.stages[0], None)  # the recipe's own model
    assert (stage.mode, stage.template) == ("causal", "none")
    assert capsys.readouterr().err == ""
    recipe = _recipe(tmp_path, "tiny", mode="threads", num_paths=2)
    stage = eval_stage_on(recipe, recipe.stages[0], path)  # an earlier stage's model
    assert (stage.mode, stage.template) == ("threads", "none")  # as set, and as recorded
    assert capsys.readouterr().err.splitlines() == [
        f"warning: stages.eval.mode threads differs from the mode causal that {path} records "
        "(parallel_r1.json); using threads"]
    recipe = _recipe(tmp_path, "tiny")
    assert eval_stage_on(recipe, recipe.stages[0], None) is recipe.stages[0]  # nothing recorded


def test_a_grids_eval_node_measures_in_the_layout_its_arm_trained_in(tmp_path, make_grid):
    causal = ["stages.sft.mode=causal", "stages.rl.mode=causal"]
    nodes = plan(load_grid(make_grid(tmp_path, overrides=causal))).nodes.values()
    assert {n.stage.mode for n in nodes if n.stage.kind == "eval"} == {"causal"}
    forced = plan(load_grid(make_grid(tmp_path, overrides=[*causal,
                                                           "stages.eval.mode=structured"])))
    assert {n.stage.mode for n in forced.nodes.values() if n.stage.kind == "eval"} == {
        "structured"}  # what the grid sets is what runs
