"""Parallel-thinking primitives of the rewards: block count, format validity, self-BLEU, efficiency.

All read the response text with the tags in it (the paper's `solution_str_with_special_tokens`).
The regexes follow SPEC 4.5; they read blocks with `.` matching newlines [inferred: paths span
lines in every real trace, so the original must have matched across them].
"""

from __future__ import annotations

import itertools
import re

from parallel_r1.format.tags import PARALLEL_OPEN, TAGS
from parallel_r1.format.validate import is_valid
from parallel_r1.rewards.answer import strip_tags  # noqa: F401  (re-exported)

_BLOCK_RE = re.compile(r"<Parallel>(.*?)</Parallel>", re.DOTALL)
_PATH_RE = re.compile(r"<Path>(.*?)</Path>", re.DOTALL)
_SUMMARY_RE = re.compile(r"<Summary>(.*?)</Summary>", re.DOTALL)
_TAG_RE = re.compile("|".join(re.escape(tag) for tag in TAGS))
_WORD_RE = re.compile(r"\S+")


def num_blocks(text: str) -> int:
    """The paper's n: how many times `<Parallel>` occurs in `text` (well formed or not)."""
    return text.count(PARALLEL_OPEN)


def has_block(text: str) -> bool:
    """The GSM8K rewards' test: `<Parallel>` occurs in `text`."""
    return PARALLEL_OPEN in text


def is_format_valid(text: str) -> bool:
    """The paper's f: its lenient checker (SPEC 1.3); a text with no tags is valid."""
    return is_valid(text, mode="paper")


def self_bleu(text: str) -> float:
    """The paper's B: mean pairwise sentence-BLEU of sibling paths, in [0, 1] (SPEC 4.5).

    For each `<Parallel>…</Parallel>` block, each unordered pair (p, q) of its `<Path>` texts, in
    order, scores `sentence_bleu(p, [q]) / 100`; a block averages its pairs (1.0 with < 2 paths);
    the response averages its blocks (1.0 with no block, so "no block" looks like "no diversity").

    Raises:
        ImportError: sacrebleu is not installed (`pip install parallel-r1[bleu]`).
    """
    blocks = _BLOCK_RE.findall(text)
    if not blocks:
        return 1.0
    scores = []
    for block in blocks:
        paths = _PATH_RE.findall(block)
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
    blocks = _BLOCK_RE.findall(text)
    traversed = _num_words(_BLOCK_RE.sub(" ", text))
    for block in blocks:
        paths = _PATH_RE.findall(block)
        if not paths:
            traversed += _num_words(block)
            continue
        summary_words = sum(_num_words(s) for s in _SUMMARY_RE.findall(block))
        traversed += max(_num_words(p) for p in paths) + summary_words
    gain = max((total - traversed) / total, 0.0) if total else 0.0
    parts = {"total_tokens": float(total), "traversed_tokens": float(traversed),
             "num_parallel": float(num_blocks(text))}
    return gain, parts
