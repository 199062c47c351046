"""When two reduced answers are equal: math-verify's parse, our number rule, and its post-checks.

The equivalence half of the answer contract (`rewards.contract`). math-verify parses both sides
(LaTeX, wrapped in `$...$`); then
- two numbers (no free symbols; `18`, `0.5`, `2^{-99}`, `\\frac{\\sqrt{2}}{2}`, `10\\%`) are compared
  by `numbers_equal`: decimals as written are exact (`0.1` is 1/10, `18.0` is 18), values are
  compared to enough digits to tell them apart (relative, never absolute: `2^{-99}` != `2^{-98}`;
  values equal to 50 digits are confirmed with 500, so `\pi + 10^{-60}` != `\pi`),
  a percentage `X%` also matches X/100, and a decimal literal of >= 6 significant digits matches
  a value that has no finite decimal expansion (`0.333333` = 1/3, `3.14159` = pi) when it is that
  value correctly rounded or truncated;
- tuples, sets, intervals and matrices whose leaves are all numbers are compared leaf by leaf
  with the same rule (math-verify would compare their leaves with its absolute tolerance);
- anything else (symbols, equations, inequalities, mixed containers) goes to math-verify's
  `verify` (sets may be compared with inequalities: `x > 3` = `(3, \\infty)`).
An answer with brackets nested deeper than `MAX_BRACKET_DEPTH` (20) or more than `MAX_BRACKETS`
(200) of them is refused before math-verify parses it (`AnswerRefused`): wrong, and counted.
"""

from __future__ import annotations

import functools
import re
from fractions import Fraction
from typing import Any

MIN_SIGNIFICANT = 6
MAX_DIGITS = 2000  # evaluation precision cap (decimal digits)
_DECIMAL_RE = re.compile(r"^-?\d+\.\d+$")
# Inputs whose evaluation could take unbounded time in C code (never interrupted by a timeout):
# power towers, huge exponents, factorials of large numbers.
_EXPLOSIVE_RE = re.compile(r"\^\s*\{[^{}]*\^|\^\s*\{?\s*-?\d{5,}|\d{4,}\s*!|\)\s*!|\}\s*!")


# Bounds on the brackets of an answer (after reduction): math-verify's parser takes seconds on
# bracket-heavy lines (`[` x 800, `(` x 1990, `[1,` x 300: up to the 5 s limit each), and no
# answer of GSM8K, MATH, AMC or AIME comes near them (the corpus and the 341 real traces: depth
# <= 3, <= 10 brackets; a 5 x 5 matrix of fractions has about 100).
MAX_BRACKET_DEPTH = 20
MAX_BRACKETS = 200


class AnswerRefused(ValueError):
    """An answer is not answer-shaped (too many or too deeply nested brackets): graded wrong
    before math-verify sees it, and counted (`Verdict.refused`)."""


def check_shape(latex: str) -> None:
    """Raise AnswerRefused when `latex` nests brackets deeper than MAX_BRACKET_DEPTH or holds
    more than MAX_BRACKETS of them (`(`, `)`, `[`, `]`, `{`, `}`; unclosed ones count)."""
    count = sum(latex.count(c) for c in "()[]{}")
    if count > MAX_BRACKETS:
        raise AnswerRefused(f"{count} brackets (at most {MAX_BRACKETS})")
    depth = 0
    for char in latex:
        if char in "([{":
            depth += 1
            if depth > MAX_BRACKET_DEPTH:
                raise AnswerRefused(f"brackets nested over {MAX_BRACKET_DEPTH} deep")
        elif char in ")]}":
            depth = max(0, depth - 1)


def is_explosive(latex: str) -> bool:
    """True for answers sympy might take unbounded time to evaluate (`9^{9^{9}}`, `10000!`)."""
    return bool(_EXPLOSIVE_RE.search(latex))


