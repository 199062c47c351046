"""Graded rows: read a JSONL file of responses, grade each against its gold answer, write it back.

Every row keeps all its fields and gains `pred` (the answer as read, null when none), `correct`
(bool) and `timed_out` (the grade ran out of time and counts as wrong); see `rewards.contract`.
The output is written to a temporary file beside it and moved into place with `os.replace`, so a
crash never leaves a half-written file.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from parallel_r1.rewards.grading import DEFAULT_GRADER, GRADERS, grade_response_detail


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


def read_rows(path: Path, response_field: str, answer_field: str) -> Iterator[tuple[int, dict]]:
    """Yield (1-based line, row) for each non-blank line of a JSONL file.

    Raises:
        DataError: unreadable file, bad JSON, a row that is not an object, a response that is not
            a string, or a gold answer that is missing, blank (a blank response would grade
            correct against it) or not a string/number; names file, line and field (see
            `parallel_r1.files.read_jsonl`).
    """
    from parallel_r1.errors import DataError
    from parallel_r1.files import read_jsonl

    for line, row in read_jsonl(path, {response_field: (str,), answer_field: (str, int, float)}):
        if not str(row[answer_field]).strip():
            raise DataError("empty gold answer: a blank response would grade correct against it; "
                            "fill it in or drop the row", file=str(path), line=line,
                            field=answer_field)
        yield line, row


def grade_file(path: Path, output: Path | None = None, *, grader: str = DEFAULT_GRADER,
               response_field: str = "response", answer_field: str = "answer") -> GradeReport:
    """Grade every row of `path`; write the rows with `pred` and `correct` to `output`.

    Args:
        path: JSONL input, one object per line.
        output: where to write the graded rows (atomically); None writes nothing.
        grader: a name in GRADERS ("math-verify", "paper", "paper-gsm8k").
        response_field: field holding the response text.
        answer_field: field holding the gold answer (a string or a number).

    Returns:
        The counts (rows, correct, without an answer).

    Raises:
        DataError: a bad row (see `read_rows`). UnknownNameError: an unknown grader.
    """
    GRADERS.get(grader)  # fail before reading anything
    graded, num_correct, num_none, num_timed_out, num_refused = [], 0, 0, 0, 0
    for _, row in read_rows(path, response_field, answer_field):
        verdict = grade_response_detail(row[response_field], str(row[answer_field]), grader)
        graded.append({**row, "pred": verdict.pred, "correct": verdict.correct,
                       "timed_out": verdict.timed_out, "refused": verdict.refused})
        num_correct += verdict.correct
        num_none += verdict.pred is None
        num_timed_out += verdict.timed_out
        num_refused += verdict.refused
    if output is not None:
        from parallel_r1.files import write_jsonl_atomic

        write_jsonl_atomic(output, graded)
    return GradeReport(len(graded), num_correct, num_none, num_timed_out, num_refused)
