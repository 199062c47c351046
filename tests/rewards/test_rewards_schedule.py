"""Reward schedules at their window boundaries, and their configs."""

import pytest

from parallel_r1.errors import ConfigError, UnknownNameError
from parallel_r1.rewards.schedule import Alternating, Constant, SwitchAfter, schedule_from_config


@pytest.mark.parametrize("step, first", [
    (1, True), (8, True), (9, False), (10, False), (11, True), (18, True), (19, False),
    (20, False), (21, True), (1001, True), (1009, False),
])
def test_alternating_default_window(step, first):
    schedule = Alternating()
    assert schedule.uses_first(step) is first
    expected = "accuracy_reward" if first else "emphase_parallel"
    assert schedule.weights(step) == {expected: 1.0}


def test_alternating_custom_split():
    schedule = Alternating("a", "b", window=4, num_first=1)
    assert [next(iter(schedule.weights(s))) for s in range(1, 10)] == list("abbbabbba")
    assert Alternating("a", "b", window=3, num_first=3).weights(3) == {"a": 1.0}
    assert Alternating("a", "b", window=3, num_first=0).weights(1) == {"b": 1.0}


def test_switch_after_and_constant():
    switch = SwitchAfter("a", "b", after=200)
    assert switch.weights(200) == {"a": 1.0} and switch.weights(201) == {"b": 1.0}
    assert SwitchAfter("a", "b", after=0).weights(1) == {"b": 1.0}
    assert Constant({"a": 1.0, "b": 0.5}).weights(7) == {"a": 1.0, "b": 0.5}


def test_steps_start_at_one():
    for schedule in (Alternating(), SwitchAfter("a", "b", 3), Constant({"a": 1})):
        with pytest.raises(ValueError, match="start at 1"):
            schedule.weights(0)


@pytest.mark.parametrize("kwargs, field", [
    ({"window": 0}, "window"), ({"num_first": 11}, "num_first"), ({"num_first": -1}, "num_first"),
])
def test_alternating_checks(kwargs, field):
    with pytest.raises(ConfigError, match=field):
        Alternating(**kwargs)


def test_from_config():
    assert schedule_from_config({"kind": "alternating", "window": 5, "num_first": 4}) == \
        Alternating(window=5, num_first=4)
    assert schedule_from_config({"kind": "constant", "rewards": {"a": 2}}).weights(1) == {"a": 2}
    with pytest.raises(ConfigError, match="'windw': unknown field"):
        schedule_from_config({"kind": "alternating", "windw": 5})
    with pytest.raises(ConfigError, match="after"):
        schedule_from_config({"kind": "switch", "first": "a", "second": "b"})
    with pytest.raises(UnknownNameError, match="alternating, constant, switch"):
        schedule_from_config({"kind": "cosine"})
    with pytest.raises(ConfigError, match="kind"):
        schedule_from_config({})
    with pytest.raises(ConfigError, match="rewards"):
        Constant({})
