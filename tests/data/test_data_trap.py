"""The trap family of the synthetic task and the data spec parser (data.trap, from_spec)."""

from __future__ import annotations

import re

import pytest

from parallel_r1.data.synthetic import MAX_LEVEL, from_spec, generate
from parallel_r1.data.trap import (
    EXPLORE,
    MAX_TRAP_LEVEL,
    VERIFY,
    generate_trap,
    make_trap_problem,
    write_trap_trace,
)
from parallel_r1.errors import ConfigError
from parallel_r1.eval.analysis import block_roles
from parallel_r1.format.normalize import normalize
from parallel_r1.format.parse import parse
from parallel_r1.format.validate import validate
from parallel_r1.rewards.answer import extract_final_answer, strip_tags


def test_deterministic_and_prefix_stable():
    assert generate_trap(2, 40, seed=3) == generate_trap(2, 40, seed=3)
    assert generate_trap(2, 10, seed=3) == generate_trap(2, 40, seed=3)[:10]
    assert generate_trap(2, 20, seed=3) != generate_trap(2, 20, seed=4)
    assert len({r.question for r in generate_trap(1, 300, seed=0)}) > 250


@pytest.mark.parametrize("level", range(1, MAX_TRAP_LEVEL + 1))
def test_traces_valid_canonical_correct_and_same_content_with_or_without_blocks(level):
    for record in generate_trap(level, 150, seed=level):
        trace, plain = record.extras["trajectory"], record.extras["trajectory_plain"]
        assert validate(trace, "strict") == [] and validate(plain, "strict") == []
        assert normalize(trace)[1] == []
        assert extract_final_answer(trace) == extract_final_answer(plain) == record.answer
        assert "<" not in plain and int(record.answer) >= 1

        def lines(text: str) -> list[str]:
            return [line for line in strip_tags(text).splitlines() if line.strip()]

        assert lines(trace) == lines(plain)  # the teachers differ only in structure


def answer_from_question(question: str) -> int:
    sentences = question.split(". ")
    bags, each = map(int, re.findall(r"\d+", sentences[0])[:2])
    value = bags * each
    for sentence in sentences[1:]:
        nums = [int(n) for n in re.findall(r"\d+", sentence)]
        if " or " in sentence:  # the choice: exactly one amount leaves an even count
            sign = -1 if "given away" in sentence else 1
            fits = [n for n in nums if (value + sign * n) % 2 == 0]
            assert len(fits) == 1, sentence
            value += sign * fits[0]
        elif "more" in sentence:
            value += nums[0]
        elif "given away" in sentence:
            value -= nums[0]
        elif "doubles" in sentence:
            value *= 2
    return value


def test_answers_follow_the_question_and_each_problem_has_one_trap():
    for level in (1, 3, 5):
        for record in generate_trap(level, 200, seed=11):
            assert str(answer_from_question(record.question)) == record.answer, record.question
            assert record.question.count(" or ") == 1
            assert record.question.count(". Then ") == level + 1


def test_blocks_are_classified_as_the_teacher_meant_and_the_mix_is_as_documented():
    explore = verify = 0
    roles_of = {"even, so": [], "check out": []}
    count = 400
    for index in range(count):
        problem = make_trap_problem(0, 2, index)
        trace = write_trap_trace(problem)
        kinds = [b.summary.text for b in parse(trace).blocks]
        for kind, role in zip(kinds, block_roles(trace)):
            for key in roles_of:
                if key in kind:
                    roles_of[key].append(role)
        explore += any("even, so" in k for k in kinds)
        verify += any("check out" in k for k in kinds)
    assert set(roles_of["check out"]) == {"verification"}
    assert roles_of["even, so"].count("exploration") >= 0.95 * len(roles_of["even, so"])
    assert abs(explore / count - EXPLORE) < 0.08 and abs(verify / count - VERIFY) < 0.08


def test_from_spec_levels_variants_and_errors():
    assert from_spec("synthetic:2:5:3") == generate(2, 5, seed=3)  # today's levels unchanged
    assert from_spec("synthetic:2:5") == generate(2, 5, seed=0)
    plain = from_spec("synthetic:trap1/plain:4:0")
    assert [r.extras["completion"] for r in plain] == [
        r.extras["trajectory_plain"] for r in generate_trap(1, 4, seed=0)]
    assert "completion" not in from_spec("synthetic:trap1:4:0")[0].extras
    for bad in ("synthetic:x:4", "synthetic:trap9:4", f"synthetic:{MAX_LEVEL + 1}:3",
                "synthetic:1/fancy:4", "synthetic:1", "synthetic:1:2:3:4"):
        with pytest.raises(ConfigError, match="synthetic:LEVEL"):
            from_spec(bad)
