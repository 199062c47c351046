"""PNG plots of a run (matplotlib Agg, imported on first use): curves over steps, step time.

`draw_*` functions return the matplotlib Figure (tests read its artists); `plot_*` draw and
write it atomically. Steps are whole numbers on every x axis; a title fits inside its figure.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from parallel_r1.outputs import temp_name


def pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend (imported on first use: plotting is optional)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_png(fig: Any, path: str | Path) -> Path:
    """Write `fig` to `path` atomically (a hidden temporary, then a rename) and close it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(path.with_name(path.stem), suffix=".png")
    fig.savefig(tmp)
    pyplot().close(fig)
    os.replace(tmp, path)
    return path


def integer_steps(ax: Any) -> None:
    """Ticks of the x axis on whole steps only (2 steps would otherwise show 1.2, 1.4, ...)."""
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))


def draw_lines(title: str, xlabel: str, series: dict[str, tuple[list, list]], ylabel: str = "",
               styles: dict[str, dict] | None = None, ylim: tuple[float, float] | None = None
               ) -> Any:
    """A Figure with a line per series {label: (steps, values)}; `styles` gives a series its
    matplotlib keywords (linestyle, marker, zorder, ...)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=100, layout="constrained")
    for label, (xs, ys) in series.items():
        style = {"marker": "o", "markersize": 3, **(styles or {}).get(label, {})}
        ax.plot(xs, ys, label=label, **style)
    ax.set_title(title, wrap=True)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if ylim:
        ax.set_ylim(*ylim)
    integer_steps(ax)
    ax.grid(alpha=0.3)
    if len(series) > 1:
        ax.legend(fontsize=8)
    return fig


def plot_lines(path: str | Path, title: str, xlabel: str, series: dict[str, tuple[list, list]],
               ylabel: str = "", **kwargs: Any) -> Path:
    """`draw_lines` written to `path` as a PNG (atomically)."""
    return save_png(draw_lines(title, xlabel, series, ylabel, **kwargs), path)


def plot_phases(path: str | Path, per_step: dict[int, dict]) -> Path | None:
    """Stacked bars of seconds per step by phase (the `time/<phase>_s` metrics), or None."""
    names = list(dict.fromkeys(k for figs in per_step.values() for k in figs
                               if k.startswith("time/") and k != "time/step_s"))
    names = [k for k in names if any(f.get(k) for f in per_step.values())]
    steps = [s for s, f in per_step.items() if any(k in f for k in names)]
    if not names or not steps:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.8), dpi=100, layout="constrained")
    bottom = np.zeros(len(steps))
    for key in names:
        ys = np.array([float(per_step[s].get(key) or 0.0) for s in steps])
        ax.bar(steps, ys, bottom=bottom, width=0.8, label=key[5:-2], linewidth=0)
        bottom += ys
    ax.set(title="Where a step's time goes", xlabel="step", ylabel="seconds per step")
    integer_steps(ax)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    return save_png(fig, path)


# The quartiles of block position are drawn dashed with their own markers, above the mean and
# the median: with few blocks per step they often coincide with the median, which hid them.
_QUARTILES = {"mean": {"linestyle": ":", "zorder": 2}, "median": {"zorder": 2},
              "q25": {"linestyle": "--", "marker": "v", "markersize": 5, "zorder": 3},
              "q75": {"linestyle": "--", "marker": "^", "markersize": 5, "zorder": 3}}
CURVES = (  # (file, title, [(label, key)], y label, styles, y limits)
    ("reward.png", "Reward", [("reward", "reward")], "mean reward", None, None),
    ("accuracy.png", "Accuracy", [("accuracy", "accuracy")], "share correct", None, None),
    ("parallel_ratio.png", "Parallel ratio", [("parallel ratio", "parallel_ratio")],
     "share with a valid block", None, None),
    ("response_length.png", "Response length", [("length", "response_length")], "mean length",
     None, None),
    ("blocks_per_response.png", "Blocks per response", [("blocks", "blocks_per_response")],
     "mean blocks", None, None),
    ("block_position.png", "Where blocks sit (0 = start of response, 1 = end)",
     [("mean", "block_position"), ("median", "q1"), ("q25", "q0"), ("q75", "q2")],
     "relative position of <Parallel>", _QUARTILES, (-0.02, 1.02)),
    ("block_roles.png", "What blocks do",
     [("exploration", "share_exploration"), ("verification", "share_verification"),
      ("undetermined", "share_undetermined")], "share of blocks", None, None),
    ("path_similarity.png", "Similarity of sibling paths",
     [("token Jaccard", "path_similarity")], "mean pairwise Jaccard", None, None),
)


def curve(per_step: dict[int, dict], key: str) -> tuple[list, list]:
    """(steps, values) of one figure over steps; "q0".."q2" are the block-position quartiles."""
    xs, ys = [], []
    for step, figs in per_step.items():
        value = figs.get(key)
        if key in ("q0", "q1", "q2") and figs.get("block_position_q"):
            value = figs["block_position_q"][int(key[1])]
        if isinstance(value, (int, float)) and np.isfinite(value):
            xs.append(step), ys.append(float(value))
    return xs, ys


def plot_run_curves(per_step: dict[int, dict], out: Path) -> list[Path]:
    """One PNG per figure of `CURVES` that has data, in `out`."""
    plots = []
    for file, name, keys, ylabel, styles, ylim in CURVES:
        series = {label: curve(per_step, key) for label, key in keys}
        series = {k: v for k, v in series.items() if v[0]}
        if series:
            plots.append(plot_lines(out / file, name, "step", series, ylabel, styles=styles,
                                    ylim=ylim))
    return plots
