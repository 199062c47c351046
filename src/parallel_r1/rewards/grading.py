"""Decide whether an extracted answer equals the gold answer: graders picked by name.

- "math-verify" (our default): HF math-verify's parse + verify, so equal values written differently
  agree (`18.` = `18`, `\\frac{1}{2}` = `0.5`, `1,000` = `1000`, `$4` = `4`, `36.00` = `36`).
- "paper": the paper's Minerva-style string normaliser (SPEC 4.2), quirks included (`18.` != `18`).
- "paper-gsm8k": the paper's GSM8K comparison: `,` and `$` removed, then plain string equality.

Time limits: math-verify's own timeout uses `signal.alarm`, which only works on the main thread of
the main interpreter (and cancels any outer SIGALRM timer, such as pytest-timeout's). We pass it
there; on any other thread we pass no timeout (math-verify's own advice) and rely on a length
limit instead: answers longer than `MAX_ANSWER_CHARS` are never parsed and grade as wrong.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Callable

from parallel_r1.registry import Registry
from parallel_r1.rewards.answer import (
    PAPER_WINDOW,
    extract_answer,
    extract_final_answer,
    strip_tags,
)

Grader = Callable[[str, str], bool]
GRADERS: Registry[Grader] = Registry("grader")
DEFAULT_GRADER = "math-verify"
MAX_ANSWER_CHARS = 512
TIMEOUT_SECONDS = 5


def grade(pred: str | None, gold: str, grader: str = DEFAULT_GRADER) -> bool | None:
    """Grade one extracted answer against the gold answer.

    Args:
        pred: the extracted answer (see `rewards.answer`), or None when the response gave none.
        gold: the gold answer string.
        grader: a name in GRADERS ("math-verify", "paper", "paper-gsm8k") or "pkg.mod:fn".

    Returns:
        True or False, or None when `pred` is None (no answer to grade).

    Raises:
        UnknownNameError: `grader` is not registered.
    """
    fn = GRADERS.get(grader)
    if pred is None:
        return None
    return bool(fn(pred, str(gold)))


def grade_response(response: str, gold: str,
                   grader: str = DEFAULT_GRADER) -> tuple[str | None, bool]:
    """Extract the answer of a whole response and grade it.

    Args:
        response: the response text (tags may be present).
        gold: the gold answer.
        grader: "paper" runs the paper's math pipeline (last `Final Answer:` in the last 300
            characters of the tag-free text, Minerva normaliser); any other grader reads the last
            `Final Answer:` line of the whole text, else the last `\\boxed{}`.

    Returns:
        (pred, correct): pred is None when no answer was found, and then correct is False.

    Raises:
        UnknownNameError: `grader` is not registered.
    """
    if grader == "paper":
        pred = extract_final_answer(strip_tags(response), window=PAPER_WINDOW)
        return pred, paper_equal("[INVALID]" if pred is None else pred, str(gold))
    pred = extract_answer(response)
    return pred, bool(grade(pred, gold, grader))


# --------------------------------------------------------------------------- math-verify


@GRADERS.register("math-verify")
def math_verify_equal(pred: str, gold: str) -> bool:
    """True when math-verify finds `pred` and `gold` mathematically equal (never raises)."""
    if len(pred) > MAX_ANSWER_CHARS or len(gold) > MAX_ANSWER_CHARS:
        return False
    from math_verify import verify  # lazy: sympy is slow to import

    seconds = _timeout_here()
    gold_parsed = _parse(gold, seconds)
    pred_parsed = _parse(pred, seconds)
    if not gold_parsed or not pred_parsed:
        return False
    try:
        # verify() wants lists: given tuples it silently returns False.
        return bool(verify(list(gold_parsed), list(pred_parsed), timeout_seconds=seconds))
    except Exception:  # noqa: BLE001  math-verify raises on odd sympy input; never stop training
        return False


def _timeout_here() -> int | None:
    """math-verify's signal timeout works only on the main thread; elsewhere we pass none."""
    return TIMEOUT_SECONDS if threading.current_thread() is threading.main_thread() else None


