"""Teacher text -> canonical layout (SPEC §1.2, §5.2), with a record of every edit made.

Three clean-ups, each an `Edit` on the original text:
- tag spelling: `<parallel>`, `< Path >`, `</ SUMMARY>` ... become the exact tags, but only where
  a tag structure is meant (`_meant_as_tags`): a variant inside a closed path or summary is text
  (paths hold no tags), and elsewhere a variant must pair up with a closing or opening tag; a
  variant with spaces inside the brackets (`a < path > b` reads as a comparison) pairs only with
  another variant, never with an exact tag;
- tag whitespace: whitespace-only gaps inside a block (between `<Parallel>`/`<Path>`,
  `</Path>`/`<Path>` and `</Path>`/`</Parallel>`) are removed; the join before `<Summary>` is kept;
- the final answer: `$1,600.00` -> `1600` (dollar sign, thousands commas, an all-zero fraction and
  a trailing period go; an answer that is not a number after that is left alone).
"""

from __future__ import annotations

import bisect
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from parallel_r1.format.parse import find_tags, parse
from parallel_r1.format.tags import ANSWER_PREFIX, TAGS
from parallel_r1.format.trace import Text

# `(?:(/)\s*)?` instead of `(/?)\s*`: two adjacent `\s*` backtrack quadratically on a long run
# of spaces after a "<".
_SPELLING_RE = re.compile(r"<\s*(?:(/)\s*)?(parallel|path|summary)\s*>", re.IGNORECASE)
_CANONICAL = {tag.lower(): tag for tag in TAGS}
# Greedy value, stripped in code: a lazy value before `[ \t]*$` is quadratic on long lines.
_ANSWER_LINE_RE = re.compile(
    r"^[ \t]*" + re.escape(ANSWER_PREFIX) + r"(?P<value>[^\n]*)$", re.MULTILINE)
_NUMBER_RE = re.compile(r"-?\d+(\.\d+)?")
_THOUSANDS_RE = re.compile(r"-?\d{1,3}(,\d{3})+(\.\d+)?")


@dataclass(frozen=True)
class Edit:
    """One change: `old` at `offset` of the input became `new`; `code` says which clean-up."""

    code: str
    offset: int
    old: str
    new: str


def normalize_answer(value: str) -> tuple[str, tuple[str, ...]]:
    """Canonical form of a final answer value, and the names of the rules that changed it.

    Rules: "trailing_period" (`1600.`), "dollar" (`$4`), "thousands" (`90,000`), "zero_fraction"
    (`36.00`). The result is used only if it is a plain number; otherwise `value` comes back as is.
    """
    out, rules = value.strip(), []
    if out.endswith(".") and len(out) > 1:
        out, rules = out[:-1], rules + ["trailing_period"]
    if out.startswith(("$", "-$")):
        out, rules = out.replace("$", "", 1), rules + ["dollar"]
    if _THOUSANDS_RE.fullmatch(out):
        out, rules = out.replace(",", ""), rules + ["thousands"]
    if _NUMBER_RE.fullmatch(out) and re.search(r"\.0+$", out):
        out, rules = re.sub(r"\.0+$", "", out), rules + ["zero_fraction"]
    if not _NUMBER_RE.fullmatch(out) or out == value:
        return value, ()
    return out, tuple(rules)


def normalize(text: str) -> tuple[str, list[Edit]]:
    """Rewrite teacher text into the canonical layout.

    Args:
        text: a teacher response (any string).

    Returns:
        (canonical_text, edits); `edits` hold offsets into the text as it was before that
        step, spelling fixes first, then whitespace and answer edits on the respelled text.
    """
    respelled, spelling = _apply_spelling(text)
    edits = _tag_whitespace_edits(respelled) + _answer_edits(respelled)
    return _apply(respelled, edits), spelling + edits


def _apply_spelling(text: str) -> tuple[str, list[Edit]]:
    """Respell variants until none is left to respell: a respelled tag can close a path, which
    changes what counts as path content (and so which other variants take part in a block); the
    result is a fixed point, so normalizing twice changes nothing. Each pass's edits hold offsets
    into the text before that pass; every pass respells at least one variant, so this ends."""
    edits: list[Edit] = []
    while True:
        text, more = _spelling_pass(text)
        if not more:
            return text, edits
        edits += more


def _spelling_pass(text: str) -> tuple[str, list[Edit]]:
    variants = []
    for m in _SPELLING_RE.finditer(text):
        tag = _CANONICAL[f"<{m.group(1) or ''}{m.group(2).lower()}>"]
        if m.group() != tag:
            variants.append(Edit("tag_spelling", m.start(), m.group(), tag))
    edits = _meant_as_tags(text, variants) if variants else []
    return _apply(text, edits), edits


