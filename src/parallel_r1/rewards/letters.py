"""Multiple-choice letters and word answers (the non-math parts of the answer contract).

A gold answer that is one capital letter A-J, bare or as `(C)`, `C)`, `\\text{(C)}`,
`\\textbf{(C)}`, is a choice: the prediction is right when it names exactly that one letter
(`C`, `(C)`, `(c)`, `(C) 12`, `**C**`, `Option C`); naming two letters (`B or C`) is wrong.
A letter in parentheses counts in either case; a bare one only as a capital (and not `A` or `I`
before a lower-case word: "A total of", "I think"). Word answers
(`\\text{even}`, `Monday`) compare as lower-case words, articles and "answer" dropped.
"""

from __future__ import annotations

import re

from parallel_r1.rewards.expression import MAX_ANSWER_CHARS, Reduced, clean_surface

_CHOICE_GOLD_RE = re.compile(r"^\(?([A-J])\)?$")
_PAREN_LETTER_RE = re.compile(r"\(([A-Ja-j])\)")
# A standalone capital; "A" and "I" before a lower-case word are an article and a pronoun.
_LETTER_RE = re.compile(r"(?<![A-Za-z\\])([A-J])(?![A-Za-z])(?!\s+[a-z])|(?<![A-Za-z\\])"
                        r"([B-HJ])(?![A-Za-z])")
_LABEL_RE = re.compile(r"(?i)^\s*(?:the\s+)?(?:correct\s+)?(?:answer|option|choice)"
                       r"(?:\s+is)?\s*:?\s*")


def is_choice(gold: str) -> bool:
    """True when the gold answer is one choice letter A-J (`C`, `(C)`, `\\text{(C)}`)."""
    if len(gold) > MAX_ANSWER_CHARS:
        return False
    text = _surface(gold)
    return bool(_CHOICE_GOLD_RE.match(text))


def choice_letter(answer: str) -> str | None:
    """The one choice letter an answer names (`(C) 12` -> "C"); None for none or several."""
    if len(answer) > MAX_ANSWER_CHARS:
        return None
    text = _LABEL_RE.sub("", clean_surface(answer, keep_choice_label=True))
    letters = {m.group(1).upper() for m in _PAREN_LETTER_RE.finditer(text)}
    if not letters:  # no "(c)": standalone capitals
        letters = {m.group(1) or m.group(2) for m in _LETTER_RE.finditer(text)}
    return letters.pop() if len(letters) == 1 else None


def _surface(answer: str) -> str:
    return re.sub(r"\s+", "", clean_surface(answer, keep_choice_label=True))


def text_equal(pred: Reduced, gold: Reduced) -> bool:
    """Word answers: equal when both are words and their words match (case and articles aside)."""
    if pred.kind != "text" or gold.kind != "text":
        return False
    return _words(pred.value) == _words(gold.value) and bool(_words(gold.value))


def _words(value: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", value.lower())
