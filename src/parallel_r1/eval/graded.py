"""Graded rows: read a JSONL file of responses, grade each against its gold answer, write it back.

Every row keeps all its fields and gains `pred` (the answer as read, null when none), `correct`
(bool) and `timed_out` (the grade ran out of time and counts as wrong); see `rewards.contract`.
Answers are read by the answer contract, or by another named reader (`rewards.readers`).
Rows stream: one is in memory at a time, and the output is written as they are graded to a
temporary file beside it, moved into place with `os.replace` at the end, so a crash never leaves a
half-written file. A line longer than `MAX_TRACE_MB` is refused (see there).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from parallel_r1.rewards.grading import DEFAULT_GRADER, GRADERS, grade_response_detail
from parallel_r1.rewards.readers import ANSWER_READERS, DEFAULT_READER


@dataclass(frozen=True)
class GradeReport:
    """Counts of one graded file."""

    num_rows: int
    num_correct: int
    num_no_answer: int
    num_timed_out: int = 0
    num_refused: int = 0

    @property
    def accuracy(self) -> float:
        """num_correct / num_rows (0.0 for an empty file)."""
        return self.num_correct / self.num_rows if self.num_rows else 0.0


# A row of a graded or checked file is one response: kilobytes (3,000 tokens is ~12 KB; a
# 128k-token context ~0.5 MB). Parsing, validating and grading one cost up to ~50 bytes of memory
# per byte of it, so a longer line is refused by default rather than risk gigabytes: 8 MB is 16x
# the longest context and bounds one row at a few hundred MB.
MAX_TRACE_MB = 8.0


def read_rows(path: Path, response_field: str, answer_field: str, *,
              max_trace_mb: float | None = MAX_TRACE_MB) -> Iterator[tuple[int, dict]]:
    """Yield (1-based line, row) for each non-blank line of a JSONL file, one at a time.

    Raises:
        DataError: unreadable file, a line longer than `max_trace_mb` MB, bad JSON, a row that
            is not an object, a response that is not a string, or a gold answer that is missing,
            blank (a blank response would grade correct against it) or not a string/number;
            names file, line and field (see `parallel_r1.files.read_jsonl`).
    """
    from parallel_r1.errors import DataError
    from parallel_r1.files import read_jsonl

    for line, row in read_jsonl(path, {response_field: (str,), answer_field: (str, int, float)},
                                max_line_mb=max_trace_mb):
        if not str(row[answer_field]).strip():
            raise DataError("empty gold answer: a blank response would grade correct against it; "
                            "fill it in or drop the row", file=str(path), line=line,
                            field=answer_field)
        yield line, row


def grade_file(path: Path, output: Path | None = None, *, grader: str = DEFAULT_GRADER,
               response_field: str = "response", answer_field: str = "answer",
               max_trace_mb: float | None = MAX_TRACE_MB,
               reader: str = DEFAULT_READER) -> GradeReport:
    """Grade every row of `path`, one row in memory at a time; write the rows with `pred` and
    `correct` to `output` as they are graded (a temp file beside it, moved into place at the end).

    Args:
        path: JSONL input, one object per line.
        output: where to write the graded rows (atomically); None writes nothing.
        grader: a name in GRADERS ("math-verify", "paper", "paper-gsm8k").
        response_field: field holding the response text.
        answer_field: field holding the gold answer (a string or a number).
        max_trace_mb: refuse a line longer than this many MB (None: any length).
        reader: where answers are read: "final-answer" (the contract) or "common" (also
            `####` and `the answer is`; see `rewards.readers`).

    Returns:
        The counts (rows, correct, without an answer, timed out, refused).

    Raises:
        DataError: a bad row (see `read_rows`); `output` is then left as it was.
        UnknownNameError: an unknown grader or reader.
    """
    GRADERS.get(grader)  # fail before reading anything
    ANSWER_READERS.get(reader)
    counts = dict.fromkeys(("rows", "correct", "none", "timed_out", "refused"), 0)

    def graded() -> Iterator[dict]:
        for _, row in read_rows(path, response_field, answer_field, max_trace_mb=max_trace_mb):
            verdict = grade_response_detail(row[response_field], str(row[answer_field]), grader,
                                            reader)
            counts["rows"] += 1
            counts["correct"] += verdict.correct
            counts["none"] += verdict.pred is None
            counts["timed_out"] += verdict.timed_out
            counts["refused"] += verdict.refused
            yield {**row, "pred": verdict.pred, "correct": verdict.correct,
                   "timed_out": verdict.timed_out, "refused": verdict.refused}

    if output is None:
        for _ in graded():
            pass
    else:
        from parallel_r1.files import write_jsonl_atomic

        write_jsonl_atomic(output, graded())
    return GradeReport(counts["rows"], counts["correct"], counts["none"], counts["timed_out"],
                       counts["refused"])
