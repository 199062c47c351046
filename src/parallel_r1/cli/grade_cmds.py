"""Grade command: `grade FILE` extracts and grades the answer of every row of a JSONL file."""

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
        "--output", "-o", help="Write every row with `pred` and `correct` added here.")] = None,
    grader: Annotated[str, typer.Option(
        help="math-verify (ours), paper (the paper's string match) or paper-gsm8k.")
    ] = "math-verify",
    answer_field: Annotated[str, typer.Option(help="Row field holding the gold answer.")] = "answer",
    response_field: Annotated[str, typer.Option(
        help="Row field holding the response text.")] = "response",
) -> None:
    """Grade every row of FILE and print the accuracy and the number of rows without an answer."""
    from parallel_r1.eval.graded import grade_file

    report = grade_file(file, output, grader=grader, response_field=response_field,
                        answer_field=answer_field)
    typer.echo(f"{file}: accuracy {report.accuracy:.4f} ({report.num_correct}/{report.num_rows}) "
               f"with grader {grader}; rows without an answer: {report.num_no_answer}")
    if output is not None:
        typer.echo(f"wrote {report.num_rows} graded rows to {output}")
