"""Where a response's final answer is read from: the location half of the answer contract.

The whole contract (location, reduction to an expression, equivalence) is written once in
`parallel_r1.rewards.contract`; this module is its text-only part, kept in `format` so that
`validate` (its `missing_answer` issue) reads answers exactly as the graders do.

Readings, by name:
- "strict" (ours): only text outside paths is read: the main text and the summaries, in text
  order. Paths, text between paths, and everything after an unclosed `<Parallel>` (a block cut off
  by the length limit) are never read. The answer is the last `Final Answer:` line there (markdown
  allowed around the label), else the last complete `\\boxed{...}` there. An answer that says
  nothing (`is_blank_answer`: `**`, `$$`, `\\boxed{}`, `.`, `\\text{}`) is no answer: the label
  or box before it is read instead, and with none `missing_answer` is reported.
- "paper": the paper's math graders (SPEC 4.2): the last `Final Answer:` match in the last 300
  characters of the text with its tags removed, wherever it sits (paths included).

Every function here runs in time linear in the text (a policy controls the text).
"""

from __future__ import annotations

import re

from parallel_r1.format.parse import TAG_RE, parse
from parallel_r1.format.trace import Block, StrayTag, Text, Trace

PAPER_WINDOW = 300
READINGS = ("strict", "paper")
# The paper's pattern, used only on its 300-character window (bounded cost).
PAPER_FINAL_RE = re.compile(r"(?i)Final Answer\s*:\s*([^\n]+)")
_LABEL_RE = re.compile(r"(?i)(?<![a-z])final[ \t]{1,8}answer(?![a-z])")
_BOX_RE = re.compile(r"\\(?:boxed|fbox)[ \t]{0,8}\{")
_DECORATION = frozenset("*_`#> \t")  # markdown around a label: **Final Answer**:, ### Final Answer
# Struck-out text (`~~18~~`, `<del>18</del>`, `\\sout{18}`): withdrawn by the writer.
STRIKE_RE = re.compile(r"~~[^~\n]*~~|<(del|s|strike)>[^\n]*?</\1>|\\(?:sout|st)\{[^{}]*\}")
# What an answer is made of only when it says nothing: markup, delimiters, empty wrappers,
# punctuation and space (`**`, `$$`, `\\boxed{}`, `\\text{}`, `.`).
_BLANK_RE = re.compile(r"\\(?:boxed|fbox|text[a-z]*|math[a-z]*|mbox|hbox|displaystyle|textstyle|"
                       r"quad|qquad)(?![A-Za-z])|\\[,;:! ()\[\]]|[\s$*_`~#>{}.,;:!?]")


def strip_tags(text: str) -> str:
    """Remove the six tags, as decoding with `skip_special_tokens=True` does [inferred]."""
    return TAG_RE.sub("", text)


def is_blank_answer(answer: str) -> bool:
    """True when an answer says nothing: nothing is left once struck-out text, markdown, math
    delimiters, spacing, empty `\\boxed{}`/`\\text{}` wrappers and punctuation are removed
    (`**`, `$$`, `\\boxed{}`, `.`, `\\text{ }`, `~~18~~`, a zero-width space). A blank answer is
    no answer."""
    return not _BLANK_RE.sub("", STRIKE_RE.sub("", answer.translate(_INVISIBLE)))


_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"))


def readable_text(text: str | Trace) -> str:
    """The text the strict reading sees: main text and summaries, joined by newlines.

    Args:
        text: a response with its tags, or its parsed `Trace`.

    Returns:
        Top-level text and the inner text of every summary of a closed block, in text order,
        each region on its own lines (a newline between regions). Paths, gaps inside blocks, stray
        tags and unclosed blocks contribute nothing; nor does text after a stray `<Path>` (a path
        opened outside a block, or inside a stray summary) until a `</Path>` closes it.
    """
    regions, in_path = [], False
    for node in (text if isinstance(text, Trace) else parse(text)).nodes:
        if isinstance(node, StrayTag) and node.tag in ("<Path>", "</Path>"):
            in_path = node.tag == "<Path>"
        elif isinstance(node, Text) and not in_path:
            regions.append(node.text)
        elif isinstance(node, Block) and node.summary is not None:
            regions.append(node.summary.text)
    return "\n".join(regions)


def final_answer_line(text: str) -> str | None:
    """The answer after the last `Final Answer` label that has one, markdown allowed.

    A label is `final answer` (any case, spaces between the words) with optional markdown around
    it (`**Final Answer:**`, `**Final Answer**:`, `### Final Answer:`), then a colon; the answer
    is the rest of that line, or the next non-blank line when the rest is blank (as the paper's
    `\\s*` does). A line holding only the label (`**Final Answer**`, `## Final Answer`) also counts,
    its answer on the next non-blank line. Blank means `is_blank_answer` (`$$`, `**`, `.`,
    `\\boxed{}` say nothing). A later label with nothing after it (a cut-off text, `Final Answer:
    $$`) gives way to the one before.

    Returns:
        The answer text, stripped (markdown around it is kept for the reduction step), or None.
    """
    for match in reversed(list(_LABEL_RE.finditer(text))):
        start = _after_label(text, match.start(), match.end())
        if start is None:
            continue
        answer = _line_or_next(text, start)
        if answer is not None:
            return answer
    return None