_LATEX_COMMAND_RE = re.compile(r"\\[A-Za-z]+(\{[^{}]*\})?")
_WORD_RE = re.compile(r"[A-Za-z]{2,}")
_THOUSANDS_RE = re.compile(r"^[-−]?\d{1,3}(,\d{3})+(\.\d+)?$")


def clean_answer(answer: str) -> str:
    """Undo the writing habits that make math-verify misread a final answer.

    Strips a sentence-final period (`18.` -> `18`), currency dollars (`\\$4`, a lone `$4`) and
    thousands separators in plain numbers (`1,000` -> `1000`; `3,4` stays, it is a pair).
    """
    text = answer.strip()
    while text.endswith(".") and not text.endswith(".."):
        text = text[:-1].rstrip()
    text = text.replace("\\$", "")
    if text.count("$") % 2 == 1:
        text = text.replace("$", "")
    if _THOUSANDS_RE.match(text):
        text = text.replace(",", "")
    return text.strip()


@functools.lru_cache(maxsize=65536)
def _parse(answer: str, seconds: int | None) -> tuple:
    """Parse one answer with math-verify; an empty tuple when nothing parses.

    A formula (no English words outside LaTeX commands) is read as LaTeX math, wrapped in `$...$`
    when it has no delimiters, so `1, 2` is a set and not the number 2. Text with words
    ("18 apples", "The answer is 18") goes through math-verify's free-text extraction.
    """
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse

    text = clean_answer(answer)
    if not text:
        return ()
    configs = [LatexExtractionConfig(), ExprExtractionConfig()]
    try:
        if not _WORD_RE.search(_LATEX_COMMAND_RE.sub("", text)):
            wrapped = text if "$" in text else f"${text}$"
            found = parse(wrapped, [LatexExtractionConfig()], parsing_timeout=seconds)
            if found and not isinstance(found[0], str):
                return tuple(found)
        return tuple(parse(text, configs, parsing_timeout=seconds))
    except Exception:  # noqa: BLE001  (as above: an unparsable answer is a wrong answer)
        return ()


# --------------------------------------------------------------------------- the paper's


# The paper's Minerva normaliser (DAPO's, SPEC 4.2), data copied as specified, order matters.
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


def normalize_paper(answer: str) -> str:
    """The paper's string normaliser, quirks included (`18.` stays `18.`; `1/2` != `0.5`).

    Keeps the text after the last `=`, applies the substitutions and removals above in order,
    keeps the first `$...$` span, unwraps `\\text{}`, `\\textbf{}`, `\\overline{}` and `\\boxed{}`,
    expands `\\fracab` and `\\sqrta`, drops `$`, drops commas from a digits-and-commas string, and
    strips.
    """
    text = answer.split("=")[-1]
    for before, after in _SUBSTITUTIONS:
        text = text.replace(before, after)
    for removed in _REMOVED:
        text = text.replace(removed, "")
    text = re.sub(r"(.*?)(\$)(.*?)(\$)(.*)", "$\\3$", text)
    text = re.sub(r"(\\text\{)(.*?)(\})", "\\2", text)
    text = re.sub(r"(\\textbf\{)(.*?)(\})", "\\2", text)
    text = re.sub(r"(\\overline\{)(.*?)(\})", "\\2", text)
    text = re.sub(r"(\\boxed\{)(.*)(\})", "\\2", text)
    text = re.sub(r"(frac)([^{])(.)", "frac{\\2}{\\3}", text)
    text = re.sub(r"(sqrt)([^{])", "sqrt{\\2}", text)
    text = text.replace("$", "")
    if text.replace(",", "").isdigit():  # str.isdigit, as in the paper (accepts "²")
        text = text.replace(",", "")
    return text.strip()


@GRADERS.register("paper")
def paper_equal(pred: str, gold: str) -> bool:
    """The paper's math grader: normalised strings are equal."""
    return normalize_paper(pred) == normalize_paper(gold)


@GRADERS.register("paper-gsm8k")
def paper_gsm8k_equal(pred: str, gold: str) -> bool:
    """The paper's GSM8K grader: `,` and `$` removed from the prediction, then `==` (no strip)."""
    return pred.replace(",", "").replace("$", "") == gold
