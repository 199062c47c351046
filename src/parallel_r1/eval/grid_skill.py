"""Task-independent design checks on responses: can the model do the task's arithmetic at all,
and do its blocks do anything (issue 21, items 1 and 4).

Equation accuracy. An equation chain is integers or decimals joined by `+ - * / ×` into
expressions, and two or more expressions joined by `=` with at least one operator somewhere
(`3+4=7`, `2*3+1=7`, `3*9+9=27+9=36`). Each `=` of a chain is one equation, right when the
expressions on its two sides have the same exact (rational, usual precedence) value; a division
by zero is wrong. Tags count as line breaks, so an equation is read wherever it is written (main
text, paths, summary).

Block use, per block (`format.parse`; a path's *result* is the last number written in it, as
`eval.analysis.classify_block` reads it):
- paths differ: of the blocks where at least two paths reach a result, the share where the
  paths reach more than one distinct result (they cover different candidates);
- summary uses a path: of the blocks with a summary and some path result, the share whose
  summary writes a number that is some path's result;
- verification changes the answer: of the verification blocks (`classify_block`) whose summary
  writes a number and whose text before the block does too, the share where the summary's last
  number differs from the last number written before the block.
Pure Python; reads nothing, writes nothing.
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Any

from parallel_r1.eval.analysis import classify_block, clean_response, numbers, untag
from parallel_r1.eval.report import md_table
from parallel_r1.format.parse import parse

_NUM = r"\d+(?:\.\d+)?"
_OP = r"[-+*/×÷]"
_EXPR = rf"-?{_NUM}(?:\s*{_OP}\s*{_NUM})*"
# a chain starts where no digit, letter, dot or operator sits right before it
_CHAIN = re.compile(rf"(?<![\w.+*/×÷-])({_NUM}(?:\s*{_OP}\s*{_NUM})*(?:\s*=\s*{_EXPR})+)")
_TOKEN = re.compile(rf"{_NUM}|{_OP}")


def _value(expr: str) -> Fraction | None:
    """Exact value of `expr` (numbers and + - * / × ÷, usual precedence); None on x / 0."""
    tokens = _TOKEN.findall(expr)
    if tokens and tokens[0] == "-":  # a negative result: "= -2"
        tokens = ["0", *tokens]
    total, term, op = Fraction(0), Fraction(tokens[0]), "+"
    for sign, raw in zip(tokens[1::2], tokens[2::2]):
        x = Fraction(raw)
        if sign in "*×":
            term *= x
        elif sign in "/÷":
            if x == 0:
                return None
            term /= x
        else:
            total, term, op = total + (term if op == "+" else -term), x, sign
    return total + (term if op == "+" else -term)


def equations(text: str) -> list[tuple[str, bool]]:
    """Every equation written in `text`, in order, with whether it is arithmetically right.

    Returns:
        [(equation text "lhs=rhs", is_right)]; a chain `a=b=c` gives ("a=b", .) and ("b=c", .).
    """
    out = []
    for match in _CHAIN.finditer(untag(text)):
        sides = [s.strip() for s in match.group(1).split("=")]
        if not any(re.search(_OP, s.lstrip("-")) for s in sides):
            continue  # "x = 5" style restatements carry no arithmetic
        values = [_value(s) for s in sides]
        for i in range(len(sides) - 1):
            right = values[i] is not None and values[i] == values[i + 1]
            out.append((f"{sides[i]}={sides[i + 1]}", right))
    return out


def equation_accuracy(responses: list[str]) -> tuple[float | None, int]:
    """(share of the responses' equations that are right, number of equations); the share is
    None when no equation is written."""
    marks = [right for r in responses for _, right in equations(clean_response(r))]
    return (sum(marks) / len(marks) if marks else None), len(marks)


def block_use(responses: list[str]) -> dict[str, Any]:
    """Block-use shares over every block of `responses` (definitions in the module docstring).

    Returns:
        {"num_blocks", "paths_differ", "summary_uses_path", "verification_changes",
         "num_verification"}: the shares are fractions, None where their denominator is 0.
    """
    counts = {k: [0, 0] for k in ("paths_differ", "summary_uses_path", "verification_changes")}
    num_blocks = num_verification = 0
    for response in map(clean_response, responses):
        for block in parse(response).blocks:
            num_blocks += 1
            results = [ns[-1] for ns in (numbers(p.text) for p in block.paths) if ns]
            said = numbers(block.summary.text) if block.summary else []
            if len(results) >= 2:
                counts["paths_differ"][0] += len(set(results)) > 1
                counts["paths_differ"][1] += 1
            if block.summary and results:
                counts["summary_uses_path"][0] += bool(set(said) & set(results))
                counts["summary_uses_path"][1] += 1
            before = response[: block.start]
            if classify_block(before, [p.text for p in block.paths]) == "verification":
                num_verification += 1
                stated = numbers(untag(before))
                if said and stated:
                    counts["verification_changes"][0] += said[-1] != stated[-1]
                    counts["verification_changes"][1] += 1
    return {"num_blocks": num_blocks, "num_verification": num_verification,
            **{k: (n / d if d else None) for k, (n, d) in counts.items()}}


def skill_diagnostics(rows: list[dict]) -> dict[str, Any]:
    """Equation accuracy and block use of one (arm, seed) from its eval rows (`samples.jsonl`).

    Returns:
        {"equation_accuracy", "num_equations", **block_use}.
    """
    responses = [str(r.get("response") or "") for r in rows]
    accuracy, count = equation_accuracy(responses)
    return {"equation_accuracy": accuracy, "num_equations": count, **block_use(responses)}


def _f(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


def skill_table(skill: dict[str, dict[int, dict]], titles: dict[str, str]) -> str:
    """Per arm and seed: equation accuracy (%) and how many equations, blocks, and the block-use
    shares (%) ("–": nothing to count)."""
    rows = [[titles.get(arm, arm), seed, _f(d["equation_accuracy"]), d["num_equations"],
             d["num_blocks"], _f(d["paths_differ"]), _f(d["summary_uses_path"]),
             f"{_f(d['verification_changes'])} (of {d['num_verification']})"]
            for arm, per_seed in skill.items() for seed, d in per_seed.items()]
    return md_table(["Arm", "Seed", "Equations right", "Equations", "Blocks", "Paths differ",
                     "Summary uses a path", "Verification changes answer"], rows)
