"""Recipes: every shipped recipe loads; bad keys and values are named; overrides apply."""

from __future__ import annotations

from pathlib import Path

import pytest

from parallel_r1.errors import ConfigError
from parallel_r1.train.recipe import load

RECIPES = Path(__file__).resolve().parents[2] / "recipes"


@pytest.mark.parametrize("path", sorted(p.name if p.parent == RECIPES else
                                        f"{p.parent.name}/{p.name}"
                                        for p in RECIPES.rglob("*.yaml")
                                        if p.parent.name != "accelerate"
                                        and p.name != "grid.yaml"))  # grids: test_grid.py
def test_shipped_recipes_load(path):
    recipe = load(RECIPES / path)
    assert recipe.stages and all(s.name for s in recipe.stages)


def test_paper_settings_are_in_the_recipes():
    s2 = load(RECIPES / "qwen3-4b/s2.yaml").stages[0]
    assert (s2.epsilon_high, s2.learning_rate, s2.num_generations, s2.beta) == (0.28, 1e-6, 8, 0.0)
    assert s2.reward["kind"] == "alternating"
    sft = load(RECIPES / "qwen3-4b/sft-unseen.yaml").stages[0]
    assert (sft.learning_rate, sft.adam_beta2, sft.lr_scheduler_type, sft.mode) == \
        (1e-5, 0.95, "cosine", "structured")
    assert load(RECIPES / "qwen3-4b/sft-seen.yaml").stages[0].mode == "causal"


@pytest.mark.parametrize("path", ["qwen3-4b/scaffold.yaml", "qwen3-0.6b/scaffold.yaml"])
def test_scaffold_runs_s2_with_its_clip_then_accuracy_with_the_default_clip(path):
    """SPEC 5.6: S2 (alternating reward, clip-high 0.28), then accuracy-only with clip-high 0.2
    from that checkpoint: one stage with a reward switch would keep one clip for both parts."""
    from parallel_r1.rewards.compose import build_reward

    s2, acc = [s for s in load(RECIPES / path).stages if s.kind == "rl"]
    assert (s2.epsilon_high, acc.epsilon_high) == (0.28, 0.2)
    assert acc.reward == "accuracy_reward"
    s1 = load(RECIPES / path.replace("scaffold", "s1" if "4b" in path else "rl")).stages[0]
    assert s2.max_steps + acc.max_steps == s1.max_steps  # the same RL budget as every arm
    # the S2 part pays the block bonus at steps 9-10 of every 10 (SPEC 4.4), accuracy at 1-8
    reward = build_reward(s2.reward, grader="paper")
    block = "<Parallel><Path>\n2+2=4\n</Path><Path>\n4\n</Path></Parallel>\n" \
        "<Summary>\n4\n</Summary>\nFinal Answer: 4"
    assert [reward.score(block, "4", step=s)[0] for s in (1, 9)] == [1.0, 1.2]


def test_unknown_key_names_key_and_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nstages:\n  - kind: sft\n    lerning_rate: 1\n")
    with pytest.raises(ConfigError) as err:
        load(bad)
    assert "lerning_rate" in str(err.value) and str(bad) in str(err.value)
    with pytest.raises(ConfigError, match="unknown key 'colour'"):
        load(RECIPES / "cpu-demo.yaml", ["model.colour=red"])


def test_bad_value_names_the_field():
    with pytest.raises(ConfigError) as err:
        load(RECIPES / "cpu-demo.yaml", ["stages.rl.epsilon_high=0.1"])
    assert err.value.field == "stages.rl.epsilon_high"
    with pytest.raises(ConfigError, match="unknown reward"):
        load(RECIPES / "cpu-demo.yaml", ["stages.rl.reward=no_such_reward"])
    with pytest.raises(ConfigError, match="key=value"):
        load(RECIPES / "cpu-demo.yaml", ["stages.rl.max_steps"])


