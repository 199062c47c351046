"""Find the final answer in a response (the reading step of the answer contract).

`read_answer(text, reading)` is what every grader, reward, eval and `check-format` use; the
readings ("strict", ours, and "paper") live in `parallel_r1.format.answer` and are stated in
`parallel_r1.rewards.contract`. The older helpers below read the whole text without regard to the
tags and reproduce the paper's GSM8K quirks (the FIRST numeric `Final Answer:` match); they are
kept for the paper-faithful rewards. Every function is linear in the text.
"""

from __future__ import annotations

import re

from parallel_r1.format.answer import (
    PAPER_FINAL_RE,
    PAPER_WINDOW,
    READINGS,
    find_answer,
    last_box,
    strip_tags,
)

# The paper's GSM8K patterns: a number right after "Final Answer:" (case-sensitive).
GSM8K_LAST_RE = re.compile(r"Final Answer: (\-?[0-9\.\,]+)")
GSM8K_FIRST_RE = re.compile(r"Final Answer:\s*([-]?[0-9\.\,]+)")
FINAL_ANSWER_RE = PAPER_FINAL_RE
_SOURCES = ("auto", "final", "boxed")

__all__ = ["PAPER_WINDOW", "READINGS", "extract_answer", "extract_boxed", "extract_final_answer",
           "extract_gsm8k_number", "read_answer", "strip_tags"]


def read_answer(text: str, reading: str = "strict") -> str | None:
    """The final answer of a response as written, under a reading of the answer contract.

    Args:
        text: a response with its tags.
        reading: "strict" (main text and summaries only: the last `Final Answer:` line, markdown
            allowed, else the last `\\boxed{}`) or "paper" (the last `Final Answer:` in the last
            300 characters of the tag-free text).

    Returns:
        The answer (a line's text or a box's content), or None when there is none.

    Raises:
        ValueError: an unknown reading.
    """
    return find_answer(text, reading)


def extract_final_answer(text: str, *, window: int | None = None, first: bool = False) -> str | None:
    """Return the text after the last `Final Answer:` (case-insensitive) up to the end of its line.

    Tags are ordinary characters here (see `read_answer` for the contract's reading).

    Args:
        text: a response.
        window: read only the last `window` characters, as the paper does with 300; None reads all.
        first: take the first match instead of the last.

    Returns:
        The answer with surrounding whitespace stripped, or None when there is no match (or the
        match is only whitespace).
    """
    if window is not None:
        text = text[-window:] if window > 0 else ""
    if first:
        match = FINAL_ANSWER_RE.search(text)
        answer = match.group(1).strip() if match else ""
    else:
        matches = FINAL_ANSWER_RE.findall(text)
        answer = matches[-1].strip() if matches else ""
    return answer or None


def extract_boxed(text: str) -> str | None:
    """Return the content of the last complete `\\boxed{...}` (or `\\fbox{...}`), braces balanced.

    Args:
        text: any string.

    Returns:
        The content between the outer braces, stripped; None when there is no complete box
        (an unclosed last box is skipped in favour of the previous complete one).
    """
    return last_box(text)


def extract_answer(text: str, source: str = "auto", *, window: int | None = None) -> str | None:
    """Return the final answer of `text` from the chosen source, reading the whole text.

    Args:
        text: a response.
        source: "final" (last `Final Answer:` line), "boxed" (last `\\boxed{}`), or "auto" (the
            `Final Answer:` line if there is one, else the last box).
        window: as in `extract_final_answer`; applies to both sources.

    Returns:
        The answer string, or None when the source holds none.

    Raises:
        ValueError: `source` is not one of "auto", "final", "boxed".
    """
    if source not in _SOURCES:
        raise ValueError(f"unknown answer source '{source}'; known: {', '.join(_SOURCES)}")
    if window is not None:
        text = text[-window:] if window > 0 else ""
    if source in ("auto", "final"):
        answer = extract_final_answer(text)
        if answer is not None or source == "final":
            return answer
    return extract_boxed(text)


def extract_gsm8k_number(text: str, *, first: bool) -> str | None:
    """The paper's GSM8K extraction: a number after `Final Answer:`, with `,` and `$` removed.

    Args:
        text: a response.
        first: True reproduces the `*parallel*`/`emphase*` GSM8K rewards (FIRST match in the whole
            text, `Final Answer:\\s*`); False reproduces `gsm8k.py` (last match of
            `Final Answer: ` in the last 300 characters).

    Returns:
        The captured number string (a trailing "." is kept, as in the paper), or None.
    """
    if first:
        match = GSM8K_FIRST_RE.search(text)
        found = match.group(1) if match else None
    else:
        matches = GSM8K_LAST_RE.findall(text[-PAPER_WINDOW:])
        found = matches[-1] if matches else None
    return None if found is None else found.replace(",", "").replace("$", "")
