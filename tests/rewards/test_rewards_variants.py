"""Every SPEC 4.3 reward formula on hand cases, the registry, and compose/build_reward."""

import math

import pytest

from parallel_r1.errors import ConfigError, UnknownNameError
from parallel_r1.rewards import REWARDS, Alternating, SwitchAfter, build_reward, compose

BLOCK = "<Parallel><Path>add the two</Path><Path>count them up</Path></Parallel>\n<Summary>ok</Summary>"
BAD_BLOCK = "<Parallel><Path>only one</Path></Parallel>\n<Summary>ok</Summary>"  # < 2 paths
RIGHT, WRONG = "Final Answer: 18", "Final Answer: 17"
# (name, response, score); gold is "18" and the grader the paper's.
MATH_CASES = [
    ("accuracy_reward", RIGHT, 1.0), ("accuracy_reward", WRONG, -1.0),
    ("accuracy_reward", "Final Answer: 18.", -1.0),  # the paper's quirk
    ("accuracy_add_parallel_reward", BLOCK + RIGHT, 1.5),
    ("accuracy_add_parallel_reward", BLOCK + WRONG, -0.5),
    ("accuracy_add_parallel_reward", BAD_BLOCK + RIGHT, 1.0),
    ("accuracy_times_parallel_reward", BLOCK + RIGHT, 1.0),
    ("accuracy_times_parallel_reward", RIGHT, -1.0),
    ("accuracy_times_parallel_reward", BAD_BLOCK + RIGHT, -1.0),
    ("format_times_accuracy_times_parallel_reward", BLOCK + RIGHT, 1.0),
    ("accuracy_parallel_reward", BLOCK * 4 + RIGHT, 3.0),
    ("accuracy_parallel_reward", BAD_BLOCK + WRONG, 0.0),  # format unused: -1 + sqrt(1)
    ("emphase_acc", RIGHT, 1.0), ("emphase_acc", BLOCK + RIGHT, 1.0),
    ("emphase_acc", BAD_BLOCK + RIGHT, -1.0), ("emphase_acc", WRONG, -1.0),
    ("emphase_parallel", RIGHT, 1.0), ("emphase_parallel", BLOCK + RIGHT, 1.2),
    ("emphase_parallel", BAD_BLOCK + RIGHT, -1.0), ("emphase_parallel", BLOCK + WRONG, -1.0),
    ("emphase_parallel_enhance", BLOCK + RIGHT, 2.0), ("emphase_parallel_enhance", RIGHT, 1.0),
    ("emphase_parallel_add_diversity", RIGHT, 1.0),
    ("emphase_parallel_add_diversity", BAD_BLOCK + RIGHT, -1.0),
    ("accuracy_add_diversity_reward", RIGHT, 0.7),  # B = 1 without blocks
    ("accuracy_add_parallel_add_diversity_reward", WRONG, -1.3),
]
GSM8K_CASES = [
    ("gsm8k/accuracy_reward", RIGHT, 1.0), ("gsm8k/accuracy_reward", WRONG, 0.0),
    ("gsm8k/accuracy_reward", "no answer", 0.0),
    ("gsm8k/accuracy_times_special_token_reward", BLOCK + RIGHT, 1.0),
    ("gsm8k/accuracy_times_special_token_reward", RIGHT, 0.0),
    ("gsm8k/accuracy_times_special_token_reward", BAD_BLOCK + RIGHT, 0.0),
    ("gsm8k/accuracy_times_special_token_reward@build", BAD_BLOCK + RIGHT, 1.0),
    ("gsm8k/format_times_accuracy_times_parallel_reward", BLOCK + RIGHT, 1.0),
    ("gsm8k/accuracy_add_parallel_reward", BLOCK + RIGHT, 1.5),
    ("gsm8k/accuracy_add_parallel_reward", BLOCK + WRONG, 0.5),
    ("gsm8k/accuracy_add_parallel_reward", BLOCK + "no answer", 0.0),
    ("gsm8k/emphase_acc", RIGHT, 1.0), ("gsm8k/emphase_acc", BLOCK + RIGHT, 1.0),
    ("gsm8k/emphase_acc", BAD_BLOCK + RIGHT, 0.0),
    ("gsm8k/emphase_parallel", BLOCK + RIGHT, 1.2), ("gsm8k/emphase_parallel", RIGHT, 1.0),
    ("gsm8k/emphase_parallel", BLOCK + WRONG, 0.0),
    ("gsm8k/emphase_parallel_add_diversity", RIGHT, 1.0),
    # FIRST match: an early wrong answer wins over the corrected one
    ("gsm8k/emphase_parallel", "Final Answer: 17\n" + BLOCK + RIGHT, 0.0),
    ("gsm8k/accuracy_reward", "Final Answer: 17\n" + RIGHT, 1.0),  # last match here
    ("gsm8k/emphase_parallel", BLOCK + "Final Answer: 18.", 0.0),  # trailing "." is wrong
]


@pytest.mark.parametrize("name, response, expected", MATH_CASES + GSM8K_CASES)
def test_formula(name, response, expected):
    score, parts = REWARDS.get(name)(response, "18")
    assert score == pytest.approx(expected)
    assert "acc" in parts and "pred" in parts


def test_diversity_formulas():
    same = "<Parallel><Path>the same words here</Path><Path>the same words here</Path></Parallel>\n<Summary>s</Summary>"
    score, parts = REWARDS.get("emphase_parallel_add_diversity")(same + RIGHT, "18")
    assert parts["self_bleu"] == pytest.approx(1.0) and score == pytest.approx(1.0)
    score, parts = REWARDS.get("accuracy_add_parallel_add_diversity_reward")(BLOCK + RIGHT, "18")
    assert score == pytest.approx(2.0 - 0.3 * parts["self_bleu"])
    score, parts = REWARDS.get("gsm8k/emphase_parallel_add_diversity")(same + RIGHT, "18")
    assert score == pytest.approx(1.0)


