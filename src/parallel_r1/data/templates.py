"""Prompt templates by name, or from a file: text with a `{problem}` placeholder.

Ours are written in our own words for the paper's three roles: the parallel-thinking instruction
(SFT and RL), the step-by-step baseline, and no prompt at all. A file may use the paper's
`{Problem}` placeholder too. Chat templates are applied later, by `parallel_r1.models.load`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from parallel_r1.errors import ConfigError
from parallel_r1.format.tags import (
    ANSWER_PREFIX,
    PARALLEL_CLOSE,
    PARALLEL_OPEN,
    PATH_CLOSE,
    PATH_OPEN,
    SUMMARY_CLOSE,
    SUMMARY_OPEN,
)
from parallel_r1.registry import Registry

PLACEHOLDERS = ("{problem}", "{Problem}")


@dataclass(frozen=True)
class Template:
    """Prompt text with a `{problem}` placeholder (a plain str would read as a lazy import path)."""

    text: str


TEMPLATES: Registry[Template] = Registry("template")

TEMPLATES.add("parallel", Template(f"""\
Work through the problem below one step at a time.
When you reach a step that could be worked out in more than one independent way, open a \
parallel block right there:
- the block starts with {PARALLEL_OPEN} and ends with {PARALLEL_CLOSE};
- inside it, write two or more self-contained lines of reasoning, each between {PATH_OPEN} and \
{PATH_CLOSE}; they are written at the same moment, so none may mention another or assume an order;
- directly after {PARALLEL_CLOSE}, say what the paths established together, between \
{SUMMARY_OPEN} and {SUMMARY_CLOSE}.
Use as many blocks as help, wherever they help, never one inside another, and carry on \
reasoning after each summary without announcing the blocks.
The last line of your answer must be "{ANSWER_PREFIX} " followed by the result.

Problem: {{problem}}"""))

TEMPLATES.add("baseline", Template(f"""\
{{problem}}
Reason it through step by step, then give the result on a last line that starts with \
"{ANSWER_PREFIX} \"."""))

TEMPLATES.add("none", Template("{problem}"))


def get_template(name_or_path: str | Path) -> str:
    """The text of a template: a registered name, text holding a placeholder, or a file path.

    Returns:
        the template text, with `{problem}` or `{Problem}` in it.
    Raises:
        ConfigError: the file has no placeholder, or the name is neither known nor a file
            (the message lists the known names).
    """
    name = str(name_or_path)
    if name in TEMPLATES:
        return TEMPLATES.get(name).text
    if any(p in name for p in PLACEHOLDERS):
        return name
    path = Path(name)
    if path.is_file():
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read the template: {exc}", field="template",
                              file=str(path)) from None
        if not any(p in text for p in PLACEHOLDERS):
            raise ConfigError("a template file needs a {problem} (or {Problem}) placeholder",
                              field="template", file=str(path))
        return text
    raise ConfigError(f"unknown template '{name}'; known: {', '.join(TEMPLATES.names())} "
                      "(or a file with a {problem} placeholder)", field="template")


def render_prompt(template: str | Path, problem: str) -> str:
    """Put `problem` into a template (a name, template text, or a file path).

    Substitution is literal, not `str.format`, so braces in LaTeX problems are left alone.
    """
    text = get_template(template)
    for placeholder in PLACEHOLDERS:
        text = text.replace(placeholder, problem)
    return text


def prepare(name_or_path: str | Path, out: str | Path, *, split: str | None = None,
            template: str | Path = "parallel", limit: int | None = None,
            drop_suspect: bool = False, local_dir: str | Path | None = None) -> dict[str, Any]:
    """Load a data set, render each question into a prompt, write JSONL atomically to `out`.

    Each row is the record (id, source, question, answer, extras) plus `prompt` (plain text;
    the chat template is applied when a model is chosen).

    Returns:
        metrics: num_rows, num_suspect, num_dropped, resolved_from, location, out.
    """
    from parallel_r1.data.sources import load_records, write_jsonl

    get_template(template)  # fail before reading a large file
    records, metrics = load_records(name_or_path, split=split, local_dir=local_dir,
                                    drop_suspect=drop_suspect)
    records = records[:limit] if limit is not None else records
    rows = ({**r.to_dict(), "prompt": render_prompt(template, r.question)} for r in records)
    metrics["num_rows"] = write_jsonl(out, rows)
    return metrics | {"out": str(out)}
