"""What `--help` shows (issue 22 item 7): flags without a `<bool>` placeholder, and every
benchmark in `eval --help`."""

from __future__ import annotations

import re

import click
import pytest
import typer

from parallel_r1.cli import app
from parallel_r1.eval.benchmarks import BENCHMARKS


def _commands(group: click.Command, path: tuple[str, ...] = ()):
    yield path, group
    for name, sub in getattr(group, "commands", {}).items():
        yield from _commands(sub, (*path, name))


def _help(path: tuple[str, ...]) -> str:
    from typer.testing import CliRunner

    result = CliRunner().invoke(app, [*path, "--help"], terminal_width=80)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("path", [p for p, _ in _commands(typer.main.get_command(app))],
                         ids=lambda p: " ".join(p) or "parallel-r1")
def test_no_command_shows_a_placeholder_for_a_flag(path):
    text = _help(path)
    assert "<bool>" not in text
    assert re.search(r"^\s+--help\s+Show this message and exit\.$", text, re.M)


def test_a_flag_is_listed_bare_and_a_value_option_with_its_type():
    text = _help(("run",))
    assert re.search(r"^\s+--check\s+Validate the recipe", text, re.M)
    assert re.search(r"^\s+--quick\s+Smallest sizes", _help(("grid",)), re.M)
    assert re.search(r"^\s+--samples <int>\s+Samples per problem", _help(("eval",)), re.M)


def test_eval_help_names_every_benchmark():
    text = re.sub(r"-\n\s+", "-", _help(("eval",)))  # the wrapper may break after a hyphen
    listed = re.search(r"any of: (.*?)(?:\.\s+\[default| \(default)", text, re.S).group(1)
    names = set()
    for item in re.sub(r"\s+", " ", listed).strip().split(", "):
        run = re.fullmatch(r"(.*?)(\d+)\.\.(\d+)", item)
        names |= ({f"{run[1]}{n}" for n in range(int(run[2]), int(run[3]) + 1)} if run
                  else {item})
    assert names == set(BENCHMARKS.names())
    assert "synthetic-trap3" in names  # a family the old hand-written list left out


def test_the_command_list_shows_every_summary_whole():
    """click cuts a long first sentence with '...' at the terminal's width; each command and
    group has a one-line summary that fits 80 columns."""
    for path in [(), ("data",), ("models",)]:
        listing = _help(path).split("Commands:", 1)[1]
        rows = [line for line in listing.splitlines() if line.strip()]
        assert rows and not [row for row in rows if row.rstrip().endswith("...")], listing
