"""Prompt templates: ours by name, the paper's (or anyone's) from a file with a placeholder."""

from __future__ import annotations

import json

import pytest

from parallel_r1.data.templates import TEMPLATES, get_template, prepare, render_prompt
from parallel_r1.errors import ConfigError
from parallel_r1.format.tags import TAGS

PROBLEM = "Find $x$ if $\\frac{x}{2} = {3}$."  # braces must survive


def test_our_templates_by_name():
    assert TEMPLATES.names() == ["baseline", "none", "parallel"]
    parallel = render_prompt("parallel", PROBLEM)
    assert all(tag in parallel for tag in TAGS) and "Final Answer:" in parallel
    assert parallel.endswith(f"Problem: {PROBLEM}")
    baseline = render_prompt("baseline", PROBLEM)
    assert baseline.startswith(PROBLEM) and "Final Answer:" in baseline
    assert not any(tag in baseline for tag in TAGS)
    assert render_prompt("none", PROBLEM) == PROBLEM


def test_ours_are_not_the_papers_words(sample_data):
    paper = json.loads((sample_data / "prompt_templates.json").read_text())
    ours = render_prompt("parallel", "P")
    for entry in paper.values():
        lines = [line for line in entry["template"].splitlines() if len(line) > 30]
        assert not any(line in ours for line in lines)


def test_the_papers_files_render_like_str_format(sample_data, tmp_path):
    paper = json.loads((sample_data / "prompt_templates.json").read_text())
    assert len(paper) == 5
    for i, entry in enumerate(paper.values()):
        path = tmp_path / f"t{i}.txt"
        path.write_text(entry["template"])
        assert render_prompt(path, "2+2?") == entry["template"].format(Problem="2+2?")


def test_bad_templates_say_what_to_do(tmp_path):
    with pytest.raises(ConfigError, match="unknown template 'paralel'; known: baseline, none, "
                                          "parallel"):
        get_template("paralel")
    no_slot = tmp_path / "t.txt"
    no_slot.write_text("Solve it.")
    with pytest.raises(ConfigError, match="needs a {problem}"):
        get_template(no_slot)
    assert render_prompt("Q: {problem}\nA:", "1+1") == "Q: 1+1\nA:"


def test_prepare_writes_rendered_prompts(sample_data, tmp_path):
    out = tmp_path / "p.jsonl"
    metrics = prepare("aime24", out, template="baseline", limit=5, local_dir=sample_data)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert metrics["num_rows"] == 5 and len(rows) == 5
    assert rows[0]["prompt"] == render_prompt("baseline", rows[0]["question"])
    assert rows[0]["eval_repeats"] == 16
