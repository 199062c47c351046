"""Reduce an answer as written (`16 (not 18)`, `**18** apples`, `$3\\sqrt(2)$`) to what is graded.

The reduction half of the answer contract (`rewards.contract` states the rules). The result is a
`Reduced`: "math" (a LaTeX string, several candidates joined by ", " as a list), "text" (only
words, e.g. `\\text{even}`), or "empty". Every step is a linear scan; answers longer than
`MAX_ANSWER_CHARS` are not reduced (graded wrong).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from parallel_r1.format.answer import box_spans
from parallel_r1.rewards.plaintext import (
    SPACING_RE,
    THOUSANDS_RE,
    is_math_word,
    to_latex,
    unicode_to_latex,
)

MAX_ANSWER_CHARS = 2000

# Word roles inside an answer line (lower case).
NEGATION = frozenset({"not", "never", "except", "excluding", "isnt", "instead", "than"})
ALTERNATIVE = frozenset({"or", "either", "maybe", "possibly", "perhaps", "alternatively",
                         "otherwise", "probably", "likely", "nor", "and", "also", "to",
                         "through", "between", "versus", "vs", "actually", "wait", "correction",
                         "rather", "but", "mean", "oops", "sorry", "no", "then"})
CLAUSE = frozenset({"which", "that", "since", "because", "as", "so", "where", "when", "while",
                    "given", "from", "if", "hence", "thus", "therefore", "meaning", "ie", "eg",
                    "for", "with", "by", "after", "before", "using", "who", "whose",
                    "this", "it", "its", "we", "they", "he", "she", "you", "i", "there",
                    "here", "obtained", "found", "computed", "calculated", "derived", "check"})
EQUALITY = frozenset({"is", "are", "equals", "equal", "was", "were", "be", "gives", "makes",
                      "yields", "becomes"})
PERCENT_WORDS = frozenset({"percent", "percentage", "pct"})
TEXT_STOPWORDS = frozenset({"the", "a", "an", "is", "are", "answer", "final", "it", "its", "so",
                            "therefore", "thus"})

_TOKEN_RE = re.compile(r"""
    (?P<cmd>\\[A-Za-z]+)
  | (?P<esc>\\[^A-Za-z])
  | (?P<num>\d+(?:\.\d+)?)
  | (?P<alpha>[A-Za-z]+(?:'[A-Za-z]+)?)
  | (?P<space>\s+)
  | (?P<sep>[,;])
  | (?P<open>[(\[{])
  | (?P<close>[)\]}])
  | (?P<op>.)
""", re.VERBOSE | re.DOTALL)
_TEXT_CMD_RE = re.compile(r"\\(?:text|textbf|textit|textrm|textsf|texttt|mathrm|mathbf|mathit|"
                          r"mathsf|mbox|hbox|operatorname\*?|emph)[ \t]{0,4}\{")
_MATH_DELIM_RE = re.compile(r"\$\$|\\\(|\\\)|\\\[|\\\]")
_CHOICE_LABEL_RE = re.compile(r"^\s*(?:\(([A-J])\)|([A-J])\))\s*[.:]?\s+(?=\S)")
_SENTENCE_END_RE = re.compile(r"\.(?=\s+[A-Za-z(])")
_POWER_RE = re.compile(r"(?<=[\w)\]}])\*\*(?=[\w(\[{\\-])")
_MARKDOWN_RE = re.compile(r"\*\*|__|`+|(?<![\w)\]}])\*(?=\S)|(?<=\S)\*(?![\w(\[{\\])")
_UNIT_POWER_RE = re.compile(r"(?<![\\A-Za-z])([A-Za-z]{2,})(\s*\^\s*(?:\{\s*\d\s*\}|\d))")
_UNIT_TAIL_RE = re.compile(r"(?<=[\d}.])\s+[A-Za-z]{1,3}(?:\s*/\s*[A-Za-z]{1,3})*"
                           r"(?:\s*\^\s*\{?\d\}?)?\s*$")
_SIGN_WORD_RE = re.compile(r"(?i)(?<![A-Za-z])(?:minus|negative)\s+(?=[\d.\\(])")
_ABBREVIATION_RE = re.compile(r"(?i)(?<![A-Za-z])(?:i\.\s?e|e\.\s?g|viz)\.?(?![A-Za-z])")
_CURRENCY_WORD_RE = re.compile(r"(?i)(?<![A-Za-z])(?:usd|us\$|dollars?|eur|euros?|gbp|rs\.?|inr)"
                               r"(?![A-Za-z])")


@dataclass(frozen=True)
class Reduced:
    """An answer reduced for grading: kind "math" | "text" | "empty", and its value."""

    kind: str
    value: str


def reduce_answer(answer: str) -> Reduced:
    """Reduce an answer as written to the expression graded (see `rewards.contract`).

    Args:
        answer: a `Final Answer:` line, a box's content, or a gold answer.

    Returns:
        The `Reduced` answer; "empty" when nothing is left (or the answer is over
        `MAX_ANSWER_CHARS`).
    """
    if not answer or len(answer) > MAX_ANSWER_CHARS:
        return Reduced("empty", "")
    text = clean_surface(answer)
    runs, words = select_runs(text)
    if runs:
        return Reduced("math", ", ".join(runs))
    if words:
        return Reduced("text", " ".join(words))
    return Reduced("empty", "")


def clean_surface(answer: str, *, keep_choice_label: bool = False) -> str:
    """Markdown, boxes, `\\text{}`, currency, math delimiters and sentence punctuation removed,
    and a leading choice label (`(C) 12` -> `12`) unless `keep_choice_label`."""
    text = unicode_to_latex(answer).strip()
    text = _POWER_RE.sub("^", text)
    text = _MARKDOWN_RE.sub("", text).strip()
    while text and text[0] in "#>":
        text = text[1:].strip()
    boxed = _box_contents(text)
    if boxed:
        text = ", ".join(boxed)
    text = _unwrap_text_commands(text)
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


# --------------------------------------------------------------------------- tokens -> runs

# Two-letter runs that are English or units; any other two letters are math (`xy`, `ab`).
TWO_LETTER_WORDS = frozenset({
    "is", "or", "to", "of", "in", "on", "at", "it", "be", "by", "we", "no", "so", "as", "an",
    "if", "up", "my", "me", "do", "go", "he", "us", "am", "ie", "eg", "vs", "cm", "mm", "km",
    "kg", "mg", "ft", "yd", "mi", "lb", "oz", "hr", "ml", "mL", "kW", "Hz", "sq", "cu", "pm",
    "th", "st", "nd", "rd", "Rs", "rs"})
Token = tuple[str, str, int, str]  # (kind, text, bracket depth, innermost open bracket or "")


def tokenize(text: str) -> list[Token]:
    """Tokens with kinds cmd esc num alpha space sep open close op, depth and enclosing bracket."""
    tokens: list[Token] = []
    stack: list[str] = []
    for m in _TOKEN_RE.finditer(text):
        kind, value = m.lastgroup, m.group()
        if kind == "esc" and value in ("\\{", "\\}"):
            kind = "open" if value == "\\{" else "close"
        if kind == "close" and stack:
            stack.pop()
        tokens.append((kind, value, len(stack), stack[-1] if stack else ""))
        if kind == "open":
            stack.append(value[-1])
    return tokens


def _is_word(tokens: list[Token], k: int) -> bool:
    """An English word: letters outside curly braces, not math vocabulary, not a variable."""
    kind, value, _, inner = tokens[k]
    if kind != "alpha" or inner == "{":
        return False
    if len(value) == 1:
        return value in ("a", "I") and _next_kind(tokens, k) == "alpha"
    low = value.lower().replace("'", "")
    if is_math_word(low):
        return False
    return len(value) > 2 or value in TWO_LETTER_WORDS or low in TWO_LETTER_WORDS


def _next_kind(tokens: list[Token], k: int) -> str | None:
    for token in tokens[k + 1:k + 3]:
        if token[0] != "space":
            return token[0]
    return None


def select_runs(text: str) -> tuple[list[str], list[str]]:
    """The math runs that answer, and the words seen (for text answers); see the contract."""
    tokens = tokenize(text)
    words = [tokens[k][1].lower() for k in range(len(tokens)) if _is_word(tokens, k)]
    tokens, extra = _drop_asides(tokens, {k for k in range(len(tokens)) if _is_word(tokens, k)})
    is_word = {k for k in range(len(tokens)) if _is_word(tokens, k)}
    runs: list[str] = []
    for phrase in _phrases(tokens):
        lead = next(k for k in phrase if tokens[k][0] != "space")
        word = tokens[lead][1].lower().replace("'", "")
        if runs and word not in ALTERNATIVE and (
                lead in is_word or any(k in is_word for k in phrase)):
            if word in NEGATION:
                continue  # "18, not 16"
            break  # "18, which is ...", "18; 16 was wrong": an explanation follows
        found, stop = _phrase_runs(tokens, phrase, is_word)
        runs.extend(found)
        if stop:
            break
    runs = [r for r in (to_latex(_trim_run(r)) for r in runs + extra) if r]
    return runs, [w for w in words if w not in TEXT_STOPWORDS]


def _trim_run(run: str) -> str:
    """A unit after the number (`18 m/s`), stray punctuation, and unit fragments (`/h` of
    `km/h`) removed."""
    run = _UNIT_TAIL_RE.sub(lambda m: m.group() if is_math_word(m.group().strip().lower())
                            else "", run)
    run = re.sub(r"^\s*\.(?!\d)|[-+*/=.:\s]+$|^[\s:=]+", "", run)
    return "" if re.match(r"\s*[/^*]", run) else run


def _drop_asides(tokens: list, is_word: set[int]) -> tuple[list, list[str]]:
    """Remove top-level bracket groups holding words; keep an `(or 16)` group's math as an
    alternative. Returns (tokens without asides, alternative runs)."""
    out, extra, k = [], [], 0
    while k < len(tokens):
        kind, value, depth, _ = tokens[k]
        if kind == "open" and depth == 0 and value in "([":
            end = _group_end(tokens, k)
            after_number = _follows_number(out)
            if end is not None and (after_number or any(j in is_word for j in range(k + 1, end))):
                inner = "".join(t[1] for t in tokens[k + 1:end])
                first = next((tokens[j][1].lower() for j in range(k + 1, end)
                              if tokens[j][0] != "space"), "")
                if first in ALTERNATIVE:
                    extra.extend(select_runs(inner)[0])
                k = end + 1
                continue
        out.append(tokens[k])
        k += 1
    return out, extra


def _follows_number(out: list) -> bool:
    """The tokens so far end with a number (or a closing brace), then a space: `18 (16 + 2)`
    reads as 18 with a derivation, not 18 * 18."""
    return len(out) >= 2 and out[-1][0] == "space" and (
        out[-2][0] == "num" or out[-2][1] == "}")


def _group_end(tokens: list, k: int) -> int | None:
    for j in range(k + 1, len(tokens)):
        if tokens[j][0] == "close" and tokens[j][2] == tokens[k][2]:
            return j
    return None


def _phrases(tokens: list) -> list[list[int]]:
    """Token indices split at top-level `,` and `;`."""
    phrases, current = [], []
    for k, (kind, _, depth, _) in enumerate(tokens):
        if kind == "sep" and depth == 0:
            phrases.append(current)
            current = []
        else:
            current.append(k)
    phrases.append(current)
    return [p for p in phrases if any(tokens[k][0] != "space" for k in p)]


def _phrase_runs(tokens: list, phrase: list[int], is_word: set[int]) -> tuple[list[str], bool]:
    """Math runs of one phrase (words split them); (runs, stop: an explanation began)."""
    runs: list[str] = []
    current: list[str] = []
    state = {"negate": False, "equal": False, "word": ""}

    def close_run() -> bool:
        run = "".join(current).strip()
        current.clear()
        if not run:
            return False
        if state["negate"]:
            state["negate"] = False
        elif state["equal"] and runs:
            runs[-1] = runs[-1] + " = " + run
        elif state["word"] == "and" and runs and _is_mixed(runs[-1], run):
            runs[-1] = runs[-1] + " " + run  # "2 and 1/2": a mixed number
        else:
            runs.append(run)
        state["equal"] = False
        return True

    for k in phrase:
        if k not in is_word:
            current.append(tokens[k][1])
            continue
        word = tokens[k][1].lower().replace("'", "")
        had_run = close_run()
        if word in NEGATION:
            state["negate"] = True
        elif word in PERCENT_WORDS and runs and had_run:
            runs[-1] += "\\%"
        elif word in CLAUSE and runs:
            return runs, True
        elif word in EQUALITY and runs and had_run:
            state["equal"] = True
        state["word"] = word
    close_run()
    return runs, False


def _is_mixed(whole: str, fraction: str) -> bool:
    """`2` and `1/2` (a proper fraction) read as two and a half."""
    frac = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*|\\frac\{(\d+)\}\{(\d+)\}", fraction)
    if not re.fullmatch(r"\d+", whole.strip()) or frac is None:
        return False
    num, den = (int(g) for g in frac.groups() if g is not None)
    return 0 < num < den
