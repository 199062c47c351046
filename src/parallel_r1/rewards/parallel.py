"""Parallel-thinking primitives of the rewards: block count, format validity, self-BLEU, efficiency.

All read the response text with the tags in it (the paper's `solution_str_with_special_tokens`).
Blocks, paths and summaries are found as SPEC 4.5's non-greedy regexes find them
(`<Parallel>(.*?)</Parallel>` with `.` matching newlines [inferred: paths span lines in every
real trace]), by `_enclosed`, a scan with the same result in linear time (the regex restarts at
every `<Parallel>` left open, which is quadratic).
"""

from __future__ import annotations

import itertools
import re

from parallel_r1.format.parse import parse
from parallel_r1.format.stats import is_valid_block
from parallel_r1.format.tags import PARALLEL_CLOSE, PARALLEL_OPEN, TAGS
from parallel_r1.format.validate import is_valid
from parallel_r1.rewards.answer import strip_tags  # noqa: F401  (re-exported)

_TAG_RE = re.compile("|".join(re.escape(tag) for tag in TAGS))
_WORD_RE = re.compile(r"\S+")
# Self-BLEU scores every pair of sibling paths; a real block has 2-4 paths. Past this many in
# one block only the first ones are paired, so an adversarial block of 70,000 paths costs
# (MAX_BLEU_PATHS choose 2) comparisons instead of 2.5e9.
MAX_BLEU_PATHS = 16


def _enclosed(text: str, open_tag: str, close_tag: str) -> list[tuple[int, int, str]]:
    """(start of open tag, end of close tag, inner) of each non-greedy `open(.*?)close` match.

    The same matches as `re.finditer(open + "(.*?)" + close, text, re.DOTALL)`: the first
    close after each open, scanning on after it; once no close follows, nothing more matches.
    """
    out, pos = [], 0
    while True:
        start = text.find(open_tag, pos)
        if start < 0:
            return out
        end = text.find(close_tag, start + len(open_tag))
        if end < 0:
            return out
        out.append((start, end + len(close_tag), text[start + len(open_tag):end]))
        pos = end + len(close_tag)


def _blocks(text: str) -> list[str]:
    return [inner for _, _, inner in _enclosed(text, PARALLEL_OPEN, PARALLEL_CLOSE)]


def _paths(block: str) -> list[str]:
    return [inner for _, _, inner in _enclosed(block, "<Path>", "</Path>")]


def _outside_blocks(text: str) -> str:
    """`re.sub(r"<Parallel>(.*?)</Parallel>", " ", text, flags=re.DOTALL)`."""
    parts, pos = [], 0
    for start, end, _ in _enclosed(text, PARALLEL_OPEN, PARALLEL_CLOSE):
        parts.append(text[pos:start])
        parts.append(" ")
        pos = end
    parts.append(text[pos:])
    return "".join(parts)


def num_blocks(text: str) -> int:
    """The paper's n: how many times `<Parallel>` occurs in `text` (well formed or not)."""
    return text.count(PARALLEL_OPEN)


def has_block(text: str) -> bool:
    """The GSM8K rewards' test: `<Parallel>` occurs in `text`."""
    return PARALLEL_OPEN in text


def is_format_valid(text: str, mode: str = "paper") -> bool:
    """The paper's f: its lenient checker (SPEC 1.3; a text with no tags is valid), or with
    mode="strict" our rule (`format.validate.check_strict`: empty paths or summaries refused)."""
    return is_valid(text, mode=mode)


def num_valid_blocks(text: str) -> int:
    """Blocks that are well formed and hold text (`format.stats.is_valid_block`)."""
    return sum(is_valid_block(b) for b in parse(text).blocks)


def self_bleu(text: str) -> float:
    """The paper's B: mean pairwise sentence-BLEU of sibling paths, in [0, 1] (SPEC 4.5).

    For each `<Parallel>…</Parallel>` block, each unordered pair (p, q) of its `<Path>` texts, in
    order, scores `sentence_bleu(p, [q]) / 100`; a block averages its pairs (1.0 with < 2 paths);
    the response averages its blocks (1.0 with no block, so "no block" looks like "no diversity").
    Only the first `MAX_BLEU_PATHS` paths of a block are paired (real blocks have 2-4).

    Raises:
        ImportError: sacrebleu is not installed (`pip install parallel-r1[bleu]`).
    """
    blocks = _blocks(text)
    if not blocks:
        return 1.0
    scores = []
    for block in blocks:
        paths = _paths(block)[:MAX_BLEU_PATHS]
        pairs = list(itertools.combinations(paths, 2))
        if not pairs:
            scores.append(1.0)
            continue
        scores.append(sum(_sentence_bleu(p, q) for p, q in pairs) / len(pairs))
    return sum(scores) / len(scores)


def _sentence_bleu(hypothesis: str, reference: str) -> float:
    try:
        import sacrebleu
    except ImportError as exc:
        raise ImportError(
            "self-BLEU needs sacrebleu: pip install 'parallel-r1[bleu]' (or sacrebleu==2.6.0)"
        ) from exc
    return sacrebleu.sentence_bleu(hypothesis, [reference]).score / 100.0


def _num_words(text: str) -> int:
    # Tags become spaces so that "a</Path><Path>b" counts two words, not one.
    return len(_WORD_RE.findall(_TAG_RE.sub(" ", text)))


def efficiency_gain(text: str) -> tuple[float, dict[str, float]]:
    """The paper's e: the share of words a reader skips by reading only the longest path.

    Words are `\\S+` runs with tags removed. traversed = words outside blocks + for each block
    (its longest path + any summary written inside the block; a block with no path counts in
    full); e = max((total - traversed) / total, 0), and 0 for an empty text (SPEC 4.5).

    Returns:
        (e, {"total_tokens", "traversed_tokens", "num_parallel"}), the paper's logged extras.
    """
    total = _num_words(text)
    blocks = _blocks(text)
    traversed = _num_words(_outside_blocks(text))
    for block in blocks:
        paths = _paths(block)
        if not paths:
            traversed += _num_words(block)
            continue
        summary_words = sum(_num_words(inner) for _, _, inner in
                            _enclosed(block, "<Summary>", "</Summary>"))
        traversed += max(_num_words(p) for p in paths) + summary_words
    gain = max((total - traversed) / total, 0.0) if total else 0.0
    parts = {"total_tokens": float(total), "traversed_tokens": float(traversed),
             "num_parallel": float(num_blocks(text))}
    return gain, parts
