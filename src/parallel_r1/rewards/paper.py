"""The paper's answer normaliser (SPEC 4.2, DAPO's Minerva-style `normalize_final_answer`).

Same output as the original on every input, quirks included (`18.` stays `18.`, `1/2` != `0.5`,
"a " is deleted inside words), but in linear time: the original's lazy regexes (`(.*?)\\$(.*?)\\$`,
`\\\\text\\{(.*?)\\}`, `\\\\boxed\\{(.*)\\}`) restart their scan at every position of a line that
lacks the closing character, which is quadratic (a 16 KB answer with one `$` took 3.3 s). Each is
replaced by a scan that gives the same result, line by line (their `.` never crosses a newline);
tests/rewards/test_rewards_paper.py checks them against the original regexes.
"""

from __future__ import annotations

import re

# Data copied as specified, order matters.
_SUBSTITUTIONS = (
    ("an ", ""), ("a ", ""), (".$", "$"), ("\\$", ""), ("\\ ", ""), (" ", ""),
    ("mbox", "text"), (",\\text{and}", ","), ("\\text{and}", ","), ("\\text{m}", "\\text{}"),
)
_REMOVED = (
    "square", "ways", "integers", "dollars", "mph", "inches", "hours", "km", "units", "\\ldots",
    "sue", "points", "feet", "minutes", "digits", "cents", "degrees", "cm", "gm", "pounds",
    "meters", "meals", "edges", "students", "childrentickets", "multiples", "\\text{s}",
    "\\text{.}", "\\text{\ns}", "\\text{}^2", "\\text{}^3", "\\text{\n}", "\\text{}",
    "\\mathrm{th}", "^\\circ", "^{\\circ}", "\\;", ",\\!", "{,}", '"', "\\dots",
)
_FRAC_RE = re.compile(r"(frac)([^{])(.)")
_SQRT_RE = re.compile(r"(sqrt)([^{])")


def normalize_paper(answer: str) -> str:
    """The paper's string normaliser, quirks included (`18.` stays `18.`; `1/2` != `0.5`).

    Keeps the text after the last `=`, applies the substitutions and removals above in order,
    keeps the first `$...$` span of each line, unwraps `\\text{}`, `\\textbf{}`, `\\overline{}` and
    `\\boxed{}`, expands `\\fracab` and `\\sqrta`, drops `$`, drops commas from a digits-and-commas
    string, and strips.
    """
    text = answer.split("=")[-1]
    for before, after in _SUBSTITUTIONS:
        text = text.replace(before, after)
    for removed in _REMOVED:
        text = text.replace(removed, "")
    text = _per_line(text, _first_dollar_span)
    for command in ("\\text{", "\\textbf{", "\\overline{"):
        if command in text:
            text = _per_line(text, lambda line, c=command: _unwrap_lazy(line, c))
    if "\\boxed{" in text:
        text = _per_line(text, _unwrap_boxed_greedy)
    text = _FRAC_RE.sub("frac{\\2}{\\3}", text)
    text = _SQRT_RE.sub("sqrt{\\2}", text)
    text = text.replace("$", "")
    if text.replace(",", "").isdigit():  # str.isdigit, as in the paper (accepts "²")
        text = text.replace(",", "")
    return text.strip()


def _per_line(text: str, fn) -> str:
    return "\n".join(fn(line) for line in text.split("\n"))


def _first_dollar_span(line: str) -> str:
    """`re.sub(r"(.*?)(\\$)(.*?)(\\$)(.*)", "$\\3$", line)` on one line."""
    first = line.find("$")
    second = line.find("$", first + 1) if first >= 0 else -1
    return line if second < 0 else "$" + line[first + 1:second] + "$"


def _unwrap_lazy(line: str, command: str) -> str:
    """`re.sub(r"(<command>)(.*?)(\\})", "\\2", line)` on one line."""
    out, pos = [], 0
    while True:
        start = line.find(command, pos)
        if start < 0:
            break
        close = line.find("}", start + len(command))
        if close < 0:
            break  # no "}" left on the line: no later match either
        out.append(line[pos:start])
        out.append(line[start + len(command):close])
        pos = close + 1
    out.append(line[pos:])
    return "".join(out)


def _unwrap_boxed_greedy(line: str) -> str:
    """`re.sub(r"(\\\\boxed\\{)(.*)(\\})", "\\2", line)` on one line: first box to last `}`."""
    start = line.find("\\boxed{")
    close = line.rfind("}")
    if start < 0 or close < start + len("\\boxed{"):
        return line
    return line[:start] + line[start + len("\\boxed{"):close] + line[close + 1:]