def test_efficiency_formulas():
    text = BLOCK + RIGHT  # words: 6 in paths (3 + 3), 1 summary, 3 answer -> T = 10
    score, parts = REWARDS.get("accuracy_add_efficiency_reward")(text, "18")
    e = (10 - (3 + 1 + 3)) / 10  # traversed: the longest path + summary + answer
    assert parts["eff_gain"] == pytest.approx(e)
    assert score == pytest.approx(1 + 0.4 * e)
    score, _ = REWARDS.get("accuracy_add_efficiency_reward")(BLOCK + WRONG, "18")
    assert score == pytest.approx(-1 + 0.1 * e)
    score, parts = REWARDS.get("accuracy_add_efficiency_reward_decay")(text, "18", step=50)
    assert parts["ratio"] == pytest.approx(math.exp(-1))
    assert score == pytest.approx(1 + 0.4 * e * math.exp(-1))


def test_build_only_format_reward():
    fn = REWARDS.get("format_accuracy_parallel_reward@build")
    assert fn(RIGHT, "18")[0] == pytest.approx(1.3)
    assert fn(BLOCK + RIGHT, "18")[0] == pytest.approx(1.3 + 0.6 * math.log(2))
    assert fn(BAD_BLOCK + WRONG, "18")[0] == pytest.approx(-1.3 - 0.1 * math.log(2))


@pytest.mark.parametrize("step", [1, 8, 9, 10, 11, 18, 19, 20, 21])
def test_s2_alternates_like_its_schedule(step):
    faithful = REWARDS.get("accuracy_parallel_interv_reward")
    composed = build_reward(Alternating("accuracy_reward", "emphase_parallel"), grader="paper")
    responses = [BLOCK + RIGHT, RIGHT, BAD_BLOCK + RIGHT, WRONG]
    expected = [faithful(r, "18", step=step)[0] for r in responses]
    assert composed(responses, ["18"] * 4, step)[0] == expected
    late = (step - 1) % 10 >= 8
    assert expected == ([1.2, 1.0, -1.0, -1.0] if late else [1.0, 1.0, 1.0, -1.0])


def test_grader_argument_fixes_the_quirks():
    assert REWARDS.get("accuracy_reward")("Final Answer: 18.", "18", grader="math-verify")[0] == 1
    assert REWARDS.get("gsm8k/emphase_parallel")(
        "Final Answer: 17\n" + BLOCK + RIGHT, "18", grader="math-verify")[0] == 1.2


def test_build_reward_defaults_to_math_verify():
    reward = build_reward("accuracy_reward")
    scores, metrics = reward(["Final Answer: 18.", WRONG, "nothing"], ["18", "18", "18"], 1)
    assert scores == [1.0, -1.0, -1.0]
    assert metrics["reward/score"] == pytest.approx(-1 / 3)
    assert metrics["reward/acc"] == pytest.approx(1 / 3)


def test_weighted_sum_and_switch():
    reward = compose(["accuracy_reward", "emphase_parallel"], [0.5, 2.0])
    scores, metrics = reward([BLOCK + RIGHT], ["18"], 3)
    assert scores == [pytest.approx(0.5 + 2.4)]
    assert metrics["reward/emphase_parallel/score"] == pytest.approx(1.2)
    switch = build_reward({"kind": "switch", "first": "emphase_parallel",
                           "second": "accuracy_reward", "after": 200})
    assert switch([BLOCK + RIGHT], ["18"], 200)[0] == [1.2]
    assert switch([BLOCK + RIGHT], ["18"], 201)[0] == [1.0]
    assert build_reward({"accuracy_reward": 2})([RIGHT], ["18"], 1)[0] == [2.0]


def test_bad_specs():
    with pytest.raises(UnknownNameError, match="known: accuracy_add_diversity_reward"):
        build_reward("accuracy")
    with pytest.raises(UnknownNameError, match="grader"):
        build_reward("accuracy_reward", grader="exact")
    with pytest.raises(ConfigError, match="weights"):
        compose(["accuracy_reward"], [1.0, 2.0])
    with pytest.raises(UnknownNameError):
        build_reward(SwitchAfter("accuracy_reward", "nope", 3))
    with pytest.raises(ValueError, match="responses"):
        build_reward("accuracy_reward")(["a"], [], 1)


def test_registry_holds_every_paper_variant():
    math_names = {"accuracy_reward", "accuracy_parallel_interv_reward",
                  "accuracy_add_parallel_reward", "accuracy_times_parallel_reward",
                  "format_times_accuracy_times_parallel_reward", "accuracy_parallel_reward",
                  "emphase_acc", "emphase_parallel", "emphase_parallel_enhance",
                  "emphase_parallel_add_diversity", "accuracy_add_diversity_reward",
                  "accuracy_add_parallel_add_diversity_reward", "accuracy_add_efficiency_reward",
                  "accuracy_add_efficiency_reward_decay", "format_accuracy_parallel_reward@build"}
    gsm8k = {"accuracy_reward", "accuracy_times_special_token_reward",
             "format_times_accuracy_times_parallel_reward", "accuracy_add_parallel_reward",
             "emphase_acc", "emphase_parallel", "emphase_parallel_add_diversity",
             "accuracy_times_special_token_reward@build"}
    assert set(REWARDS.names()) == math_names | {f"gsm8k/{n}" for n in gsm8k}
