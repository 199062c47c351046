"""Grade command: `grade FILE` extracts and grades the answer of every row of a JSONL file;
`grade --audit FILE` shows the rows where the graders disagree."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Add this group's commands to `app`."""
    app.command("grade")(grade)


def grade(
    file: Annotated[Path, typer.Argument(help="JSONL file, a response and a gold answer a row.")],
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Write every row with `pred`, `correct` and `timed_out` added "
        "here (with --audit: the disagreeing rows).")] = None,
    grader: Annotated[str, typer.Option(
        help="math-verify (ours), paper (the paper's string match) or paper-gsm8k.")
    ] = "math-verify",
    answer_field: Annotated[str, typer.Option(help="Row field holding the gold answer.")] = "answer",
    response_field: Annotated[str, typer.Option(
        help="Row field holding the response text.")] = "response",
    audit: Annotated[bool, typer.Option(
        "--audit", help="Grade with every grader (or --graders) and show where they disagree, "
        "side by side, with a count per kind (the row's `kind` field, else what differs).")
    ] = False,
    graders: Annotated[str | None, typer.Option(
        help="With --audit: comma-separated graders (default: all).")] = None,
    max_trace_mb: Annotated[float, typer.Option(
        help="Refuse a row (line) longer than this many MB; a real trace is kilobytes.")] = 8.0,
    answer_reader: Annotated[str, typer.Option(
        help="Where answers are read: final-answer (the Final-Answer contract, as the RL "
        "reward reads) or common (that, else the last '#### X', else the last 'the answer is X' "
        "/ 'Answer: X'; for models not trained on the contract).")
    ] = "final-answer",
) -> None:
    """Grade every row of FILE; print the accuracy, rows without an answer and timed-out grades."""
    if audit:
        _audit(file, output, graders, response_field, answer_field, max_trace_mb, answer_reader)
        return
    from parallel_r1.eval.graded import grade_file

    report = grade_file(file, output, grader=grader, response_field=response_field,
                        answer_field=answer_field, max_trace_mb=max_trace_mb,
                        reader=answer_reader)
    typer.echo(f"{file}: accuracy {report.accuracy:.4f} ({report.num_correct}/{report.num_rows}) "
               f"with grader {grader}, answer reader {answer_reader}; rows without an answer: "
               f"{report.num_no_answer}; "
               f"grades timed out: {report.num_timed_out}; answers refused as not answer-shaped: "
               f"{report.num_refused}")
    if output is not None:
        typer.echo(f"wrote {report.num_rows} graded rows to {output}")


def _audit(file: Path, output: Path | None, graders: str | None, response_field: str,
           answer_field: str, max_trace_mb: float, reader: str) -> None:
    from parallel_r1.eval.audit import audit_file

    names = [g.strip() for g in graders.split(",") if g.strip()] if graders else None
    report = audit_file(file, names, response_field=response_field, answer_field=answer_field,
                        max_trace_mb=max_trace_mb, reader=reader)
    typer.echo(f"{file}: " + report.table())
    if output is not None:
        from parallel_r1.files import write_jsonl_atomic

        write_jsonl_atomic(output, report.rows)
        typer.echo(f"wrote {len(report.rows)} disagreeing rows to {output}")
