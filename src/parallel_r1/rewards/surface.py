"""The surface of an answer line: markdown, boxes, `\\text{}`, money and delimiters removed.

The first step of the reduction half of the answer contract (`rewards.contract`): `clean_surface`
turns an answer as written into plain text whose words and math runs `rewards.expression` then
reads. Every step is a linear scan.
"""

from __future__ import annotations

import re
from decimal import Decimal

from parallel_r1.format.answer import STRIKE_RE, box_spans
from parallel_r1.rewards.plaintext import SPACING_RE, THOUSANDS_RE, is_math_word, unicode_to_latex

_TEXT_CMD_RE = re.compile(r"\\(?:text|textbf|textit|textrm|textsf|texttt|mathrm|mathbf|mathit|"
                          r"mathsf|mbox|hbox|operatorname\*?|emph)[ \t]{0,4}\{")
_MATH_DELIM_RE = re.compile(r"\$\$|\\\(|\\\)|\\\[|\\\]")
_SENTENCE_END_RE = re.compile(r"\.(?=\s+[A-Za-z(])")
_POWER_RE = re.compile(r"(?<=[\w)\]}])\*\*(?=[\w(\[{\\-])")
_MARKDOWN_RE = re.compile(r"\*\*|__|`+|(?<![\w)\]}])\*(?=\S)|(?<=\S)\*(?![\w(\[{\\])")
_UNIT_POWER_RE = re.compile(r"(?<![\\A-Za-z])([A-Za-z]{2,})(\s*\^\s*(?:\{\s*\d\s*\}|\d))")
_SIGN_WORD_RE = re.compile(r"(?i)(?<![A-Za-z])(?:minus|negative)\s+(?=[\d.\\(])")
_ABBREVIATION_RE = re.compile(r"(?i)(?<![A-Za-z])(?:i\.\s?e|e\.\s?g|viz)\.?(?![A-Za-z])")
_DOLLARS_CENTS_RE = re.compile(r"(?i)(?:\\?\$\s*(\d+)|(?<![\d.])(\d+)\s*(?:dollars?|bucks))"
                               r"\s*,?\s*(?:and\s+|&\s*|\+\s*)?(\d{1,2})\s*(?:cents?|¢)(?![A-Za-z])")
_CENTS_RE = re.compile(r"(?i)(?<![\d.])(\d+(?:\.\d+)?)\s*(?:cents?|¢)(?![A-Za-z])")
_CURRENCY_WORD_RE = re.compile(r"(?i)(?<![A-Za-z])(?:usd|us\$|dollars?|eur|euros?|gbp|rs\.?|inr)"
                               r"(?![A-Za-z])")
_CHOICE_LABEL_RE = re.compile(r"^\s*(?:\(([A-J])\)|([A-J])\))\s*[.:]?\s+(?=\S)")

# Two-letter runs that are English or units; any other two letters are math (`xy`, `ab`).
TWO_LETTER_WORDS = frozenset({
    "is", "or", "to", "of", "in", "on", "at", "it", "be", "by", "we", "no", "so", "as", "an",
    "if", "up", "my", "me", "do", "go", "he", "us", "am", "ie", "eg", "vs", "cm", "mm", "km",
    "kg", "mg", "ft", "yd", "mi", "lb", "oz", "hr", "ml", "mL", "kW", "Hz", "sq", "cu", "pm",
    "th", "st", "nd", "rd", "Rs", "rs"})