def _meant_as_tags(text: str, variants: list[Edit]) -> list[Edit]:
    """The variants that take part in a tag structure (see the module doc), in text order.

    Exact tags and variants outside the content of closed paths and summaries are read in
    order with one stack: an opening tag is pushed; a closing one pairs with the top of the
    stack if it is the same tag (an exact or unspaced closing tag first drops spaced variants
    left open above it). A variant is kept when it pairs. Linear in the number of tags.
    """
    content = _content_regions(text)
    starts = [a for a, _ in content]

    def in_content(offset: int) -> bool:
        i = bisect.bisect_right(starts, offset) - 1
        return i >= 0 and offset < content[i][1]

    tokens = [(at, tag, None) for at, tag in find_tags(text) if not in_content(at)]
    tokens += [(e.offset, e.new, e) for e in variants if not in_content(e.offset)]
    tokens.sort(key=lambda t: t[0])
    stack: list[tuple[str, Edit | None]] = []  # (tag name, variant edit or None if exact)
    kept: list[Edit] = []
    for _, tag, edit in tokens:
        name, spaced = tag.strip("</>"), _spaced(edit)
        if not tag.startswith("</"):
            stack.append((name, edit))
            continue
        if not spaced:  # exact or unspaced: spaced variants left open cannot pair with it
            while stack and _spaced(stack[-1][1]):
                stack.pop()
        if stack and stack[-1][0] == name and (not spaced or stack[-1][1] is not None):
            _, opener = stack.pop()
            kept += [e for e in (opener, edit) if e is not None]
    return sorted(kept, key=lambda e: e.offset)


def _spaced(edit: Edit | None) -> bool:
    """A variant with whitespace inside its brackets (`< path >`): it may be a comparison."""
    return edit is not None and any(c.isspace() for c in edit.old)


def _content_regions(text: str) -> list[tuple[int, int]]:
    """[start, end) of the inner text of every closed path and closed summary, in order."""
    regions = []
    for block in parse(text).blocks:
        for path in block.paths:
            if path.closed:
                regions.append((path.text_start, path.text_start + len(path.text)))
        if block.summary is not None and block.summary.closed:
            start = block.summary.text_start
            regions.append((start, start + len(block.summary.text)))
    return regions


def _tag_whitespace_edits(text: str) -> list[Edit]:
    edits = []
    for block in parse(text).blocks:
        children = block.children
        for k, child in enumerate(children):
            # Only gaps between two tags: a trailing gap of an unclosed block runs to the end.
            is_between = k + 1 < len(children) or block.closed
            if isinstance(child, Text) and not child.text.strip() and is_between:
                edits.append(Edit("tag_whitespace", child.start, child.text, ""))
    return edits


def _answer_edits(text: str) -> list[Edit]:
    matches = list(_ANSWER_LINE_RE.finditer(text))
    if not matches:
        return []
    m = matches[-1]
    raw = m.group("value")
    old = raw.strip(" \t")
    value, rules = normalize_answer(old)
    if not rules:
        return []
    offset = m.start("value") + len(raw) - len(raw.lstrip(" \t"))
    return [Edit("answer:" + "+".join(rules), offset, old, value)]


def _apply(text: str, edits: list[Edit]) -> str:
    parts, pos = [], 0
    for edit in sorted(edits, key=lambda e: e.offset):
        parts.append(text[pos:edit.offset])
        parts.append(edit.new)
        pos = edit.offset + len(edit.old)
    parts.append(text[pos:])
    return "".join(parts)


@dataclass
class NormalizeComparison:
    """How well `normalize(source)` reproduces `target` over many rows."""

    num_rows: int = 0
    num_exact: int = 0
    num_source_equal: int = 0  # rows whose source already equals the target
    edit_kinds: Counter = field(default_factory=Counter)  # rows per sorted tuple of edit codes
    mismatch_kinds: Counter = field(default_factory=Counter)
    mismatch_examples: dict = field(default_factory=dict)  # kind -> (row id, offset, got, want)


def compare_normalized(
    rows: Iterable[Mapping], source_field: str = "teacher_output_raw",
    target_field: str = "trajectory", id_field: str = "id",
) -> NormalizeComparison:
    """Normalise `row[source_field]` and compare it with `row[target_field]`, row by row.

    Args:
        rows: mappings holding both string fields (e.g. the v2 SFT set's JSONL records).

    Returns:
        Exact-match count, which edits the matching rows needed, and the remaining differences by
        kind ("join_whitespace", "whitespace", "answer", "other") with one example each.
    """
    report = NormalizeComparison()
    for index, row in enumerate(rows):
        source, target = row[source_field], row[target_field]
        got, edits = normalize(source)
        report.num_rows += 1
        report.num_source_equal += source == target
        if got == target:
            report.num_exact += 1
            report.edit_kinds[tuple(sorted({e.code for e in edits}))] += 1
            continue
        kind = classify_difference(got, target)
        report.mismatch_kinds[kind] += 1
        if kind not in report.mismatch_examples:
            at = next((i for i, (a, b) in enumerate(zip(got, target)) if a != b),
                      min(len(got), len(target)))
            report.mismatch_examples[kind] = (row.get(id_field, index), at,
                                              got[at:at + 60], target[at:at + 60])
    return report


def classify_difference(got: str, want: str) -> str:
    """Name the kind of difference between two texts that are not equal (see compare_normalized)."""
    join = re.compile(r"(?<!\s)\s*<Summary>")  # from a run's start only: linear
    if join.sub("<Summary>", got) == join.sub("<Summary>", want):
        return "join_whitespace"
    if re.sub(r"\s+", "", got) == re.sub(r"\s+", "", want):
        return "whitespace"
    if _ANSWER_LINE_RE.sub("", got) == _ANSWER_LINE_RE.sub("", want):
        return "answer"
    return "other"
