"""stats: one response by hand, and the v2 SFT set's figures (SPEC §5.2) on real data."""

from __future__ import annotations

import json

import pytest

from parallel_r1.errors import ConfigError
from parallel_r1.format import is_valid, parse, response_stats, summarize

BLOCK3 = ("<Parallel><Path>aa</Path><Path>b c</Path><Path>dddd</Path></Parallel>\n"
          "<Summary>s</Summary>")


def test_response_stats_by_hand():
    text = "0123456789" + BLOCK3 + "<Parallel><Path>x</Path></Parallel>tail"
    stats = response_stats(text, count_tokens=lambda s: len(s.split()))
    assert stats.num_blocks == 2 and stats.paths_per_block == (3, 1)
    assert stats.path_chars == ((2, 3, 4), (1,))
    assert stats.path_tokens == ((1, 2, 1), (1,))
    assert stats.block_positions == (10 / len(text), (10 + len(BLOCK3)) / len(text))
    assert stats.has_valid_block and stats.num_chars == len(text)
    assert response_stats(parse(text)) == response_stats(text, None)


def test_no_valid_block():
    stats = response_stats("<Parallel><Path>a</Path><Path>b</Path></Parallel> no summary")
    assert stats.num_blocks == 1 and not stats.has_valid_block and stats.path_tokens is None
    assert response_stats("").block_positions == ()


def test_summarize_counts_and_examples():
    texts = ["Final Answer: 1", BLOCK3 + "\nFinal Answer: 2", "</Path>", "</Path></Path>"]
    summary = summarize(texts, "strict")
    assert summary.num_rows == 4 and summary.num_valid == 2 and summary.valid_share == 0.5
    assert summary.blocks_per_trace == {0: 3, 1: 1} and summary.paths_per_block == {3: 1}
    assert summary.issue_counts == {"stray_tag": 2, "missing_answer": 2}
    assert summary.issue_examples["stray_tag"][0] == 3
    report = summary.to_dict()
    assert report["blocks_per_trace"] == {"0": 3, "1": 1}
    # Commonest first, ties by code.
    assert [item["code"] for item in report["issues"]] == ["missing_answer", "stray_tag"]
    json.dumps(report)


def test_summarize_rejects_unknown_mode():
    with pytest.raises(ConfigError):
        summarize([], "nope")


@pytest.fixture(scope="module")
def trajectories(v2_rows):
    return [row["trajectory"] for row in v2_rows]


def test_v2_all_pass_paper_mode(trajectories):
    assert len(trajectories) == 341
    assert all(is_valid(t, "paper") for t in trajectories)


def test_v2_strict_mode(trajectories):
    # 3 real defects: words between paths ("First, <Path>"), text between </Parallel> and
    # <Summary>, and an unclosed summary that swallows the answer line. The answer contract reads
    # summaries, so that answer is found (no missing_answer), as the graders find it.
    summary = summarize(trajectories, "strict")
    assert summary.num_valid == 338
    assert summary.issue_counts == {"text_between_paths": 1, "missing_summary": 1, "stray_tag": 1,
                                    "unclosed_summary": 1}


def test_v2_stats_match_spec(trajectories):
    summary = summarize(trajectories, "paper")
    assert summary.blocks_per_trace == {0: 3, 1: 261, 2: 59, 3: 12, 4: 6}
    assert summary.paths_per_block == {2: 427, 3: 11, 4: 1}
    assert round(summary.total_chars / summary.num_rows) == 1232
