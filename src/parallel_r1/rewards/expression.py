"""Reduce an answer as written (`16 (not 18)`, `**18** apples`, `$3\\sqrt(2)$`) to what is graded.

The reduction half of the answer contract (`rewards.contract` states the rules). The result is a
`Reduced`: "math" (a LaTeX string, several candidates joined by ", " as a list), "text" (only
words, e.g. `\\text{even}`), or "empty". Every step is a linear scan; answers longer than
`MAX_ANSWER_CHARS` are not reduced (graded wrong). The surface (markdown, boxes, money) is
`rewards.surface`; this module reads the words and math runs left.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from parallel_r1.rewards.plaintext import is_math_word, to_latex
from parallel_r1.rewards.surface import TWO_LETTER_WORDS, clean_surface

MAX_ANSWER_CHARS = 2000

# Word roles inside an answer line (lower case).
NEGATION = frozenset({"not", "never", "except", "excluding", "isnt", "instead", "than"})
ALTERNATIVE = frozenset({"or", "either", "maybe", "possibly", "perhaps", "alternatively",
                         "otherwise", "probably", "likely", "nor", "and", "also", "to",
                         "through", "between", "versus", "vs", "wait", "rather", "but", "oops",
                         "sorry", "then"})
# An explicit correction makes what follows it the answer (`18 is wrong, it's 16` -> 16); so do
# `no` before punctuation or a number (`18? No, 16`) and `I mean`.
CORRECTION = frozenset({"actually", "correction", "wrong", "incorrect"})
WITHDRAW = frozenset({"wrong", "incorrect"})  # withdraw even with nothing after (`18 is wrong`)
_MARK = "\x00"  # a correction's place among the runs: _MARK + the marker word
CLAUSE = frozenset({"which", "that", "since", "because", "as", "so", "where", "when", "while",
                    "given", "from", "if", "hence", "thus", "therefore", "meaning", "ie", "eg",
                    "for", "with", "by", "after", "before", "using", "who", "whose",
                    "this", "it", "its", "we", "they", "he", "she", "you", "i", "there",
                    "here", "obtained", "found", "computed", "calculated", "derived", "check"})
EQUALITY = frozenset({"is", "are", "equals", "equal", "was", "were", "be", "gives", "makes",
                      "yields", "becomes"})
PERCENT_WORDS = frozenset({"percent", "percentage", "pct"})
# Scale words multiply the number before them (`3.5 million` is 3500000, `5 dozen` is 60).
SCALE_WORDS = {"hundred": "10^{2}", "thousand": "10^{3}", "million": "10^{6}",
               "billion": "10^{9}", "trillion": "10^{12}", "dozen": "12"}
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
_CHOICE_LABEL_RE = re.compile(r"^\s*(?:\(([A-J])\)|([A-J])\))\s*[.:]?\s+(?=\S)")
_UNIT_TAIL_RE = re.compile(r"(?<=[\d}.])\s+[A-Za-z]{1,3}(?:\s*/\s*[A-Za-z]{1,3})*"
                           r"(?:\s*\^\s*\{?\d\}?)?\s*$")
_SCALED_NUMBER_RE = re.compile(r"(?<![\d.])(\d+(?:\.\d+)?)\s*$")
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


# --------------------------------------------------------------------------- tokens -> runs

# Unit symbols of at most three letters that may follow a number as a bare symbol (`18 m/s`,
# `5 kg`); other letters there are math (`3 x` is 3x). Longer unit names are English words.
UNIT_SYMBOLS = frozenset({
    "m", "cm", "mm", "km", "nm", "um", "g", "kg", "mg", "s", "ms", "h", "hr", "hrs", "min",
    "sec", "L", "mL", "ml", "cL", "dL", "ft", "yd", "mi", "lb", "lbs", "oz", "mph", "kph", "kmh",
    "N", "J", "kJ", "W", "kW", "MW", "kWh", "V", "A", "mA", "K", "Pa", "kPa", "Hz", "kHz", "MHz",
    "mol", "cal", "cc", "gal", "qt", "pt", "sq", "cu", "deg", "rad", "rpm", "yr", "yrs", "wk"})
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
    tokens, extra, override = _drop_asides(
        tokens, {k for k in range(len(tokens)) if _is_word(tokens, k)})
    is_word = {k for k in range(len(tokens)) if _is_word(tokens, k)}
    corrections = _corrections(tokens, is_word)
    runs: list[str] = []
    for phrase in _phrases(tokens):
        lead = next(k for k in phrase if tokens[k][0] != "space")
        word = tokens[lead][1].lower().replace("'", "")
        first_word = next((k for k in phrase if k in is_word or k in corrections), None)
        if _live(runs) and word not in ALTERNATIVE and first_word not in corrections and (
                lead in is_word or any(k in is_word for k in phrase)):
            if word in NEGATION:
                continue  # "18, not 16"
            break  # "18, which is ...", "18; 16 was wrong": an explanation follows
        found, stop = _phrase_runs(tokens, phrase, is_word, corrections)
        runs.extend(found)
        if stop:
            break
    runs, corrected = _apply_corrections(runs)
    if override:  # "18 (actually 16)"
        runs, corrected = override, True
    runs = [r for r in (to_latex(_trim_run(r)) for r in runs + ([] if corrected else extra)) if r]
    return runs, [w for w in words if w not in TEXT_STOPWORDS]


def _trim_run(run: str) -> str:
    """A unit after the number (`18 m/s`), stray punctuation, and unit fragments (`/h` of
    `km/h`) removed."""
    run = _UNIT_TAIL_RE.sub(_drop_unit_tail, run)
    run = re.sub(r"^\s*\.(?!\d)|[-+*/=.:\s]+$|^[\s:=]+", "", run)
    return "" if re.match(r"\s*[/^*]", run) else run


def _drop_unit_tail(match: re.Match) -> str:
    """`18 m/s` -> `18`: a tail of unit symbols goes; any other letters (`3 x`, `5 i`) are math."""
    letters = re.findall(r"[A-Za-z]+", match.group())
    return "" if all(word in UNIT_SYMBOLS for word in letters) else match.group()


def _live(runs: list[str]) -> list[str]:
    """The runs after the last correction mark."""
    marks = [i for i, run in enumerate(runs) if run.startswith(_MARK)]
    return runs[marks[-1] + 1:] if marks else runs


def _apply_corrections(runs: list[str]) -> tuple[list[str], bool]:
    """Resolve correction marks: the runs after the last one that withdraws (one with runs
    after it, or `wrong`/`incorrect`); a mark with nothing after it withdraws nothing
    (`18, actually.`). Returns (runs, whether a correction took effect)."""
    for i in range(len(runs) - 1, -1, -1):
        if runs[i].startswith(_MARK):
            after = [r for r in runs[i + 1:] if not r.startswith(_MARK)]
            if after or runs[i][1:] in WITHDRAW:
                return after, True
    return [r for r in runs if not r.startswith(_MARK)], False


def _corrections(tokens: list, is_word: set[int]) -> set[int]:
    """Indices of correction markers: CORRECTION words, `no` before punctuation or a number,
    and `I mean` (both words)."""
    marks = set()
    for k in range(len(tokens)):
        low = tokens[k][1].lower()
        if tokens[k][0] != "alpha":
            continue
        if k in is_word and low in CORRECTION:
            marks.add(k)
        elif low == "no" and _next_kind(tokens, k) in ("sep", "op", "num"):
            marks.add(k)
        elif low == "mean" and k >= 2 and tokens[k - 2][1].lower() == "i" \
                and tokens[k - 1][0] == "space":
            marks.update((k - 2, k))
    return marks


def _drop_asides(tokens: list, is_word: set[int]) -> tuple[list, list[str], list[str] | None]:
    """Remove top-level bracket groups holding words; keep an `(or 16)` group's math as an
    alternative, and an `(actually 16)` group's as the answer. Returns (tokens without asides,
    alternative runs, the runs of the last correcting aside or None)."""
    out, extra, k, override = [], [], 0, None
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
                elif first in CORRECTION or re.match(r"(?i)(?:i\s+mean|no\s*[,.;:!]|no\s+\d)",
                                                     inner.strip()):
                    override = select_runs(inner)[0] or override
                k = end + 1
                continue
        out.append(tokens[k])
        k += 1
    return out, extra, override


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


def _phrase_runs(tokens: list, phrase: list[int], is_word: set[int], corrections: set[int]
                 ) -> tuple[list[str], bool]:
    """Math runs of one phrase (words split them), correction marks among them (`_MARK`);
    (runs, stop: an explanation began)."""
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
        if k not in is_word and k not in corrections:
            current.append(tokens[k][1])
            continue
        word = tokens[k][1].lower().replace("'", "")
        had_run = close_run()
        if k in corrections:
            runs.append(_MARK + word)
            state.update(negate=False, equal=False)
        elif word in NEGATION:
            state["negate"] = True
        elif word in PERCENT_WORDS and runs and had_run:
            runs[-1] += "\\%"
        elif word in SCALE_WORDS and runs and had_run:  # "3.5 million"
            runs[-1] = _SCALED_NUMBER_RE.sub(r"\1\\times " + SCALE_WORDS[word], runs[-1])
        elif word in CLAUSE and _live(runs):
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
