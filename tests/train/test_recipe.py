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
