"""When two reduced answers are equal: math-verify's parse, our number rule, and its post-checks.

The equivalence half of the answer contract (`rewards.contract`). math-verify parses both sides
(LaTeX, wrapped in `$...$`); then
- two numbers (no free symbols; `18`, `0.5`, `2^{-99}`, `\\frac{\\sqrt{2}}{2}`, `10\\%`) are compared
  by `numbers_equal`: decimals as written are exact (`0.1` is 1/10, `18.0` is 18), values are
  compared to enough digits to tell them apart (relative, never absolute: `2^{-99}` != `2^{-98}`),
  a percentage `X%` also matches X/100, and a decimal literal of >= 6 significant digits matches
  a value that has no finite decimal expansion (`0.333333` = 1/3, `3.14159` = pi) when it is that
  value correctly rounded or truncated;
- tuples, sets, intervals and matrices whose leaves are all numbers are compared leaf by leaf
  with the same rule (math-verify would compare their leaves with its absolute tolerance);
- anything else (symbols, equations, inequalities, mixed containers) goes to math-verify's
  `verify` (sets may be compared with inequalities: `x > 3` = `(3, \\infty)`).
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
    """Equality of two reduced "math" answers (LaTeX), see the module doc."""
    if _canonical(pred) == _canonical(gold):
        return True
    if is_explosive(pred) or is_explosive(gold):
        return False
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
    """`text` is a decimal literal (>= 6 significant digits) rounding or truncating `exact`,
    and `exact` has no finite decimal expansion (else exact equality decides)."""
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
    return abs(value - approx) < Fraction(1, 10 ** decimals)


def _terminates(value: Any) -> bool:
    """A rational whose denominator has only the primes 2 and 5 (a finite decimal)."""
    if not value.is_Rational:
        return False
    q = int(value.q)
    for prime in (2, 5):
        while q % prime == 0:
            q //= prime
    return q == 1
