"""Adversarial texts for the format and reward functions (issue #12 item 7): one place for both
`bench/adversarial_bench.py` (timings) and `tests/rewards/test_text_linear_time.py` (a generous bound).

Each input is a short pattern a policy could spam, repeated to `size` characters. The patterns
target the scans that were quadratic: a search restarted from every opening (`\\boxed{`,
`<Parallel>`, `\\text{`), a position recomputed from the start of the text for every issue,
a lazy regex with two `$`, whitespace runs before a tag, and pairs of sibling paths.
"""

from __future__ import annotations

PATTERNS: dict[str, str] = {
    "boxed_open": "\\boxed{",
    "boxed_nested": "\\boxed{{",
    "fbox_closed": "\\fbox{1}",
    "parallel_open": "<Parallel>",
    "parallel_close": "</Parallel>",
    "path_open": "<Path>",
    "path_close": "</Path>",
    "summary_open": "<Summary>",
    "block_unclosed": "<Parallel><Path>a</Path><Path>",
    "block_valid": "<Parallel><Path>a b</Path><Path>c d</Path></Parallel>\n<Summary>e</Summary>",
    "paths_in_one_block": "<Path>x y</Path>",
    "final_answer": "Final Answer: ",
    "final_answer_colon": "Final Answer:",
    "final_answer_markdown": "**Final Answer**: ",
    "one_dollar": "x",
    "dollars": "$",
    "text_open": "\\text{",
    "frac_sqrt": "\\frac\\sqrt",
    "spaces": " ",
    "newlines": "\n",
    "lt_spaces": "< ",
    "lt_path_spaced": "< path ",
    "parens": "(",
    "hedge_words": "not 18 (or ",
    "digits_commas": "1,",
    "lt_space_run": " ",  # one "<" then spaces (added after the "before" run)
    "label_newline_run": "\n",  # one "Final Answer:" then newlines (added after it)
}


def adversarial(name: str, size: int) -> str:
    """The input `name` (a key of PATTERNS) of about `size` characters."""
    pattern = PATTERNS[name]
    body = pattern * (size // len(pattern) + 1)
    if name == "one_dollar":  # a single `$` then no second one: the paper normaliser's worst case
        return "$" + body[: size - 1]
    if name == "paths_in_one_block":
        return "<Parallel>" + body[:size] + "</Parallel>\n<Summary>s</Summary>\nFinal Answer: 1"
    if name == "final_answer":
        return (body + "1")[:size]
    if name == "lt_space_run":
        return "<" + body[: size - 1]
    if name == "label_newline_run":
        return "Final Answer:" + body[: size - 13]
    return body[:size]


def all_inputs(size: int) -> dict[str, str]:
    """Every adversarial input at about `size` characters."""
    return {name: adversarial(name, size) for name in PATTERNS}
