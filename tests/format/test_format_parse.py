"""parse / render: hand cases for the engine's reading of tags, and the identity property."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parallel_r1.errors import FormatError
from parallel_r1.format import TAGS, Block, PathNode, StrayTag, Summary, Text, parse, render
from parallel_r1.format.trace import render_node

CANONICAL = ("Let x be 3. <Parallel><Path>\nA: x+1=4\n</Path><Path>B: 4</Path></Parallel>\n"
             "<Summary>\nBoth give 4.\n</Summary>\n\nFinal Answer: 4")


def _check_tiling(trace) -> None:
    """Top-level nodes tile the text and every node's offsets match its source."""
    pos = 0
    for node in trace.nodes:
        assert node.start == pos and node.end > node.start
        pos = node.end
    assert pos == len(trace.text)
    for block in trace.blocks:
        assert trace.text[block.start:block.end].startswith("<Parallel>")
        for path in block.paths:
            assert trace.text[path.start:path.end] == render_node(path)
            assert trace.text[path.text_start:path.text_start + len(path.text)] == path.text
        if block.summary is not None:
            s = block.summary
            assert trace.text[s.start:s.end] == render_node(s)
            assert trace.text[s.text_start:s.text_start + len(s.text)] == s.text


def test_canonical_block():
    trace = parse(CANONICAL)
    assert render(trace) == CANONICAL
    (block,) = trace.blocks
    assert block.closed and block.num_paths == 2 and block.num_closed_paths == 2
    assert [p.text for p in block.paths] == ["\nA: x+1=4\n", "B: 4"]
    assert block.join == "\n"
    summary = block.summary
    assert summary == Summary(summary.start, summary.end, "\nBoth give 4.\n", True)
    assert block.gaps == ()
    assert CANONICAL[block.start:].startswith("<Parallel>")
    assert CANONICAL[block.end:] == "\n\nFinal Answer: 4"
    assert CANONICAL[block.body_end - len("</Parallel>"):block.body_end] == "</Parallel>"
    assert isinstance(trace.nodes[0], Text) and trace.nodes[0].text == "Let x be 3. "
    _check_tiling(trace)


def test_no_tags_is_one_text_node():
    assert parse("just text").nodes == (Text(0, 9, "just text"),)
    assert parse("").nodes == ()


def test_whitespace_gaps_kept_in_block():
    text = "<Parallel>\n<Path>a</Path>\n<Path>b</Path>\n</Parallel>  \n<Summary>s</Summary>"
    (block,) = parse(text).blocks
    assert [g.text for g in block.gaps] == ["\n", "\n", "\n"]
    assert block.join == "  \n"
    assert render(parse(text)) == text


def test_parallel_inside_path_is_plain_text():
    text = "<Parallel><Path>x <Parallel> y</Path><Path>z</Path></Parallel><Summary>s</Summary>"
    trace = parse(text)
    (block,) = trace.blocks
    assert block.paths[0].text == "x <Parallel> y"
    assert block.num_paths == 2 and block.summary is not None


def test_every_tag_inside_a_path_is_text_until_close_path():
    text = "<Parallel><Path>a</Parallel><Summary>b</Path></Parallel>"
    (block,) = parse(text).blocks
    assert block.paths[0].text == "a</Parallel><Summary>b"
    assert block.closed and block.summary is None


def test_unclosed_path_runs_to_end():
    text = "pre <Parallel><Path>one</Path><Path>two, cut"
    (block,) = parse(text).blocks
    assert not block.closed and block.end == len(text)
    assert block.paths[1] == PathNode(text.index("<Path>two"), len(text), "two, cut", False)
    assert render(parse(text)) == text


def test_unclosed_block_keeps_trailing_text_as_gap():
    text = "<Parallel><Path>a</Path> tail"
    (block,) = parse(text).blocks
    assert not block.closed and block.gaps == (Text(text.index(" tail"), len(text), " tail"),)


def test_stray_tags_in_block_and_at_top():
    text = "</Path>x<Parallel><Summary><Parallel><Path>a</Path></Parallel>y<Summary>z</Summary>"
    trace = parse(text)
    assert [n.tag for n in trace.stray_tags] == ["</Path>", "<Summary>", "</Summary>"]
    (block,) = trace.blocks
    assert [g.tag for g in block.gaps if isinstance(g, StrayTag)] == ["<Summary>", "<Parallel>"]
    assert block.summary is None and block.join == ""
    assert render(trace) == text


def test_summary_needs_only_whitespace_before_it():
    text = "<Parallel><Path>a</Path></Parallel> \n\t<Summary>s"
    (block,) = parse(text).blocks
    assert block.join == " \n\t"
    assert block.summary == Summary(text.index("<Summary>"), len(text), "s", False)


def test_two_blocks_and_positions():
    one = "<Parallel><Path>a</Path><Path>b</Path></Parallel>\n<Summary>s</Summary>"
    text = "x" + one + "mid" + one + "end"
    trace = parse(text)
    assert [b.start for b in trace.blocks] == [1, 1 + len(one) + 3]
    assert trace.main_text == "xmidend"
    assert all(isinstance(b, Block) for b in trace.blocks)
    _check_tiling(trace)


# Text built from tags, near-tags and whitespace, so that every branch of the parser is hit.
_PIECES = st.sampled_from(
    [*TAGS, "a", "x y", " ", "\n", "\t", "<", ">", "</", "<Path", "Final Answer: 3"])
_MIXED = st.lists(_PIECES, max_size=40).map("".join)


@settings(max_examples=400, deadline=None)
@given(st.one_of(_MIXED, st.text(max_size=60)))
def test_render_parse_identity(text):
    try:
        trace = parse(text)
    except FormatError:  # the only error parse may raise (it raises none today)
        return
    assert render(trace) == text
    _check_tiling(trace)


@pytest.mark.parametrize(
    "text", ["<Parallel>", "</Parallel>", "<Summary>", "<Path>", "</Path></Path>"])
def test_lone_tags(text):
    assert render(parse(text)) == text
