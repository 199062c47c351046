"""Plain-text and loosely written math -> LaTeX that math-verify parses as meant.

math-verify reads `pi` as the product p*i, `sqrt(3)` after a digit and `4\\sqrt(2)` as text, `exp`
and `ln` as products of letters, `1.5e3` as 1.5*e*3, and `1\\,000` as 1*0. `to_latex` rewrites
one math run (no English words left, see `rewards.expression`) so that each means what a reader
means: `3*pi` -> `3*\\pi`, `2*sqrt(3)` -> `2*\\sqrt{3}`, `exp(2)` -> `e^{2}`, `ln(2)` -> `\\ln(2)`,
`2^10` -> `2^{10}`, `1.5e3` -> `1.5\\times10^{3}`, `1,000` -> `1000`, `2 1/2` -> `2\\frac{1}{2}`,
`30^\\circ` -> `30`, spacing commands removed. Linear in the run's length.
"""

from __future__ import annotations

import re

# Function names written without a backslash; each becomes the LaTeX command of the same name.
FUNCTIONS = ("arcsin", "arccos", "arctan", "sinh", "cosh", "tanh", "sin", "cos", "tan", "cot",
             "sec", "csc", "ln", "log", "exp", "sqrt", "cbrt")
MATH_WORDS = frozenset(FUNCTIONS + ("pi", "inf", "infty", "infinity", "oo", "deg"))
UNICODE = {"−": "-", "–": "-", "—": "; ", "×": "\\times ", "÷": "\\div ", "·": "\\cdot ",
           "⋅": "\\cdot ", "π": "\\pi ", "√": "\\sqrt", "∞": "\\infty ", "≤": "\\le ",
           "≥": "\\ge ", "≠": "\\ne ", "≈": "=", "°": "", "²": "^{2}", "³": "^{3}",
           "\u00a0": " ", "\u2009": "\u2009", "\u202f": "\u2009", "：": ":", "，": ","}
_UNICODE_RE = re.compile("|".join(map(re.escape, UNICODE)))
_FUNC_RE = re.compile(r"(?<![A-Za-z\\])(" + "|".join(FUNCTIONS) + r")(?![A-Za-z])")
_PI_RE = re.compile(r"(?<![A-Za-z\\])pi(?![A-Za-z])")
_INF_RE = re.compile(r"(?<![A-Za-z\\])(?:infinity|infty|inf|oo)(?![A-Za-z])")
SPACING_RE = re.compile(r"(?<!\\)\\(?:[,;:! ]|quad|qquad|displaystyle|textstyle|left|right|big|Big|"
                         r"bigl|bigr|Bigl|Bigr)(?![A-Za-z])|~")
_DEGREE_RE = re.compile(r"\^\s*\{?\s*\\circ\s*\}?|\\circ|\\degree|(?<=\d)\s*deg(?![A-Za-z])")
THOUSANDS_RE = re.compile(r"(?<![\d.])\d{1,3}(?:(?:,|\{,\}|\\,|\u2009)\d{3})+(?![\d])")
_SCI_RE = re.compile(r"(?<![A-Za-z\\])(\d+(?:\.\d+)?)[eE]([+-]?\d+)(?![\d.A-Za-z])")
_TIMES_TEN_RE = re.compile(r"(\d)\s*(?:\*|x|\\times|\\cdot)\s*10\s*\^")
_MIXED_RE = re.compile(r"^(-?)(\d+)\s+(\d+)\s*/\s*(\d+)$")
_POWER_RE = re.compile(r"\*\*")
_CARET_RE = re.compile(r"\^\s*(-?\d+(?:\.\d+)?|[A-Za-z])")


def is_math_word(word: str) -> bool:
    """A letters run that is math, not English (`pi`, `sqrt`, `ln`, ... in lower case)."""
    return word in MATH_WORDS


def unicode_to_latex(text: str) -> str:
    """Unicode math signs (`−`, `×`, `π`, `√`, `²`, `°`, ...) -> ASCII / LaTeX."""
    return _UNICODE_RE.sub(lambda m: UNICODE[m.group()], text)


def to_latex(run: str) -> str:
    """One math run rewritten as LaTeX that math-verify reads as meant (see the module doc)."""
    text = unicode_to_latex(run).strip()
    text = _DEGREE_RE.sub("", text)
    text = THOUSANDS_RE.sub(lambda m: re.sub(r"\D", "", m.group()), text)
    text = SPACING_RE.sub(" ", text).replace("\u2009", " ")
    mixed = _MIXED_RE.match(text.strip())
    if mixed:  # "2 1/2" is two and a half
        sign, whole, num, den = mixed.groups()
        return f"{sign}{whole}\\frac{{{num}}}{{{den}}}"
    text = _SCI_RE.sub(r"\1\\times10^{\2}", text)
    text = _TIMES_TEN_RE.sub(r"\1\\times10^", text)
    text = _POWER_RE.sub("^", text)
    text = _PI_RE.sub(r"\\pi ", text)
    text = _INF_RE.sub(r"\\infty ", text)
    text = _functions(text)
    text = _CARET_RE.sub(lambda m: "^{" + m.group(1) + "}", text)
    text = re.sub(r"\s+", " ", text).strip()
    return text.strip(" =")


def _functions(text: str) -> str:
    """`sqrt(x)`/`\\sqrt(x)`/`\\sqrt x` -> `\\sqrt{x}`, `cbrt(x)` -> `\\sqrt[3]{x}`,
    `exp(x)` -> `e^{x}`, other names -> their command (`ln(2)` -> `\\ln(2)`)."""
    text = _FUNC_RE.sub(r"\\\1", text)
    out, i = [], 0
    for match in re.finditer(r"\\(sqrt|cbrt|exp)(?![A-Za-z])\s*", text):
        if match.start() < i:
            continue
        out.append(text[i:match.start()])
        name, j = match.group(1), match.end()
        arg, j = _argument(text, j)
        if arg is None:
            out.append(match.group())
            i = j
            continue
        arg = (arg[0], _functions(arg[1]))
        if name == "sqrt":
            out.append("\\sqrt" + arg[0] + "{" + arg[1] + "}" if arg[0] else "\\sqrt{" + arg[1] + "}")
        elif name == "cbrt":
            out.append("\\sqrt[3]{" + arg[1] + "}")
        else:
            out.append("e^{" + arg[1] + "}")
        i = j
    out.append(text[i:])
    return "".join(out)


def _argument(text: str, j: int) -> tuple[tuple[str, str] | None, int]:
    """The argument at `j`: (index part like "[3]", body) from `{..}`, `(..)` or one token."""
    index = ""
    if text.startswith("[", j):
        close = text.find("]", j)
        if close < 0:
            return None, j
        index, j = text[j:close + 1], close + 1
    if j < len(text) and text[j] in "({":
        opener, closer = text[j], ")" if text[j] == "(" else "}"
        depth, k = 0, j
        while k < len(text):
            depth += (text[k] == opener) - (text[k] == closer)
            if depth == 0:
                return (index, text[j + 1:k]), k + 1
            k += 1
        return None, j
    token = re.match(r"\d+(?:\.\d+)?|[A-Za-z]|\\[A-Za-z]+", text[j:])
    if token is None:
        return None, j
    return (index, token.group()), j + token.end()