@functools.lru_cache(maxsize=65536)
def parse_latex(latex: str) -> tuple:
    """math-verify's parse of one reduced answer (LaTeX), as a tuple (empty when it fails)."""
    import math_verify.grader as mv_grader
    import math_verify.parser as mv_parser
    from math_verify import LatexExtractionConfig, parse

    # We time-limit whole grades ourselves (rewards.deadline); silence math-verify's warning
    # that its own signal-based limit is off.
    mv_parser.TIMEOUT_WARNING_SHOWN = mv_grader.TIMEOUT_WARNING_SHOWN = True
    try:
        found = parse(f"${latex}$", [LatexExtractionConfig(boxed_match_priority=-1)],
                      parsing_timeout=None)
    except Exception:  # noqa: BLE001  an unparsable answer is a wrong answer
        return ()
    return tuple(found)


def math_equal(pred: str, gold: str) -> bool:
    """Equality of two reduced "math" answers (LaTeX), see the module doc.

    Raises:
        AnswerRefused: either side is not answer-shaped (`check_shape`).
    """
    if _canonical(pred) == _canonical(gold):
        return True
    if is_explosive(pred) or is_explosive(gold):
        return False
    check_shape(pred)
    check_shape(gold)
    pred_parsed, gold_parsed = parse_latex(pred), parse_latex(gold)
    if not pred_parsed or not gold_parsed or isinstance(pred_parsed[0], str) \
            or isinstance(gold_parsed[0], str):
        return False
    p, g = pred_parsed[0], gold_parsed[0]
    verdict = structural_equal(p, g, pred, gold)
    if verdict is not None:
        return verdict
    from math_verify import verify

    try:
        return bool(verify([g], [p], timeout_seconds=None, allow_set_relation_comp=True))
    except Exception:  # noqa: BLE001
        return False


def _canonical(latex: str) -> str:
    return re.sub(r"\s+", "", latex).replace("\\left", "").replace("\\right", "")


def structural_equal(p: Any, g: Any, p_text: str = "", g_text: str = "") -> bool | None:
    """Our verdict when both sides are numbers or same-shaped containers of numbers, else None."""
    from sympy import FiniteSet, Interval, MatrixBase, Tuple

    if is_number(p) and is_number(g):
        return numbers_equal(p, g, p_text, g_text)
    if isinstance(p, Tuple) and isinstance(g, Tuple):
        return len(p) == len(g) and _all_leaves(list(p), list(g), ordered=True)
    if isinstance(p, FiniteSet) and isinstance(g, FiniteSet):
        return len(p) == len(g) and _all_leaves(list(p.args), list(g.args), ordered=False)
    if isinstance(p, Interval) and isinstance(g, Interval):
        if (p.left_open, p.right_open) != (g.left_open, g.right_open):
            return False
        return _all_leaves([p.start, p.end], [g.start, g.end], ordered=True)
    if isinstance(p, MatrixBase) and isinstance(g, MatrixBase):
        return p.shape == g.shape and _all_leaves(list(p), list(g), ordered=True)
    return None


def _all_leaves(ps: list, gs: list, *, ordered: bool) -> bool | None:
    if not all(is_number(x) for x in ps + gs):
        return None
    if ordered:
        return all(numbers_equal(a, b) for a, b in zip(ps, gs))
    left = list(gs)
    for a in ps:  # greedy matching of set elements (sets are small)
        match = next((i for i, b in enumerate(left) if numbers_equal(a, b)), None)
        if match is None:
            return False
        left.pop(match)
    return True


def is_number(expr: Any) -> bool:
    """A sympy expression with no free symbols that evaluates to a number (oo included)."""
    from sympy import Basic, Expr

    if not isinstance(expr, Basic) or not isinstance(expr, Expr):
        return False
    try:
        return not expr.free_symbols and bool(expr.is_number)
    except Exception:  # noqa: BLE001
        return False


def numbers_equal(p: Any, g: Any, p_text: str = "", g_text: str = "") -> bool:
    """The number rule of the module doc (exact values, relative comparison, %, decimals)."""
    for a in _percent_readings(p):
        for b in _percent_readings(g):
            if _values_equal(a, b) or _approximates(p_text, b) or _approximates(g_text, a):
                return True
    return False