def _after_label(text: str, begin: int, end: int) -> int | None:
    """Offset where the answer starts after a label at [begin, end), or None if not a label."""
    i = end
    while i < len(text) and text[i] in "*_`":
        i += 1
    while i < len(text) and text[i] in " \t":
        i += 1
    if i < len(text) and text[i] in ":：":
        return i + 1
    # No colon: only a line holding nothing but the (decorated) label is a label.
    k = i
    while k < len(text) and text[k] in _DECORATION:
        k += 1
    if k < len(text) and text[k] not in "\r\n":
        return None
    j = begin - 1
    while j >= 0 and text[j] in _DECORATION:
        j -= 1
    return k if j < 0 or text[j] == "\n" else None


def _line_or_next(text: str, start: int) -> str | None:
    """The rest of the line at `start`, else the next non-blank line; None at the end."""
    end = text.find("\n", start)
    line = text[start:] if end < 0 else text[start:end]
    if not is_blank_answer(line):
        return line.strip()
    while end >= 0:
        nxt = text.find("\n", end + 1)
        line = text[end + 1:] if nxt < 0 else text[end + 1:nxt]
        if not is_blank_answer(line):  # blank lines and lines such as `$$` are skipped
            if _LABEL_RE.match(line.strip(" \t*_`#>")):
                return None  # the next line is another label: this one has no answer
            return line.strip()
        end = nxt
    return None


def box_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of the content of every complete `\\boxed{...}` / `\\fbox{...}`, in order.

    One forward pass matches every brace (a backslash escapes the next character, so `\\{` and
    `\\}` never count), so the cost is linear however many boxes are left open.
    """
    opens = [m.end() for m in _BOX_RE.finditer(text)]
    if not opens:
        return []
    closing = _matching_braces(text, opens[0] - 1)
    return [(o, closing[o - 1]) for o in opens if closing.get(o - 1, -1) >= 0]


def _matching_braces(text: str, start: int) -> dict[int, int]:
    """{offset of "{": offset of its "}" or -1} for every brace at or after `start`."""
    closing: dict[int, int] = {}
    stack: list[int] = []
    i, n = start, len(text)
    while i < n:
        char = text[i]
        if char == "\\":
            i += 2
            continue
        if char == "{":
            stack.append(i)
            closing[i] = -1
        elif char == "}" and stack:
            closing[stack.pop()] = i
        i += 1
    return closing


_LIST_GAP_RE = re.compile(r"^[\s$]*(?:,|;|and|or|,\s*and|,\s*or)?[\s$]*$")


def last_box(text: str) -> str | None:
    """Content of the last complete box, stripped; None when there is none.

    Boxes written as one list (`\\boxed{2} and \\boxed{3}`, `$\\boxed{2}$, $\\boxed{3}$`: only a
    comma, semicolon, "and" or "or" between them on one line) are returned together, joined by
    ", "; boxes apart (`\\boxed{16}. Wait: \\boxed{18}`) give the last one.
    """
    spans = [(a, b) for a, b in box_spans(text) if not is_blank_answer(text[a:b])]
    if not spans:
        return None
    start, end = spans[-1]
    contents = [text[start:end].strip()]
    for prev_start, prev_end in reversed(spans[:-1]):
        command = text.rfind("\\", 0, start)  # the `\boxed` of the box after this one
        between = text[prev_end + 1:command]
        if prev_end >= start or "\n" in between or not _LIST_GAP_RE.match(between):
            break
        contents.append(text[prev_start:prev_end].strip())
        start = prev_start
    return ", ".join(reversed(contents))


def find_answer(text: str, reading: str = "strict", *, trace: Trace | None = None) -> str | None:
    """The raw final answer of a response under a reading ("strict" or "paper").

    Args:
        text: a response with its tags.
        reading: "strict" (main text and summaries; last `Final Answer:` line, else last box) or
            "paper" (last `Final Answer:` in the last 300 characters of the tag-free text).
        trace: `parse(text)` when the caller has it already (saves parsing again).

    Returns:
        The answer as written (a line, or a box's content), or None when there is none.

    Raises:
        ValueError: an unknown reading.
    """
    if reading == "paper":
        matches = PAPER_FINAL_RE.findall(strip_tags(text)[-PAPER_WINDOW:])
        return (matches[-1].strip() or None) if matches else None
    if reading != "strict":
        raise ValueError(f"unknown answer reading '{reading}'; known: {', '.join(READINGS)}")
    readable = readable_text(trace if trace is not None else text)
    line = final_answer_line(readable)
    return line if line is not None else last_box(readable)
