"""The fork family of the synthetic task (data.fork) and its data specs."""

from __future__ import annotations

import re

import pytest

from parallel_r1.data.fork import (
    MAX_FORK_LEVEL,
    P_BLOCK,
    SLIP,
    VERIFY,
    generate_fork,
    make_fork_problem,
)
from parallel_r1.data.synthetic import from_spec
from parallel_r1.errors import ConfigError
from parallel_r1.format.normalize import normalize
from parallel_r1.format.parse import parse
from parallel_r1.format.validate import validate
from parallel_r1.rewards.answer import extract_final_answer, strip_tags

CHOICE = re.compile(r"Then (\d+) or (\d+) (?:more )?\w+ are (given away|added), so that between "
                    r"(\d+) and (\d+) are (?:left|there)")


def test_deterministic_by_seed_level_index_and_prefix_stable():
    assert generate_fork(2, 40, seed=3) == generate_fork(2, 40, seed=3)
    assert generate_fork(2, 10, seed=3) == generate_fork(2, 40, seed=3)[:10]
    assert generate_fork(2, 20, seed=3) != generate_fork(2, 20, seed=4)
    assert make_fork_problem(5, 3, 17) == make_fork_problem(5, 3, 17)
    assert len({r.question for r in generate_fork(1, 300, seed=0)}) > 250
    with pytest.raises(ConfigError, match="fork level"):
        make_fork_problem(0, MAX_FORK_LEVEL + 1, 0)


def answer_from_question(question: str) -> tuple[int, int]:
    """(answer, right amount) recomputed from the question alone."""
    sentences = question.split(". ")
    bags, each = map(int, re.findall(r"\d+", sentences[0])[:2])
    value, right = bags * each, 0
    for sentence in sentences[1:]:
        nums = [int(n) for n in re.findall(r"\d+", sentence)]
        if choice := CHOICE.search(sentence):
            a, b, low, high = (int(choice[i]) for i in (1, 2, 4, 5))
            sign = -1 if choice[3] == "given away" else 1
            fits = [n for n in (a, b) if low <= value + sign * n <= high]
            assert len(fits) == 1 and a != b, sentence  # exactly one candidate meets the rule
            value, right = value + sign * fits[0], fits[0]
        elif "more" in sentence:
            value += nums[0]
        elif "given away" in sentence:
            value -= nums[0]
        elif "doubles" in sentence:
            value *= 2
    return value, right


@pytest.mark.parametrize("level", range(1, MAX_FORK_LEVEL + 1))
def test_one_choice_whose_rule_picks_exactly_one_candidate_and_extras_say_which(level):
    others_above = 0
    records = generate_fork(level, 200, seed=level)
    for record in records:
        assert record.question.count(" or ") == 1
        assert record.question.count(". Then ") == level + 1
        answer, right = answer_from_question(record.question)
        assert str(answer) == record.answer and right == record.extras["right"]
        a, b = record.extras["candidates"]
        assert right in (a, b) and CHOICE.search(record.question).group(1, 2) == (str(a), str(b))
        choice = CHOICE.search(record.question)
        other = b if right == a else a
        others_above += (other > right) == (choice[3] == "added")
    assert 0.3 < others_above / len(records) < 0.7  # the trap lies above and below the range


def test_neither_the_larger_nor_the_first_amount_is_a_rule():
    records = generate_fork((1, 2, 3), 3000, seed=0)
    larger = sum(r.extras["right"] == max(r.extras["candidates"]) for r in records)
    first = sum(r.extras["right"] == r.extras["candidates"][0] for r in records)
    assert 0.4 < larger / len(records) < 0.6 and 0.45 < first / len(records) < 0.55


@pytest.mark.parametrize("level", range(1, MAX_FORK_LEVEL + 1))
def test_teacher_traces_validate_end_in_the_gold_answer_and_plain_has_the_same_lines(level):
    for record in generate_fork(level, 150, seed=level):
        trace, plain = record.extras["trajectory"], record.extras["trajectory_plain"]
        assert validate(trace, "strict") == [] and validate(plain, "strict") == []
        assert normalize(trace)[1] == []
        assert extract_final_answer(trace) == extract_final_answer(plain) == record.answer
        assert "<" not in plain and int(record.answer) >= 0

        def lines(text: str) -> list[str]:
            return [line for line in strip_tags(text).splitlines() if line.strip()]

        assert lines(trace) == lines(plain)  # the teachers differ only in structure


def test_block_share_is_a_coin_apart_from_the_content():
    records = generate_fork((1, 2, 3), 1500, seed=2)
    with_block = sum("<Parallel>" in r.extras["trajectory"] for r in records) / len(records)
    assert 0.4 <= with_block <= 0.6
    # the same content comes blocked and unblocked: explorations in both layouts
    explored = [r for r in records if "Only " in r.extras["trajectory"]]
    blocked = sum(any("Only " in b.summary.text for b in parse(r.extras["trajectory"]).blocks)
                  for r in explored)
    assert abs(blocked / len(explored) - P_BLOCK) < 0.06


def test_every_slip_is_caught_and_fixed_by_the_check():
    records = generate_fork((1, 2, 3), 1500, seed=4)
    slips = [r for r in records if r.extras["slip"]]
    verified = [r for r in records if "check out" in r.extras["trajectory"] or r.extras["slip"]]
    assert abs(len(verified) / len(records) - VERIFY) < 0.05
    assert abs(len(slips) / len(verified) - SLIP) < 0.06
    for record in records:
        plain = record.extras["trajectory_plain"].splitlines()
        fixed = re.fullmatch(r"So it is (\d+), not (\d+)\.", plain[-2])
        assert bool(fixed) == record.extras["slip"]
        if fixed:
            right, wrong = fixed[1], fixed[2]
            assert right == record.answer and 1 <= abs(int(right) - int(wrong)) <= 2
            first, checks = plain[-5], plain[-4:-2]  # the slipped line, then the two re-checks
            assert first.endswith(f"={wrong}") and all(c.endswith(f"={right}") or
                                                       c.startswith(f"{right}+") for c in checks)


def test_from_spec_single_and_mixed_fork_levels_and_errors():
    assert from_spec("synthetic:fork2:5:3") == generate_fork(2, 5, seed=3)
    mixed = from_spec("synthetic:fork1-3/plain:9:0")
    assert [r.extras["level"] for r in mixed] == ["fork1", "fork2", "fork3"] * 3
    assert [r.extras["completion"] for r in mixed] == [r.extras["trajectory_plain"] for r in mixed]
    assert mixed[::3] == [dict.__setitem__(r.extras, "completion", r.extras["trajectory_plain"])
                          or r for r in generate_fork(1, 3, seed=0)]
    for bad in ("synthetic:fork9:4", "synthetic:fork3-1:4", "synthetic:fork0-2:4",
                "synthetic:fork:4", "synthetic:fork1-x:4"):
        with pytest.raises(ConfigError, match="forkA-B"):
            from_spec(bad)
