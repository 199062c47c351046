"""Where graders disagree: every row graded by several graders, the disagreements side by side.

`parallel-r1 grade --audit FILE` prints them. A row's kind is its `kind` field when it has one
(the conformance corpus does), else what differs: "a grader reads no answer", "different
answers read", or "same answer, different verdict".
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from parallel_r1.rewards.grading import GRADERS, grade_response_detail
from parallel_r1.rewards.readers import ANSWER_READERS, DEFAULT_READER


@dataclass
class AuditReport:
    """Rows graded by every grader; `rows` holds the disagreements only."""

    graders: list[str]
    num_rows: int = 0
    num_correct: dict[str, int] = field(default_factory=dict)
    rows: list[dict] = field(default_factory=list)
    kinds: Counter = field(default_factory=Counter)  # disagreements per kind

    def table(self, limit: int = 50) -> str:
        """Text: the counts, up to `limit` disagreeing rows side by side, the count per kind."""
        lines = [f"{self.num_rows} rows; graders disagree on {len(self.rows)}; correct: "
                 + ", ".join(f"{g} {self.num_correct.get(g, 0)}" for g in self.graders)]
        if self.rows:
            lines.append("line | kind | gold | " + " | ".join(self.graders))
        for row in self.rows[:limit]:
            cells = [f"{'ok ' if v['correct'] else 'no '}{_short(v['pred'])}"
                     for v in (row["grades"][g] for g in self.graders)]
            lines.append(f"{row['line']} | {row['kind']} | {_short(row['gold'])} | "
                         + " | ".join(cells))
        if len(self.rows) > limit:
            lines.append(f"... {len(self.rows) - limit} more (write them all with --output)")
        if self.kinds:
            lines.append("disagreements per kind:")
            lines += [f"  {kind:<40} {count:>6}" for kind, count in self.kinds.most_common()]
        return "\n".join(lines)


def _short(text: object, width: int = 40) -> str:
    value = "(none)" if text is None else " ".join(str(text).split())
    return value if len(value) <= width else value[:width - 1] + "…"


def audit_file(path: Path, graders: list[str] | None = None, *,
               response_field: str = "response", answer_field: str = "answer",
               kind_field: str = "kind", max_trace_mb: float | None = 8.0,
               reader: str = DEFAULT_READER) -> AuditReport:
    """Grade every row of a JSONL file with each grader and collect the rows they disagree on.

    Args:
        path: JSONL input, a response and a gold answer a row.
        graders: grader names (default: every registered grader).
        response_field, answer_field: the row fields; kind_field: a row field naming the row's
            kind, if present. max_trace_mb: refuse a longer line (None: any length).
        reader: where every grader reads answers (`rewards.readers`).

    Returns:
        The report (rows in file order, each with line, kind, gold and every grader's verdict).

    Raises:
        DataError: a bad row (file, line, field). UnknownNameError: an unknown grader or reader.
    """
    from parallel_r1.eval.graded import read_rows

    ANSWER_READERS.get(reader)
    graders = list(graders or GRADERS.names())
    for name in graders:
        GRADERS.get(name)
    report = AuditReport(graders, num_correct={g: 0 for g in graders})
    for line, row in read_rows(path, response_field, answer_field, max_trace_mb=max_trace_mb):
        gold = str(row[answer_field])
        verdicts = {g: grade_response_detail(row[response_field], gold, g, reader)
                    for g in graders}
        report.num_rows += 1
        for g, v in verdicts.items():
            report.num_correct[g] += v.correct
        if len({v.correct for v in verdicts.values()}) == 1:
            continue
        kind = str(row.get(kind_field) or _difference(list(verdicts.values())))
        report.kinds[kind] += 1
        report.rows.append({"line": line, "kind": kind, "gold": gold, "grades": {
            g: {"pred": v.pred, "correct": v.correct, "timed_out": v.timed_out}
            for g, v in verdicts.items()}})
    return report


def _difference(verdicts: list) -> str:
    preds = [v.pred for v in verdicts]
    if any(p is None for p in preds):
        return "a grader reads no answer"
    if len(set(preds)) > 1:
        return "different answers read"
    return "same answer, different verdict"
