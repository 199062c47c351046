"""The synthetic task: deterministic, correct answers, valid canonical traces, short."""

from __future__ import annotations

import re

import pytest

from parallel_r1.data.synthetic import MAX_LEVEL, generate, make_problem, write_trace
from parallel_r1.errors import ConfigError
from parallel_r1.format.normalize import normalize
from parallel_r1.format.parse import parse
from parallel_r1.format.validate import validate
from parallel_r1.rewards.answer import extract_final_answer


def test_deterministic_and_prefix_stable():
    assert generate(2, 50, seed=7) == generate(2, 50, seed=7)
    assert generate(2, 10, seed=7) == generate(2, 50, seed=7)[:10]
    assert generate(2, 20, seed=7) != generate(2, 20, seed=8)
    assert len({r.question for r in generate(1, 200, seed=0)}) > 150


@pytest.mark.parametrize("level", range(1, MAX_LEVEL + 1))
def test_traces_are_valid_canonical_and_correct(level):
    for record in generate(level, 200, seed=level):
        trace, plain = record.extras["trajectory"], record.extras["trajectory_plain"]
        assert validate(trace, "strict") == [] and validate(plain, "strict") == []
        assert normalize(trace)[1] == []  # already canonical
        assert extract_final_answer(trace) == extract_final_answer(plain) == record.answer
        assert int(record.answer) >= 1
        assert "<" not in plain
        assert parse(trace).num_blocks == (1 if level < 3 else 2)


def test_answers_follow_the_question():
    # Recompute each answer from the question text alone.
    for record in generate(4, 200, seed=3):
        sentences = record.question.split(". ")
        bags, each = map(int, re.findall(r"\d+", sentences[0])[:2])
        value = bags * each
        for sentence in sentences[1:]:
            number = re.findall(r"\d+", sentence)
            if "more" in sentence:
                value += int(number[0])
            elif "given away" in sentence:
                value -= int(number[0])
            elif "doubles" in sentence:
                value *= 2
        assert str(value) == record.answer, record.question


def test_paths_take_different_routes_and_summary_states_the_value():
    for level in (1, 3):
        for index in range(100):
            problem = make_problem(0, level, index)
            for block in parse(write_trace(problem)).blocks:
                routes = [p.text.strip() for p in block.paths]
                assert len(set(routes)) == len(routes) >= 2
                value = routes[0].split("=")[-1]
                assert all(r.endswith((value, f"{value} are left")) for r in routes)
                assert f" {value} " in block.summary.text


def test_short_enough_for_tiny_models():
    lengths = [len(r.extras["trajectory"]) for r in generate(1, 300, seed=0)]
    assert max(lengths) < 200 and sum(lengths) / len(lengths) < 160


def test_level_is_checked():
    with pytest.raises(ConfigError, match="field 'level'"):
        generate(MAX_LEVEL + 1, 1)
