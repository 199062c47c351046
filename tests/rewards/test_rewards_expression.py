"""The reduction step of the answer contract: what an answer line is graded as."""

from __future__ import annotations

import string

import pytest

from parallel_r1.rewards.expression import MAX_ANSWER_CHARS, Reduced, reduce_answer
from parallel_r1.rewards.plaintext import to_latex


@pytest.mark.parametrize("answer, value", [
    ("**18**", "18"), ("*18*", "18"), ("`18`", "18"), ("### 18", "18"),
    ("\\boxed{\\boxed{18}}", "18"), ("\\boxed{2} and \\boxed{3}", "2, 3"),
    ("$18$", "18"), ("\\(18\\)", "18"), ("$\\$18$", "18"),
    ("$18", "18"), ("\\$18.50", "18.50"), ("18 dollars", "18"), ("USD 45", "45"),
    ("$18 and $20", "18, 20"), ("1,000", "1000"), ("1{,}000", "1000"), ("1\\,000", "1000"),
    ("18 apples", "18"), ("18 \\text{cm}^2", "18"), ("5 km/h", "5"), ("18 m/s", "18"),
    ("16 (not 18)", "16"), ("18, which is 2 more than 16", "18"), ("18, not 16", "18"),
    ("16 or 18", "16, 18"), ("18 (or 16)", "18, 16"), ("between 16 and 18", "16, 18"),
    ("The answer is 18.", "18"), ("It is 18", "18"), ("x is 5", "x = 5"),
    ("2 and 1/2", "2\\frac{1}{2}"), ("2 1/2", "2\\frac{1}{2}"), ("18 (16 + 2)", "18"),
    ("negative 3", "-3"), ("10 percent", "10\\%"), ("(C) 12", "12"),
    ("3*pi", "3*\\pi"), ("2*sqrt(3)", "2*\\sqrt{3}"), ("4\\sqrt(2)", "4\\sqrt{2}"),
    ("sqrt(sqrt(16))", "\\sqrt{\\sqrt{16}}"), ("exp(2)", "e^{2}"), ("ln(2)", "\\ln(2)"),
    ("2^10", "2^{10}"), ("2**10", "2^{10}"), ("1.5e3", "1.5\\times10^{3}"), ("30°", "30"),
    ("30^\\circ", "30"), ("−3", "-3"), ("approx. 18", "18"), (".5", ".5"),
])
def test_reduction(answer, value):
    assert reduce_answer(answer) == Reduced("math", value)


def test_word_answers_and_empty():
    assert reduce_answer("\\text{even}") == Reduced("text", "even")
    assert reduce_answer("Monday") == Reduced("text", "monday")
    assert reduce_answer("").kind == "empty" and reduce_answer("   ").kind == "empty"
    assert reduce_answer("1" * (MAX_ANSWER_CHARS + 1)).kind == "empty"


def _random_answers(count: int, seed: int = 0) -> list[str]:
    """Answer lines of up to 60 characters drawn from ASCII, the math symbols and markup the
    reducer reads, and any Unicode plane."""
    import random

    rng = random.Random(seed)
    pools = [string.printable, "0123456789+-*/^=()[]{}.,$%\\ ", "−×÷°√π²³½", "".join(
        chr(c) for c in range(0xA0, 0x2FFF, 7))]
    out = []
    for _ in range(count):
        chars = [rng.choice(rng.choice(pools)) if rng.random() < 0.97 else chr(rng.randrange(
            0x20, 0x10FFFF)) for _ in range(rng.randrange(61))]
        out.append("".join(c for c in chars if not 0xD800 <= ord(c) <= 0xDFFF))
    return out


# Deterministic draws rather than hypothesis: in CI's vLLM environment this property test, alone,
# stalled inside hypothesis's engine after the suites before it (issue 21's note).
@pytest.mark.parametrize("chunk", range(4))
def test_reduction_never_raises_and_is_stable(chunk):
    for text in _random_answers(200, seed=chunk):
        once = reduce_answer(text)
        assert once.kind in ("math", "text", "empty"), text
        if once.kind == "math":
            assert reduce_answer(once.value).kind == "math", (text, once)


def test_to_latex_is_idempotent_on_latex():
    for latex in ["\\frac{1}{2}", "2\\sqrt{3}", "\\pi", "x^{2}", "(1, 2]", "10\\%"]:
        assert to_latex(latex) == latex
