"""Format checks by name: "strict" (ours) and "paper" (the original lenient checker, SPEC §1.3).

Each check maps a response to a list of `Issue`s; a response is valid when the list is empty.
Both run in time linear in the text plus the number of issues (positions come from one table of
line starts, not from recounting newlines for every issue).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass

from parallel_r1.errors import ConfigError
from parallel_r1.format.answer import find_answer
from parallel_r1.format.parse import find_tags, parse
from parallel_r1.format.tags import (
    ANSWER_PREFIX,
    PARALLEL_CLOSE,
    PARALLEL_OPEN,
    PATH_CLOSE,
    PATH_OPEN,
    SUMMARY_OPEN,
)
from parallel_r1.format.trace import Block, StrayTag


@dataclass(frozen=True)
class Issue:
    """One format problem: a stable `code`, a message naming what and where, and its offset."""

    code: str
    message: str
    offset: int


def where(text: str, offset: int) -> str:
    """Human position of `offset` in `text`: "line L:C (char O)", lines and columns 1-based."""
    return Locator(text).where(offset)


class Locator:
    """Line/column of offsets in one text; the line-start table is built once, on first use."""

    def __init__(self, text: str):
        self.text = text
        self._starts: list[int] | None = None

    def where(self, offset: int) -> str:
        if self._starts is None:
            starts, i = [0], self.text.find("\n")
            while i >= 0:
                starts.append(i + 1)
                i = self.text.find("\n", i + 1)
            self._starts = starts
        line = bisect.bisect_right(self._starts, offset) - 1
        return f"line {line + 1}:{offset - self._starts[line] + 1} (char {offset})"


def _issue(loc: Locator, code: str, what: str, offset: int) -> Issue:
    return Issue(code, f"{what} at {loc.where(offset)}", offset)


def check_paper(text: str) -> list[Issue]:
    """The paper's lenient checker (`check_parallel_thinking_format`), same verdict on every input.

    Tags are read in order with a stack: `</Path>` and `</Parallel>` must match the top; a block
    needs >= 2 closed paths; `<Summary>` must come after `</Parallel>` (the next tag);
    `</Summary>` is ignored; balanced nesting passes; text without tags is valid; paths and
    summaries may hold nothing (`<Path></Path>` counts as a closed path: the paper's rule, kept
    here; the strict rule refuses it). Error handling matches the original: an error never pops
    the stack, and checking goes on.
    """
    issues: list[Issue] = []
    loc = Locator(text)
    stack: list[tuple[str, int]] = []  # (tag, offset) of open Parallel/Path tags
    path_counts: list[int] = []  # closed paths of each open <Parallel>, innermost last
    summary_expected, num_summaries, last_close = False, 0, 0
    for offset, tag in find_tags(text):
        top = stack[-1][0] if stack else None
        if tag in (PARALLEL_OPEN, PATH_OPEN):
            stack.append((tag, offset))
            if tag == PARALLEL_OPEN:
                path_counts.append(0)
                summary_expected = False
        elif tag == PATH_CLOSE:
            if top != PATH_OPEN:
                what = f"{tag} while the innermost open tag is {top or 'none'}"
                issues.append(_issue(loc, "unexpected_close_path", what, offset))
            else:
                stack.pop()
                if path_counts:
                    path_counts[-1] += 1
        elif tag == PARALLEL_CLOSE:
            if top != PARALLEL_OPEN:
                what = f"{tag} while the innermost open tag is {top or 'none'}"
                issues.append(_issue(loc, "unexpected_close_parallel", what, offset))
            else:
                stack.pop()
                count = path_counts.pop()
                if count < 2:
                    what = f"block closed with {count} closed path(s), needs 2"
                    issues.append(_issue(loc, "too_few_paths", what, offset))
                summary_expected, last_close = True, offset
        elif tag == SUMMARY_OPEN:
            if not summary_expected:
                what = f"{tag} not right after a {PARALLEL_CLOSE}"
                issues.append(_issue(loc, "unexpected_summary", what, offset))
            summary_expected = False
            num_summaries += 1
    return issues + _paper_final(loc, stack, summary_expected, num_summaries, last_close)


def _paper_final(loc: Locator, stack: list[tuple[str, int]], summary_expected: bool,
                 num_summaries: int, last_close: int) -> list[Issue]:
    issues, text = [], loc.text
    for tag, offset in stack:
        issues.append(_issue(loc, "unclosed_tag", f"{tag} never closed", offset))
    if summary_expected:
        what = f"no {SUMMARY_OPEN} after the last {PARALLEL_CLOSE}"
        issues.append(_issue(loc, "missing_summary", what, last_close))
    num_closes = text.count(PARALLEL_CLOSE)
    if num_summaries != num_closes:
        what = f"{num_summaries} {SUMMARY_OPEN} for {num_closes} {PARALLEL_CLOSE} in the text"
        issues.append(_issue(loc, "summary_count_mismatch", what, len(text)))
    return issues


def check_strict(text: str) -> list[Issue]:
    """Our strict rule: the canonical layout of SPEC §1.2 and an answer.

    Every block is closed, has >= 2 closed paths with only whitespace between them, and is
    followed (after whitespace only) by a closed summary; paths and summaries hold text (not only
    whitespace); no tag appears anywhere else, inside paths and summaries included (so no
    nesting); and the response has an answer where the answer contract reads one (main text or a
    summary: a `Final Answer:` line or a box; see `parallel_r1.rewards.contract`).
    """
    trace = parse(text)
    loc = Locator(text)
    issues: list[Issue] = []
    for node in trace.nodes:
        if isinstance(node, StrayTag):
            issues.append(_issue(loc, "stray_tag", f"{node.tag} outside any block", node.start))
        elif isinstance(node, Block):
            issues.extend(_check_block(loc, node))
    if find_answer(text, "strict", trace=trace) is None:
        what = (f"no answer: no '{ANSWER_PREFIX}' line or \\boxed{{}} in the main text or a "
                "summary")
        issues.append(_issue(loc, "missing_answer", what, len(text)))
    return sorted(issues, key=lambda issue: issue.offset)


def _check_block(loc: Locator, block: Block) -> list[Issue]:
    issues = []
    for gap in block.gaps:
        if isinstance(gap, StrayTag):
            code = "nested_block" if gap.tag == PARALLEL_OPEN else "stray_tag"
            what = f"{gap.tag} inside a block, outside its paths"
            issues.append(_issue(loc, code, what, gap.start))
        elif gap.text.strip():
            what = f"text {gap.text.strip()[:30]!r} inside a block, outside its paths"
            issues.append(_issue(loc, "text_between_paths", what, gap.start))
    for path in block.paths:
        if not path.closed:
            issues.append(_issue(loc, "unclosed_path", f"{PATH_OPEN} never closed", path.start))
        elif not path.text.strip():
            issues.append(_issue(loc, "empty_path", f"{PATH_OPEN} holds no text", path.start))
        issues.extend(_tags_inside(loc, path.text, path.text_start, "path"))
    if not block.closed:
        issues.append(_issue(loc, "unclosed_block", f"{PARALLEL_OPEN} never closed", block.start))
        return issues
    if block.num_closed_paths < 2:
        what = f"block has {block.num_closed_paths} closed path(s), needs 2"
        issues.append(_issue(loc, "too_few_paths", what, block.start))
    if block.summary is None:
        what = f"no {SUMMARY_OPEN} right after {PARALLEL_CLOSE} (only whitespace may separate them)"
        issues.append(_issue(loc, "missing_summary", what, block.body_end))
        return issues
    if not block.summary.closed:
        what = f"{SUMMARY_OPEN} never closed"
        issues.append(_issue(loc, "unclosed_summary", what, block.summary.start))
    elif not block.summary.text.strip():
        what = f"{SUMMARY_OPEN} holds no text"
        issues.append(_issue(loc, "empty_summary", what, block.summary.start))
    issues.extend(_tags_inside(loc, block.summary.text, block.summary.text_start, "summary"))
    return issues


def _tags_inside(loc: Locator, inner: str, inner_start: int, where_name: str) -> list[Issue]:
    issues = []
    for offset, tag in find_tags(inner):
        code = "nested_block" if tag == PARALLEL_OPEN else f"tag_in_{where_name}"
        issues.append(_issue(loc, code, f"{tag} inside a {where_name}", inner_start + offset))
    return issues


MODES: dict[str, Callable[[str], list[Issue]]] = {"strict": check_strict, "paper": check_paper}


def validate(text: str, mode: str = "strict") -> list[Issue]:
    """Check `text` against the format rule named `mode`.

    Args:
        text: one response, decoded with its tags.
        mode: "strict" (ours, see `check_strict`) or "paper" (SPEC §1.3, see `check_paper`).

    Returns:
        The issues in text order; empty when the text is valid.

    Raises:
        ConfigError: `mode` is not a known mode (the message lists them).
    """
    return _check_fn(mode)(text)


def is_valid(text: str, mode: str = "strict") -> bool:
    """True when `validate(text, mode)` finds no issue. Raises ConfigError on an unknown mode."""
    return not validate(text, mode)


def _check_fn(mode: str) -> Callable[[str], list[Issue]]:
    if mode not in MODES:
        known = ", ".join(sorted(MODES))
        raise ConfigError(f"unknown format mode '{mode}'; known: {known}", field="mode")
    return MODES[mode]