def _percent_readings(expr: Any) -> list:
    """[X, X/100] for math-verify's `X%` (X * UnevaluatedExpr(1/100)); else [expr]."""
    from sympy import Mul, Rational, UnevaluatedExpr

    if isinstance(expr, Mul) and len(expr.args) == 2 and \
            expr.args[1] == UnevaluatedExpr(Rational(1, 100)):
        x = _exact(expr.args[0])
        return [x, x / 100]
    return [_exact(expr)]


def _exact(expr: Any) -> Any:
    """Floats as written -> exact rationals (`0.1` -> 1/10), unevaluated parts evaluated."""
    from sympy import Float, Rational, UnevaluatedExpr

    expr = expr.replace(lambda x: isinstance(x, UnevaluatedExpr), lambda x: x.args[0])
    return expr.replace(lambda x: isinstance(x, Float), lambda x: Rational(str(x)))


def _values_equal(a: Any, b: Any) -> bool:
    from sympy import Rational, nan, zoo

    if a.is_Rational and b.is_Rational:
        return bool(Rational(a) == Rational(b))
    if a.has(nan, zoo) or b.has(nan, zoo):
        return False
    if a.is_infinite or b.is_infinite:
        return bool(a == b)
    digits = _digits_needed(a, b)
    if not _close(a, b, digits):
        return False
    # Equal to `digits` digits: confirm with ten times as many (`\pi + 10^{-60}` != `\pi`).
    # Cheap (under a millisecond for 500 digits) and only paid by answers that look right.
    more = min(MAX_DIGITS, 10 * digits)
    return more == digits or _close(a, b, more)


def _close(a: Any, b: Any, digits: int) -> bool:
    """`a` and `b` agree to `digits` - 10 significant digits (relative to their size)."""
    from sympy import Rational

    va, vb = a.evalf(digits), b.evalf(digits)
    if va == vb:
        return True
    scale = max(abs(va), abs(vb))
    return bool(scale != 0 and abs(va - vb) <= scale * Rational(1, 10 ** (digits - 10)))


def _digits_needed(a: Any, b: Any) -> int:
    """Digits that tell apart two values of this size: 50, or the integer digits + 30."""
    import math

    size = 0.0
    for x in (a, b):
        try:
            magnitude = float(abs(x.evalf(15)))
        except (TypeError, ValueError, OverflowError):
            return MAX_DIGITS
        if not math.isfinite(magnitude):
            return MAX_DIGITS
        if magnitude > 0:
            size = max(size, math.log10(magnitude))
    return int(min(MAX_DIGITS, max(50, size + 30)))


def _approximates(text: str, exact: Any) -> bool:
    """`text` is a decimal literal (>= 6 significant digits) equal to `exact` rounded (half up)
    or truncated to its own number of decimals (`0.666667` and `0.666666` for 2/3, not
    `0.666665`), and `exact` has no finite decimal expansion (else exact equality decides)."""
    if not _DECIMAL_RE.match(text.strip()) or not exact.is_real or _terminates(exact):
        return False
    digits = text.strip().lstrip("-").replace(".", "").lstrip("0")
    if len(digits) < MIN_SIGNIFICANT:
        return False
    decimals = len(text.strip().split(".")[1])
    value = Fraction(text.strip())
    try:
        approx = Fraction(str(exact.evalf(decimals + 30)))
    except (TypeError, ValueError):
        return False
    # `exact` has no finite expansion, so it is never a rounding tie at `decimals` places.
    scaled = abs(approx) * 10 ** decimals
    sign = -1 if approx < 0 else 1
    truncated = Fraction(sign * int(scaled), 10 ** decimals)
    rounded = Fraction(sign * int(scaled + Fraction(1, 2)), 10 ** decimals)
    return value in (truncated, rounded)


def _terminates(value: Any) -> bool:
    """A rational whose denominator has only the primes 2 and 5 (a finite decimal)."""
    if not value.is_Rational:
        return False
    q = int(value.q)
    for prime in (2, 5):
        while q % prime == 0:
            q //= prime
    return q == 1
