"""Parallel primitives: block count, the paper's format check, self-BLEU, efficiency gain."""

import itertools
import sys

import pytest

from parallel_r1.rewards.parallel import (
    efficiency_gain,
    has_block,
    is_format_valid,
    num_blocks,
    self_bleu,
)

BLOCK = "<Parallel><Path>a b c d</Path><Path>e f</Path></Parallel>\n<Summary>g h</Summary>"


def test_counts_and_format():
    assert num_blocks("x") == 0 and not has_block("x")
    assert num_blocks(BLOCK * 2) == 2 and has_block(BLOCK)
    assert num_blocks("<Parallel>") == 1  # counted even when malformed
    assert is_format_valid("no tags at all")
    assert is_format_valid(BLOCK + " Final Answer: 1")
    assert not is_format_valid("<Parallel><Path>a</Path></Parallel>\n<Summary>s</Summary>")
    assert not is_format_valid("<Parallel><Path>a</Path><Path>b</Path></Parallel> no summary")
    assert is_format_valid(BLOCK.replace("</Summary>", ""))  # an unclosed summary passes


def test_self_bleu_matches_sacrebleu_pairs():
    import sacrebleu

    paths = ["the cat sat on the mat", "the cat sat on a mat", "a dog ran far away"]
    text = "<Parallel>" + "".join(f"<Path>{p}</Path>" for p in paths) + "</Parallel>"
    pairs = list(itertools.combinations(paths, 2))
    expected = sum(sacrebleu.sentence_bleu(p, [q]).score for p, q in pairs) / 100 / len(pairs)
    assert self_bleu(text) == pytest.approx(expected)
    assert self_bleu("no block") == 1.0
    assert self_bleu("<Parallel><Path>one</Path></Parallel>") == 1.0
    two = text + "\n" + "<Parallel><Path>x y z w</Path><Path>x y z w</Path></Parallel>"
    assert self_bleu(two) == pytest.approx((expected + 1.0) / 2)


def test_self_bleu_names_the_missing_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "sacrebleu", None)
    with pytest.raises(ImportError, match=r"parallel-r1\[bleu\]"):
        self_bleu("<Parallel><Path>a</Path><Path>b</Path></Parallel>")


def test_efficiency_gain():
    text = "one two " + BLOCK + " three"
    gain, parts = efficiency_gain(text)
    total = 2 + 4 + 2 + 2 + 1
    traversed = 2 + 4 + 2 + 1  # outside (incl. the summary after the block) + longest path
    assert parts["total_tokens"] == total and parts["traversed_tokens"] == traversed
    assert gain == pytest.approx((total - traversed) / total)
    assert efficiency_gain("")[0] == 0.0
    assert efficiency_gain("plain words only")[0] == 0.0
    assert efficiency_gain("<Parallel>no paths here</Parallel>")[0] == 0.0  # counted in full
    inside = "<Parallel><Path>a b</Path><Path>c</Path><Summary>d</Summary></Parallel>"
    assert efficiency_gain(inside)[1]["traversed_tokens"] == 3  # longest path + inner summary
    assert efficiency_gain("<Path>a</Path><Path>b</Path>")[1]["total_tokens"] == 2  # no merging


def test_block_scan_equals_the_papers_regexes():
    import re

    from hypothesis import given, settings
    from hypothesis import strategies as st

    from parallel_r1.rewards.parallel import _blocks, _outside_blocks, _paths

    block_re = re.compile(r"<Parallel>(.*?)</Parallel>", re.DOTALL)
    path_re = re.compile(r"<Path>(.*?)</Path>", re.DOTALL)
    pieces = st.sampled_from(["<Parallel>", "</Parallel>", "<Path>", "</Path>", "a", "\n", " "])

    @settings(max_examples=300, deadline=None)
    @given(st.lists(pieces, max_size=16).map("".join))
    def check(text):
        assert _blocks(text) == block_re.findall(text)
        assert _outside_blocks(text) == block_re.sub(" ", text)
        for block in _blocks(text):
            assert _paths(block) == path_re.findall(block)

    check()


def test_self_bleu_pairs_at_most_the_first_paths():
    from parallel_r1.rewards.parallel import MAX_BLEU_PATHS, self_bleu

    many = "<Parallel>" + "".join(f"<Path>w{i} x</Path>" for i in range(5000)) + "</Parallel>"
    first = "<Parallel>" + "".join(f"<Path>w{i} x</Path>" for i in range(MAX_BLEU_PATHS))
    assert self_bleu(many) == self_bleu(first + "</Parallel>")