def test_overrides_by_index_and_by_name():
    recipe = load(RECIPES / "cpu-demo.yaml", ["stages.rl.max_steps=3", "stages.1.max_steps=2",
                                               "output_dir=/tmp/x", "stages.rl.num_paths=null"])
    by_name = {s.name: s for s in recipe.stages}
    assert by_name["rl"].max_steps == 3 and by_name["sft"].max_steps == 2
    assert recipe.output_dir == "/tmp/x" and by_name["rl"].num_paths is None


def test_numbers_written_as_yaml_text_become_numbers(tmp_path):
    from parallel_r1.errors import ConfigError
    from parallel_r1.train.recipe import load

    path = tmp_path / "r.yaml"
    path.write_text("stages:\n  - kind: sft\n    learning_rate: 1e-5\n")  # YAML 1.1: a string
    recipe = load(path, ["stages.0.max_steps=7"])
    assert recipe.stages[0].learning_rate == 1e-5 and recipe.stages[0].max_steps == 7
    with pytest.raises(ConfigError, match="stages.0.learning_rate"):
        load(path, ["stages.0.learning_rate=fast"])


def test_report_to_names_known_installed_trackers():
    from transformers.integrations.integration_utils import INTEGRATION_TO_CALLBACK

    from parallel_r1.train.trackers import TRACKERS

    assert set(TRACKERS) == set(INTEGRATION_TO_CALLBACK)  # the same names as transformers
    assert load(RECIPES / "cpu-demo.yaml").report_to == []
    with pytest.raises(ConfigError, match="unknown tracker 'tensorbord'; known: all, none"):
        load(RECIPES / "cpu-demo.yaml", ["report_to=[tensorbord]"])
    with pytest.raises(ConfigError, match="tracker 'swanlab' is not installed") as err:
        load(RECIPES / "cpu-demo.yaml", ["report_to=swanlab"])
    assert err.value.field == "report_to"
    with pytest.raises(ConfigError, match="logprob_check_every"):
        load(RECIPES / "cpu-demo.yaml", ["stages.rl.logprob_check_every=0"])


@pytest.mark.parametrize("override,field,message", [
    ("stages.rl.backend=tpu", "stages.rl.backend", "known: torch, vllm"),
    ("stages.rl.vllm_mode=colocate", "stages.rl.vllm_mode", "needs backend: vllm"),
    ("stages.rl.kv_cache_gb=0", "stages.rl.kv_cache_gb", "> 0"),
    ("stages.sft.mode=threads", "stages.sft.mode", "SFT trains structured or causal"),
    ("stages.sft.backend=vllm", "stages.sft.backend", "rl stages"),
])
def test_bad_backend_and_layout_settings_name_the_field(override, field, message):
    with pytest.raises(ConfigError, match=message) as err:
        load(RECIPES / "cpu-demo.yaml", [override])
    assert err.value.field == field


def test_vllm_backend_settings_are_checked_together():
    ok = load(RECIPES / "cpu-demo.yaml", ["stages.rl.backend=vllm", "stages.rl.mode=threads",
                                          "stages.rl.vllm_mode=server",
                                          "stages.rl.vllm_server_url=http://gpu:8000"])
    rl = {s.name: s for s in ok.stages}["rl"]
    assert (rl.backend, rl.mode, rl.vllm_mode) == ("vllm", "threads", "server")
    bad = [(["stages.rl.backend=vllm"], "stages.rl.mode", "structured needs backend: torch"),
           (["stages.rl.backend=vllm", "stages.rl.mode=threads", "stages.rl.kv_cache_gb=4"],
            "stages.rl.kv_cache_gb", "vllm_gpu_memory_utilization"),
           (["stages.rl.backend=vllm", "stages.rl.mode=causal",
             "stages.rl.vllm_server_url=http://x"], "stages.rl.vllm_server_url",
            "vllm_mode: server"),
           (["stages.rl.mode=threads", "stages.rl.num_paths=null"], "stages.rl.num_paths",
            "fixed number of paths")]
    for overrides, field, message in bad:
        with pytest.raises(ConfigError, match=message) as err:
            load(RECIPES / "cpu-demo.yaml", overrides)
        assert err.value.field == field


