"""Structure statistics of responses: blocks, paths per block, path lengths, block positions.

`response_stats` describes one response; `summarize` aggregates many (histograms, validity and the
commonest issues) for reports such as `parallel-r1 check-format`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from parallel_r1.format.answer import find_answer
from parallel_r1.format.parse import parse
from parallel_r1.format.trace import Block, Trace, has_content
from parallel_r1.format.validate import Issue, validate


@dataclass(frozen=True)
class ResponseStats:
    """The structure of one response.

    `block_positions[b]` is the offset of block b's `<Parallel>` divided by the text length
    (0.0 = at the start). `path_tokens` is None unless a token counter was given.
    """

    num_chars: int
    num_blocks: int
    paths_per_block: tuple[int, ...]
    path_chars: tuple[tuple[int, ...], ...]
    path_tokens: tuple[tuple[int, ...], ...] | None
    block_positions: tuple[float, ...]
    has_valid_block: bool


def is_valid_block(block: Block) -> bool:
    """A well-formed block: closed, >= 2 closed paths, every path holding text, and a summary
    holding text right after it.

    This is the paper's "valid parallel block" (SPEC §1.3) except that only whitespace may sit
    between `</Parallel>` and `<Summary>` (the paper accepts any text there) and that empty paths
    and summaries (whitespace or invisible characters only, `format.trace.has_content`) do not
    count: a block with nothing in it is not parallel thinking, and is what the parallel ratio
    and the strict parallel bonus must not pay for.
    """
    return (block.closed and block.summary is not None and has_content(block.summary.text)
            and block.num_closed_paths >= 2 and all(has_content(p.text) for p in block.paths))


def response_stats(text_or_trace: str | Trace,
                   count_tokens: Callable[[str], int] | None = None) -> ResponseStats:
    """Measure one response.

    Args:
        text_or_trace: the response text, or its already parsed `Trace`.
        count_tokens: optional `text -> number of tokens` (e.g. a tokenizer's encode + len),
            applied to each path's inner text.

    Returns:
        A `ResponseStats`.
    """
    trace = text_or_trace if isinstance(text_or_trace, Trace) else parse(text_or_trace)
    blocks = trace.blocks
    length = max(len(trace.text), 1)
    tokens = None
    if count_tokens is not None:
        tokens = tuple(tuple(count_tokens(p.text) for p in b.paths) for b in blocks)
    return ResponseStats(
        num_chars=len(trace.text),
        num_blocks=len(blocks),
        paths_per_block=tuple(b.num_paths for b in blocks),
        path_chars=tuple(tuple(len(p.text) for p in b.paths) for b in blocks),
        path_tokens=tokens,
        block_positions=tuple(b.start / length for b in blocks),
        has_valid_block=any(is_valid_block(b) for b in blocks),
    )


@dataclass
class FormatSummary:
    """Aggregate of many responses; `issue_examples[code]` is (row number, message), 1-based."""

    mode: str
    num_rows: int = 0
    num_valid: int = 0
    num_with_block: int = 0
    num_with_valid_block: int = 0
    blocks_per_trace: Counter = field(default_factory=Counter)
    paths_per_block: Counter = field(default_factory=Counter)
    issue_counts: Counter = field(default_factory=Counter)  # rows having each issue code
    issue_examples: dict = field(default_factory=dict)
    total_chars: int = 0
    block_position_sum: float = 0.0  # a sum and a count, not a list: constant memory in rows
    num_blocks: int = 0
    num_no_answer: int = 0  # rows where the mode's reading finds no answer (rewards.contract)

    @property
    def valid_share(self) -> float:
        """Share of valid rows (0.0 for no rows)."""
        return self.num_valid / self.num_rows if self.num_rows else 0.0

    def add(self, issues: list[Issue], stats: ResponseStats) -> None:
        """Fold one response in: `issues` from `validate`, `stats` from `response_stats`."""
        self.num_rows += 1
        self.num_valid += not issues
        self.num_with_block += stats.num_blocks > 0
        self.num_with_valid_block += stats.has_valid_block
        self.blocks_per_trace[stats.num_blocks] += 1
        self.paths_per_block.update(stats.paths_per_block)
        self.total_chars += stats.num_chars
        self.block_position_sum += sum(stats.block_positions)
        self.num_blocks += len(stats.block_positions)
        for issue in {i.code: i for i in reversed(issues)}.values():  # first issue of each code
            self.issue_counts[issue.code] += 1
            self.issue_examples.setdefault(issue.code, (self.num_rows, issue.message))

    def to_dict(self, top_issues: int = 10) -> dict:
        """A JSON-ready dict: histograms keyed by str, the `top_issues` commonest codes."""
        position = self.block_position_sum / self.num_blocks if self.num_blocks else None
        by_count = sorted(self.issue_counts.items(), key=lambda kv: (-kv[1], kv[0]))
        return {
            "mode": self.mode,
            "num_rows": self.num_rows,
            "num_valid": self.num_valid,
            "valid_share": self.valid_share,
            "num_with_block": self.num_with_block,
            "num_with_valid_block": self.num_with_valid_block,
            "mean_chars": self.total_chars / self.num_rows if self.num_rows else None,
            "mean_block_position": position,
            "num_no_answer": self.num_no_answer,
            "answer_reading": "strict" if self.mode == "strict" else "paper",
            "blocks_per_trace": {str(k): v for k, v in sorted(self.blocks_per_trace.items())},
            "paths_per_block": {str(k): v for k, v in sorted(self.paths_per_block.items())},
            "issues": [
                {"code": code, "rows": count, "example_row": self.issue_examples[code][0],
                 "example": self.issue_examples[code][1]}
                for code, count in by_count[:top_issues]
            ],
        }


def summarize(texts: Iterable[str], mode: str = "strict") -> FormatSummary:
    """Validate and measure many responses.

    Args:
        texts: the responses, in row order (row numbers in examples are 1-based positions).
        mode: the `validate` mode.

    Returns:
        A `FormatSummary`; `num_no_answer` counts rows without an answer as the graders read
        them (strict: the answer contract, so it equals the `missing_answer` count; paper: the
        paper's reading).

    Raises:
        ConfigError: unknown `mode`.
    """
    validate("", mode)  # fail on a bad mode before any work
    summary = FormatSummary(mode=mode)
    reading = "strict" if mode == "strict" else "paper"
    for text in texts:
        trace = parse(text)
        summary.add(validate(text, mode), response_stats(trace))
        summary.num_no_answer += find_answer(text, reading) is None
    return summary

