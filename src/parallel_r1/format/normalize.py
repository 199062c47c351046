"""Teacher text -> canonical layout (SPEC §1.2, §5.2), with a record of every edit made.

Three clean-ups, each an `Edit` on the original text:
- tag spelling: `<parallel>`, `< Path >`, `</ SUMMARY>` ... become the exact tags;
- tag whitespace: whitespace-only gaps inside a block (between `<Parallel>`/`<Path>`,
  `</Path>`/`<Path>` and `</Path>`/`</Parallel>`) are removed; the join before `<Summary>` is kept;
- the final answer: `$1,600.00` -> `1600` (dollar sign, thousands commas, an all-zero fraction and
  a trailing period go; an answer that is not a number after that is left alone).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from parallel_r1.format.parse import parse
from parallel_r1.format.tags import ANSWER_PREFIX, TAGS
from parallel_r1.format.trace import Text

_SPELLING_RE = re.compile(r"<\s*(/?)\s*(parallel|path|summary)\s*>", re.IGNORECASE)
_CANONICAL = {tag.lower(): tag for tag in TAGS}
_ANSWER_LINE_RE = re.compile(
    r"^[ \t]*" + re.escape(ANSWER_PREFIX) + r"[ \t]*(?P<value>[^\n]*?)[ \t]*$", re.MULTILINE)
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
    edits = []
    for m in _SPELLING_RE.finditer(text):
        tag = _CANONICAL[f"<{m.group(1)}{m.group(2).lower()}>"]
        if m.group() != tag:
            edits.append(Edit("tag_spelling", m.start(), m.group(), tag))
    return _apply(text, edits), edits


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
    value, rules = normalize_answer(m.group("value"))
    if not rules:
        return []
    return [Edit("answer:" + "+".join(rules), m.start("value"), m.group("value"), value)]


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
    join = re.compile(r"\s*<Summary>")
    if join.sub("<Summary>", got) == join.sub("<Summary>", want):
        return "join_whitespace"
    if re.sub(r"\s+", "", got) == re.sub(r"\s+", "", want):
        return "whitespace"
    if _ANSWER_LINE_RE.sub("", got) == _ANSWER_LINE_RE.sub("", want):
        return "answer"
    return "other"
