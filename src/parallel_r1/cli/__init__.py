"""The `parallel-r1` command line: each command parses its arguments and makes one library call.

Command groups live in the modules listed in `_GROUPS`; each module has `register(app)`. Only this
package imports typer.
"""

from __future__ import annotations

import errno
import importlib

import typer

app = typer.Typer(
    name="parallel-r1",
    help="Teach language models to think in parallel: data, SFT, RL, serving and evaluation.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # click's plain help: typer's rich panels show flags as `<bool>`
)

# One module per group of commands, so the parts can grow without touching each other.
_GROUPS = ("format_cmds", "grade_cmds", "data_cmds", "models_cmds", "train_cmds", "eval_cmds",
           "serve_cmds", "demo_cmds", "grid_cmds")


@app.callback()
def _root(verbose: bool = typer.Option(
        False, "--verbose", "-v",
        help="Show every warning and third-party progress bar (also $PARALLEL_R1_VERBOSE=1); "
             "may also follow the command.")) -> None:
    """Teach language models to think in parallel: data, SFT, RL, serving and evaluation."""
    from parallel_r1.cli.output import configure_output, is_verbose
    from parallel_r1.cpu_threads import use_threads

    configure_output(is_verbose(verbose))
    use_threads()  # before torch loads; a command's --threads wins


@app.command()
def version() -> None:
    """Print the installed version."""
    from parallel_r1 import __version__

    typer.echo(__version__)


for _name in _GROUPS:
    importlib.import_module(f"parallel_r1.cli.{_name}").register(app)

# One line per command in `--help`'s list (click cuts a docstring's first sentence at the width).
SUMMARIES = {
    "version": "Print the installed version.",
    "check-format": "Check the parallel format of a file's responses.",
    "grade": "Grade a file of responses against gold answers.",
    "run": "Run a recipe's stages (SFT, RL, eval); rerun to resume.",
    "eval": "Evaluate a model on benchmarks: Mean@k, pass@k, maj@k.",
    "analyze": "Plots and a report of a training run.",
    "compare": "One table across evals and runs.",
    "serve": "Serve a model over the OpenAI (and vLLM) API.",
    "demo": "The offline CPU demo: cold start, SFT, RL, eval.",
    "grid": "Run a grid of arms x seeds and compare them.",
    "data": "Data sets, prompts, teacher traces, the synthetic task.",
    "models": "Prepare and inspect model folders.",
    "data list": "The named data sets and where each resolves.",
    "data prepare": "Write a data set's rendered prompts as JSONL.",
    "data synthetic": "Write the synthetic task and its teacher's traces.",
    "data coldstart": "Ask a teacher to write parallel traces.",
    "data postprocess": "Normalise, validate and grade teacher traces.",
    "models prepare": "Write a known model with the six tags added.",
    "models info": "Parameters, tags and provenance of a model folder.",
}


def _summarise(group: typer.Typer, prefix: str = "") -> None:
    for info in group.registered_commands:
        name = info.name or info.callback.__name__.replace("_", "-")
        info.short_help = SUMMARIES.get(prefix + name, info.short_help)
    for sub in group.registered_groups:
        sub.short_help = SUMMARIES.get(prefix + sub.name, sub.short_help)
        _summarise(sub.typer_instance, f"{prefix}{sub.name} ")


_summarise(app)


_NO_ACCESS = (errno.EACCES, errno.EPERM, errno.EROFS)


def _home(arg: str) -> str:
    """A quoted `~/x` (or `--out=~/x`) is the user's home, as the shell would have made it: every
    command sees one path (a literal `./~` folder beside the real one split runs in two)."""
    import os

    flag, eq, value = arg.partition("=") if arg.startswith("--") else ("", "", arg)
    return flag + eq + os.path.expanduser(value) if value.startswith("~") else arg


def main() -> None:
    """Entry point of the `parallel-r1` script: project errors and a path this user may not
    use become one clear line (exit 2); Ctrl-C one line on how to resume (exit 130)."""
    import sys

    from parallel_r1.errors import ParallelR1Error

    args = [_home(a) for a in sys.argv[1:]]
    end = args.index("--") if "--" in args else len(args)
    if "--verbose" in args[:end]:  # a global flag, accepted after the command too
        args.remove("--verbose")
        args.insert(0, "--verbose")
    from parallel_r1.outputs import outputs_written

    outputs_written(clear=True)  # what this command writes, for the Ctrl-C line
    try:
        app(args)
    except ParallelR1Error as exc:
        typer.echo(f"error: {exc}", err=True)
        raise SystemExit(2) from None
    except OSError as exc:
        if exc.errno not in _NO_ACCESS or not exc.filename:
            raise
        typer.echo(f"error: {exc.filename}: {exc.strerror}; give a path this user may read and "
                   "write (e.g. under your home folder)", err=True)
        raise SystemExit(2) from None
    except (KeyboardInterrupt, SystemExit) as exc:  # typer turns Ctrl-C into exit 130
        if isinstance(exc, SystemExit) and exc.code != 130:
            raise
        _interrupted(args[:end])


def _interrupted(args: list[str]) -> None:
    from parallel_r1.cli.interrupt import interrupted_line
    from parallel_r1.files import command_line
    from parallel_r1.outputs import outputs_written

    words = [a for a in args if not a.startswith("-")][:2]
    typer.echo("\n" + interrupted_line(command_line(), words, outputs_written()), err=True)
    raise SystemExit(130) from None