def test_vllm_backend_without_vllm_fails_before_any_work():
    import importlib.util

    from parallel_r1.train.recipe import load as load_recipe
    from parallel_r1.train.rollout import rollout_backend

    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vllm is installed here")
    stage = {s.name: s for s in load_recipe(RECIPES / "cpu-demo.yaml", [
        "stages.rl.backend=vllm", "stages.rl.mode=threads"]).stages}["rl"]
    with pytest.raises(ConfigError, match="vllm is not installed") as err:
        rollout_backend(stage, None, None)
    assert err.value.field == "stages.rl.backend"


def test_unknown_key_suggests_the_close_one_and_lists_all_when_none_is_close(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nstages:\n  - kind: sft\n    lerning_rate: 1\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml:4, field 'stages\.sft\.lerning_rate': "
                       r"unknown key 'lerning_rate'; did you mean 'learning_rate'\?$"):
        load(bad)
    bad.write_text("name: x\nzzz: 1\nstages:\n  - kind: sft\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml:2, field 'zzz': unknown key 'zzz'; "
                       r"known: model, name, output_dir, report_to, seed, stages$"):
        load(bad)


def test_an_unknown_stage_in_an_override_lists_the_stages(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("stages:\n  - {kind: sft}\n  - {kind: rl}\n")
    with pytest.raises(ConfigError, match=r"no stage 'rlx' in override 'stages\.rlx\.max_steps';"
                       r" the stages are sft, rl \(by name or index 0\.\.1\)"):
        load(path, ["stages.rlx.max_steps=3"])


def test_a_grid_file_given_to_run_points_to_grid_and_back():
    from parallel_r1.train.grid import load_grid, mini_grid_path

    grid = mini_grid_path()
    with pytest.raises(ConfigError, match=rf"this is a grid file .*; run it with: "
                       rf"parallel-r1 grid {grid}$"):
        load(grid)
    recipe = RECIPES / "cpu-demo.yaml"
    with pytest.raises(ConfigError, match=rf"this is a recipe .*; run it with: "
                       rf"parallel-r1 run {recipe}$"):
        load_grid(recipe)


@pytest.mark.parametrize("name, message", [
    ("./no-such-model", r"model directory no-such-model does not exist"),
    ("{tmp}/empty", r".*empty has no config\.json: not a transformers model directory"),
])
def test_check_refuses_a_local_model_path_that_holds_no_model(tmp_path, monkeypatch, name,
                                                               message):
    from parallel_r1.train.preflight import check_recipe

    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    path = tmp_path / "r.yaml"
    path.write_text(f"output_dir: {tmp_path}/out\nmodel:\n  name: {name.format(tmp=tmp_path)}\n"
                    "stages:\n  - {kind: sft, data: 'synthetic:1:4:0'}\n")
    with pytest.raises(ConfigError, match=rf"r\.yaml:3, field 'model\.name': {message}"):
        check_recipe(load(path))


def test_check_says_where_a_model_comes_from(tmp_path, monkeypatch):
    from huggingface_hub import constants

    from parallel_r1.models import save_tiny
    from parallel_r1.train.preflight import check_model

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    snapshot = tmp_path / "hub/models--Org--cached/snapshots/abc"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    (tmp_path / "hub/models--Org--cached/refs").mkdir()
    (tmp_path / "hub/models--Org--cached/refs/main").write_text("abc")
    save_tiny(tmp_path / "tiny-dir")
    path = tmp_path / "r.yaml"
    path.write_text("stages:\n  - {kind: sft}\n")
    assert check_model(load(path)) == "model: tiny (built in)"
    local = load(path, [f"model.name={tmp_path / 'tiny-dir'}"])
    assert check_model(local) == f"model: {tmp_path / 'tiny-dir'} (local directory)"
    hub = load(path, ["model.name=Org/not-cached"])
    assert check_model(hub).endswith("(hub id, not in the local hub cache: the first stage "
                                     "downloads it)")
    cached = load(path, ["model.name=Org/cached"])
    assert check_model(cached) == "model: Org/cached (hub id, in the local hub cache)"
