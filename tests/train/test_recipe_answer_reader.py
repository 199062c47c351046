"""A recipe picks the answer reader only for an eval stage; the RL reward cannot be given one."""

from __future__ import annotations

import pytest

from parallel_r1.errors import ConfigError
from parallel_r1.train.preflight import eval_config
from parallel_r1.train.recipe import load

RL = "  - kind: rl\n    name: rl\n    max_steps: 1\n    num_generations: 2\n" \
     "    per_device_batch_size: 2\n"


def _recipe(tmp_path, stage: str, name: str = "recipe.yaml"):
    path = tmp_path / name
    path.write_text("name: x\nstages:\n" + stage, encoding="utf-8")
    return path


@pytest.mark.parametrize("extra, field, line", [
    ("    answer_reader: common\n", "stages.rl.answer_reader", 8),   # no such rl field
    ("    eval: {answer_reader: common}\n", "stages.rl.eval", 8),    # eval settings on rl
])
def test_an_rl_stage_cannot_pick_a_reader(tmp_path, extra, field, line):
    path = _recipe(tmp_path, RL + extra)
    load(_recipe(tmp_path, RL, "plain.yaml"))  # the stage itself is fine
    with pytest.raises(ConfigError) as err:
        load(path)
    assert (err.value.field, err.value.file, err.value.line) == (field, str(path), line)


def test_an_sft_stage_with_eval_settings_is_refused(tmp_path):
    path = _recipe(tmp_path, "  - kind: sft\n    eval: {benchmarks: gsm8k}\n")
    with pytest.raises(ConfigError, match="belong to a kind: eval stage") as err:
        load(path)
    assert err.value.field == "stages.sft.eval"


def test_an_eval_stage_picks_the_reader(tmp_path):
    recipe = load(_recipe(tmp_path, "  - kind: eval\n    eval: {answer_reader: common}\n"))
    assert eval_config(recipe.stages[0], 0, "stages.0.eval", recipe).answer_reader == "common"
    recipe = load(_recipe(tmp_path, "  - kind: eval\n    eval: {answer_reader: commn}\n"))
    with pytest.raises(ConfigError, match="unknown answer reader 'commn'") as err:
        eval_config(recipe.stages[0], 0, "stages.0.eval", recipe)
    assert (err.value.field, err.value.line) == ("stages.eval.eval.answer_reader", 4)
