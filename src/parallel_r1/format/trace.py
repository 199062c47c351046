"""The typed tree of one response: main text, blocks with their paths and summaries, stray tags.

Every node records `start`/`end`, character offsets into the original text (end exclusive), and the
top-level nodes of a `Trace` tile the text exactly, so `render(trace) == trace.text`.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from parallel_r1.format.tags import (
    PARALLEL_CLOSE,
    PARALLEL_OPEN,
    PATH_CLOSE,
    PATH_OPEN,
    SUMMARY_CLOSE,
    SUMMARY_OPEN,
)

# Characters that render as nothing but are neither whitespace nor format (Cf) characters:
# Hangul fillers and the blank braille pattern.
_INVISIBLE = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def has_content(text: str) -> bool:
    """True when `text` holds a visible character: not whitespace, not a format character
    (Unicode category Cf: zero-width space, joiners, word joiner, BOM, ...), not a filler.

    What strict validation means by a path or summary "holding text": a path of `\u200b` is
    empty (issue #11).
    """
    return any(not ch.isspace() and ch not in _INVISIBLE and unicodedata.category(ch) != "Cf"
               for ch in text)


@dataclass(frozen=True)
class Text:
    """Plain text: `text == original[start:end]`."""

    start: int
    end: int
    text: str


@dataclass(frozen=True)
class StrayTag:
    """A tag where the format does not allow one (kept verbatim so rendering stays exact)."""

    start: int
    end: int
    tag: str


@dataclass(frozen=True)
class PathNode:
    """`<Path>text</Path>`; `start` is the offset of `<Path>`, `text` the inner text.

    An unclosed path (`closed=False`) runs to the end of the input, as a path cut by EOS would.
    """

    start: int
    end: int
    text: str
    closed: bool

    @property
    def text_start(self) -> int:
        """Offset of the first character of the inner text."""
        return self.start + len(PATH_OPEN)


@dataclass(frozen=True)
class Summary:
    """`<Summary>text</Summary>` right after a block; `closed=False` if it runs to the end."""

    start: int
    end: int
    text: str
    closed: bool

    @property
    def text_start(self) -> int:
        """Offset of the first character of the inner text."""
        return self.start + len(SUMMARY_OPEN)


Gap = Text | StrayTag


@dataclass(frozen=True)
class Block:
    """`<Parallel>` paths `</Parallel>` join `<Summary>…</Summary>`.

    `start` is the offset of `<Parallel>` and `end` the end of the whole node (after the summary
    when there is one). `gaps` are whatever sits inside the block but outside its paths (whitespace,
    stray text, stray tags), in order; `join` is the whitespace between `</Parallel>` and
    `<Summary>` ("" when there is no summary). An unclosed block runs to the end of the input.
    """

    start: int
    end: int
    paths: tuple[PathNode, ...]
    closed: bool
    join: str = ""
    summary: Summary | None = None
    gaps: tuple[Gap, ...] = ()

    @property
    def num_paths(self) -> int:
        """Number of paths, closed or not."""
        return len(self.paths)

    @property
    def num_closed_paths(self) -> int:
        """Number of paths ended by `</Path>`."""
        return sum(p.closed for p in self.paths)

    @property
    def children(self) -> tuple[PathNode | Text | StrayTag, ...]:
        """Paths and gaps merged in text order."""
        return tuple(sorted((*self.paths, *self.gaps), key=lambda n: n.start))

    @property
    def body_end(self) -> int:
        """Offset just after `</Parallel>` (or after the last child of an unclosed block)."""
        if self.summary is not None:
            return self.summary.start - len(self.join)
        return self.end


Node = Text | Block | StrayTag


@dataclass(frozen=True)
class Trace:
    """A parsed response: the original `text` and its top-level `nodes` in order."""

    text: str
    nodes: tuple[Node, ...]

    @property
    def blocks(self) -> tuple[Block, ...]:
        """The parallel blocks, in order."""
        return tuple(n for n in self.nodes if isinstance(n, Block))

    @property
    def num_blocks(self) -> int:
        """Number of parallel blocks."""
        return len(self.blocks)

    @property
    def stray_tags(self) -> tuple[StrayTag, ...]:
        """Stray tags at the top level (outside every block)."""
        return tuple(n for n in self.nodes if isinstance(n, StrayTag))

    @property
    def main_text(self) -> str:
        """The top-level text outside blocks, summaries and stray tags, concatenated."""
        return "".join(n.text for n in self.nodes if isinstance(n, Text))


def render_node(node: Node | PathNode | Summary) -> str:
    """The exact source text of one node."""
    if isinstance(node, Text):
        return node.text
    if isinstance(node, StrayTag):
        return node.tag
    if isinstance(node, PathNode):
        return PATH_OPEN + node.text + (PATH_CLOSE if node.closed else "")
    if isinstance(node, Summary):
        return SUMMARY_OPEN + node.text + (SUMMARY_CLOSE if node.closed else "")
    body = "".join(render_node(child) for child in node.children)
    out = PARALLEL_OPEN + body + (PARALLEL_CLOSE if node.closed else "")
    if node.summary is not None:
        out += node.join + render_node(node.summary)
    return out


def render(trace: Trace) -> str:
    """Serialise a trace back to text from its nodes; `render(parse(t)) == t` for every `t`."""
    return "".join(render_node(node) for node in trace.nodes)