def clean_surface(answer: str, *, keep_choice_label: bool = False) -> str:
    """Struck-out text, markdown, boxes, `\\text{}`, currency, math delimiters and sentence
    punctuation removed,
    and a leading choice label (`(C) 12` -> `12`) unless `keep_choice_label`."""
    text = STRIKE_RE.sub(" ", unicode_to_latex(answer)).strip()
    text = _POWER_RE.sub("^", text)
    text = _MARKDOWN_RE.sub("", text).strip()
    while text and text[0] in "#>":
        text = text[1:].strip()
    boxed = _box_contents(text)
    if boxed:
        text = ", ".join(boxed)
    text = _unwrap_text_commands(text)
    text = _money_amounts(text)
    text = _strip_currency(text)
    text = _SIGN_WORD_RE.sub("-", text)
    text = _ABBREVIATION_RE.sub(" ie ", text)
    text = THOUSANDS_RE.sub(lambda m: re.sub(r"\D", "", m.group()), text)
    text = SPACING_RE.sub(" ", text)
    text = _UNIT_POWER_RE.sub(_drop_unit_power, text)
    text = _MATH_DELIM_RE.sub(" ", text).replace("$", " ")
    text = _SENTENCE_END_RE.sub(";", text)
    text = text.strip().rstrip(".!?;:").strip()
    label = None if keep_choice_label else _CHOICE_LABEL_RE.match(text)
    if label:  # "(C) 12": the value after a choice label
        text = text[label.end():]
    return text


def _drop_unit_power(match: re.Match) -> str:
    """`cm^2` -> `cm` (a unit's exponent); `pi^2`, `xy^2` are math and stay."""
    letters = match.group(1)
    if is_math_word(letters.lower()) or (len(letters) == 2 and letters not in TWO_LETTER_WORDS):
        return match.group()
    return letters


def _box_contents(text: str) -> list[str]:
    """Contents of the outermost complete boxes, nested boxes unwrapped (`\\boxed{\\boxed{1}}`)."""
    spans = box_spans(text)
    out, last_end = [], -1
    for start, end in spans:
        if start < last_end:
            continue  # inside the previous box
        content = text[start:end].strip()
        inner = _box_contents(content) if "\\boxed" in content or "\\fbox" in content else []
        content = ", ".join(inner) if inner and len(inner) == 1 else content
        if not out or out[-1] != content:
            out.append(content)
        last_end = end
    return out


def _unwrap_text_commands(text: str) -> str:
    """`\\text{ apples}` -> ` apples `, braces balanced; unclosed ones lose only the command."""
    if "\\" not in text:
        return text
    out, pos = [], 0
    for match in _TEXT_CMD_RE.finditer(text):
        if match.start() < pos:
            continue
        depth, i = 1, match.end()
        while i < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        inner_end = i - 1 if depth == 0 else i
        out.append(text[pos:match.start()])
        out.append(" " + text[match.end():inner_end] + " ")
        pos = i
    out.append(text[pos:])
    return "".join(out)


def _money_amounts(text: str) -> str:
    """`18 dollars and 50 cents` / `$18 and 50 cents` -> `18.50`; `50 cents` -> `0.50`."""
    if "cent" not in text.lower() and "¢" not in text:
        return text
    text = _DOLLARS_CENTS_RE.sub(
        lambda m: f" {m.group(1) or m.group(2)}.{int(m.group(3)):02d} ", text)
    return _CENTS_RE.sub(lambda m: " " + format(Decimal(m.group(1)).scaleb(-2), "f") + " ", text)


def _strip_currency(text: str) -> str:
    """Remove currency marks: `\\$`, `$` before a number outside math, `€£¥`, USD, dollars."""
    text = text.replace("\\$", " ").replace("€", " ").replace("£", " ").replace("¥", " ")
    text = _CURRENCY_WORD_RE.sub(" ", text)
    if "$" not in text:
        return text
    spans = [m.start() for m in re.finditer(r"\$", text)]
    if len(spans) % 2 == 1:  # an odd count cannot be math delimiters: currency
        return re.sub(r"\$(?=\s*[-\d.])", " ", text)
    # Even count: a `$` before a number whose span to the next `$` holds words is currency.
    keep = []
    for a, b in zip(spans[::2], spans[1::2]):
        inside = text[a + 1:b]
        currency = re.match(r"\s*-?\d", inside) and re.search(r"(?<!\\)\b[A-Za-z]{2,}", inside)
        keep.append((a, b, bool(currency)))
    chars = list(text)
    for a, b, currency in keep:
        if currency:
            chars[a] = " "
            if re.match(r"\s*-?\d", text[b + 1:]):
                chars[b] = " "
    return "".join(chars)
