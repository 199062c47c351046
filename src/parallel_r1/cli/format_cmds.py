"""Format commands: `check-format` validates and measures the traces of a JSONL file."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    """Add this group's commands to `app`."""
    app.command("check-format")(check_format)


def check_format(
    file: Path = typer.Argument(..., help="JSONL file, one record per line."),
    field: str = typer.Option("trajectory", help="Record field holding the response text."),
    mode: str = typer.Option("strict", help="Format rule: strict (ours) or paper (SPEC §1.3)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    normalize_from: str | None = typer.Option(
        None, help="Also normalise this field (e.g. teacher_output_raw) and compare with --field."),
    max_trace_mb: float = typer.Option(
        8.0, help="Refuse a record (line) longer than this many MB; a real trace is kilobytes."),
) -> None:
    """Validate every record's FIELD and report validity, block/path histograms and issues.

    Records stream: one is in memory at a time."""
    from parallel_r1.format import compare_normalized, summarize

    report = summarize((row[field] for row in read_jsonl(file, field, max_trace_mb=max_trace_mb)),
                       mode).to_dict()
    report["file"], report["field"] = str(file), field
    if normalize_from is not None:
        rows = read_jsonl(file, field, normalize_from, max_trace_mb=max_trace_mb)
        cmp = compare_normalized(rows, source_field=normalize_from, target_field=field)
        report["normalize"] = {
            "source_field": normalize_from, "num_rows": cmp.num_rows, "num_exact": cmp.num_exact,
            "num_source_equal": cmp.num_source_equal,
            "edit_kinds": {"+".join(k) or "none": v for k, v in cmp.edit_kinds.most_common()},
            "mismatch_kinds": dict(cmp.mismatch_kinds.most_common()),
            "mismatch_examples": cmp.mismatch_examples,
        }
    typer.echo(json.dumps(report, indent=2) if as_json else _as_text(report))


def read_jsonl(path: Path, *fields: str, max_trace_mb: float | None = 8.0) -> Iterator[dict]:
    """The records of a JSONL file whose `fields` must be strings, one at a time; a line over
    `max_trace_mb` MB is refused (see `files.read_jsonl`)."""
    from parallel_r1.files import read_jsonl as read

    return (row for _, row in read(path, {name: (str,) for name in fields},
                                   max_line_mb=max_trace_mb))


def _as_text(report: dict) -> str:
    lines = [
        f"{report['file']} [{report['field']}], mode {report['mode']}",
        (f"rows: {report['num_rows']}   valid: {report['num_valid']} ({report['valid_share']:.1%})"
         f"   with a block: {report['num_with_block']}"
         f"   with a valid block: {report['num_with_valid_block']}"),
        (f"without an answer ({report['answer_reading']} reading, as the graders read it): "
         f"{report['num_no_answer']}"),
        "blocks per trace: " + _hist(report["blocks_per_trace"]),
        "paths per block:  " + _hist(report["paths_per_block"]),
    ]
    if report["issues"]:
        lines.append("issues (rows affected, first example):")
        for item in report["issues"]:
            lines.append(f"  {item['code']:<26} {item['rows']:>6}  row {item['example_row']}: "
                         f"{item['example']}")
    norm = report.get("normalize")
    if norm:
        lines.append(f"normalize({norm['source_field']}) == {report['field']}: "
                     f"{norm['num_exact']}/{norm['num_rows']} "
                     f"(unchanged source equal: {norm['num_source_equal']})")
        for kind, count in norm["edit_kinds"].items():
            lines.append(f"  edits {kind:<40} {count:>6}")
        for kind, count in norm["mismatch_kinds"].items():
            example = norm["mismatch_examples"][kind]
            lines.append(f"  differs: {kind:<37} {count:>6}  e.g. {example}")
    return "\n".join(lines)


def _hist(hist: dict) -> str:
    return "  ".join(f"{k}:{v}" for k, v in hist.items()) or "-"
