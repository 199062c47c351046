"""Text -> Trace, following the rollout engine's reading of the tags. Never raises.

Rules (the same as generation, see SPEC §2.4):
- a block opens at `<Parallel>` in main text and closes at the next `</Parallel>` outside a path;
- inside a block, `<Path>` opens a path that runs to the next `</Path>`; every tag inside a path,
  `<Parallel>` included, is plain path text (no nesting); anything else inside the block but outside
  its paths is kept as a gap (text or stray tag);
- the summary is a `<Summary>` that follows `</Parallel>` after optional whitespace (the join); it
  runs to the next `</Summary>`;
- a path, block or summary with no closing tag runs to the end of the text (as if cut by EOS);
- any other tag is a `StrayTag`.
"""

from __future__ import annotations

import re

from parallel_r1.format.tags import (
    PARALLEL_CLOSE,
    PARALLEL_OPEN,
    PATH_CLOSE,
    PATH_OPEN,
    SUMMARY_CLOSE,
    SUMMARY_OPEN,
    TAGS,
)
from parallel_r1.format.trace import Block, Gap, Node, PathNode, StrayTag, Summary, Text, Trace

# A tag holds one "<", at its start, so regex matches can never overlap or hide one another.
TAG_RE = re.compile("|".join(re.escape(tag) for tag in TAGS))
_JOIN_RE = re.compile(r"\s*" + re.escape(SUMMARY_OPEN))

_Tags = list[tuple[int, str]]  # (offset, tag) in text order


def find_tags(text: str) -> _Tags:
    """All tag occurrences in `text` as (offset, tag), in order."""
    return [(m.start(), m.group()) for m in TAG_RE.finditer(text)]


def parse(text: str) -> Trace:
    """Parse a response into a `Trace`; every character lands in exactly one node.

    Args:
        text: any string (model output, teacher text, garbage).

    Returns:
        The trace; `render(parse(text)) == text` always holds.

    Raises:
        Nothing: malformed input becomes stray tags, gaps and unclosed nodes, which
        `validate` reports.
    """
    tags = find_tags(text)
    nodes: list[Node] = []
    pos, i = 0, 0
    while i < len(tags):
        start, tag = tags[i]
        if start > pos:
            nodes.append(Text(pos, start, text[pos:start]))
        if tag == PARALLEL_OPEN:
            block, i = _parse_block(text, tags, i)
            nodes.append(block)
            pos = block.end
        else:
            nodes.append(StrayTag(start, start + len(tag), tag))
            pos, i = start + len(tag), i + 1
    if pos < len(text):
        nodes.append(Text(pos, len(text), text[pos:]))
    return Trace(text=text, nodes=tuple(nodes))


def _find(tags: _Tags, i: int, wanted: str) -> int:
    """Index of the first `wanted` tag at or after index `i`, or len(tags)."""
    while i < len(tags) and tags[i][1] != wanted:
        i += 1
    return i


def _enclosed(text: str, tags: _Tags, i: int, open_tag: str, close_tag: str):
    """Read `open_tag … close_tag` whose opening tag is tags[i].

    Returns (inner_text, closed, end_offset, next_tag_index).
    """
    start = tags[i][0]
    inner_start = start + len(open_tag)
    k = _find(tags, i + 1, close_tag)
    if k == len(tags):
        return text[inner_start:], False, len(text), k
    close_at = tags[k][0]
    return text[inner_start:close_at], True, close_at + len(close_tag), k + 1


def _parse_block(text: str, tags: _Tags, i: int) -> tuple[Block, int]:
    """Parse the block whose `<Parallel>` is tags[i]; returns (block, index of the next tag)."""
    start = tags[i][0]
    pos, j = start + len(PARALLEL_OPEN), i + 1
    paths: list[PathNode] = []
    gaps: list[Gap] = []
    closed = False
    while j < len(tags) and not closed:
        at, tag = tags[j]
        if at > pos:
            gaps.append(Text(pos, at, text[pos:at]))
        if tag == PATH_OPEN:
            inner, is_closed, pos, j = _enclosed(text, tags, j, PATH_OPEN, PATH_CLOSE)
            paths.append(PathNode(at, pos, inner, is_closed))
            continue
        pos, j = at + len(tag), j + 1
        if tag == PARALLEL_CLOSE:
            closed = True
        else:
            gaps.append(StrayTag(at, pos, tag))
    if not closed:
        if pos < len(text):
            gaps.append(Text(pos, len(text), text[pos:]))
        return Block(start, len(text), tuple(paths), False, gaps=tuple(gaps)), j
    join, summary = "", None
    m = _JOIN_RE.match(text, pos)
    if m is not None:
        # The `<Summary>` matched here is the next tag, tags[j]: only whitespace lies between.
        join = text[pos:m.end() - len(SUMMARY_OPEN)]
        inner, is_closed, end, j = _enclosed(text, tags, j, SUMMARY_OPEN, SUMMARY_CLOSE)
        summary = Summary(m.end() - len(SUMMARY_OPEN), end, inner, is_closed)
        pos = end
    return Block(start, pos, tuple(paths), True, join, summary, tuple(gaps)), j
