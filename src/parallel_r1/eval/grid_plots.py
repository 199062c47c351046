"""PNG figures of a grid (matplotlib Agg): arms with intervals, paired deltas, strategy evolution.

Inputs are the JSON-able results of `grid_report` (fractions); every figure is written atomically.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from parallel_r1.eval.plots import integer_steps, pyplot, save_png

SMOOTH = 5  # steps in the moving average of the evolution curves


def _errbar(ax: Any, ys: list[float], figs: list[dict], **kwargs: Any) -> None:
    xs = [100 * f["value"] for f in figs]
    lo = [100 * (f["value"] - f["low"]) for f in figs]
    hi = [100 * (f["high"] - f["value"]) for f in figs]
    ax.errorbar(xs, ys, xerr=[lo, hi], fmt="o", capsize=3, **kwargs)


def plot_arms(result: dict, titles: dict[str, str], path: Path) -> Path:
    """Parallel ratio and Mean@k / Pass@k per benchmark, one row per arm, 95% intervals."""
    plt = pyplot()
    arms, benches = list(result["arms"]), result["benchmarks"]
    fig, axes = plt.subplots(1, 1 + len(benches), figsize=(3.2 * (1 + len(benches)),
                                                          0.45 * len(arms) + 1.6),
                             dpi=100, sharey=True)
    ys = list(range(len(arms)))[::-1]
    _errbar(axes[0], ys, [result["arms"][a]["ratio"] for a in arms], color="tab:purple")
    axes[0].set_title("Parallel ratio (%)")
    for ax, (b, info) in zip(axes[1:], benches.items()):
        _errbar(ax, [y + 0.12 for y in ys], [result["arms"][a]["bench"][b]["mean"] for a in arms],
                color="tab:blue", label=f"Mean@{info['k']}")
        _errbar(ax, [y - 0.12 for y in ys], [result["arms"][a]["bench"][b]["pass"] for a in arms],
                color="tab:orange", mfc="none", label=f"Pass@{info['k']}")
        ax.set_title(f"{info['title']} (%)")
    axes[0].set_yticks(ys, [titles.get(a, a) for a in arms], fontsize=8)
    for ax in axes:
        ax.grid(alpha=0.3, axis="x")
    fig.suptitle("Arms: value and 95% interval over seeds and problems", fontsize=10)
    fig.legend(*axes[-1].get_legend_handles_labels(), loc="lower right", ncol=2, fontsize=8)
    fig.tight_layout(rect=(0, 0.06, 1, 1))  # the legend below the panels covers no bar
    return save_png(fig, path)


def plot_deltas(result: dict, titles: dict[str, str], path: Path) -> Path:
    """Paired Mean@k deltas to the baseline per benchmark and Avg (points), 95% intervals."""
    plt = pyplot()
    arms = [a for a in result["arms"] if a != result["baseline"]]
    series = [(b, f"{info['title']} Mean@{info['k']}") for b, info in result["benchmarks"].items()]
    fig, ax = plt.subplots(figsize=(7, 0.55 * len(arms) + 1.6), dpi=100)
    ys = np.arange(len(arms))[::-1]
    offsets = np.linspace(-0.25, 0.25, len(series) + 1)
    for off, (b, label) in zip(offsets, series):
        _errbar(ax, list(ys + off), [result["arms"][a]["bench"][b]["delta"]["mean"] for a in arms],
                label=label)
    _errbar(ax, list(ys + offsets[-1]), [result["arms"][a]["delta_avg"] for a in arms],
            color="black", label="Avg")
    ax.axvline(0, color="grey", lw=1)
    ax.set_yticks(ys, [titles.get(a, a) for a in arms], fontsize=8)
    ax.set_xlabel(f"points vs {titles.get(result['baseline'], result['baseline'])} "
                  "(paired by seed and problem)")
    ax.set_title("Paired deltas to the baseline, 95% interval", fontsize=10)
    ax.grid(alpha=0.3, axis="x")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return save_png(fig, path)


def _curve(per_seed: dict, figure: str, window: int) -> tuple[np.ndarray, ...]:
    """Steps, mean over seeds, min and max over seeds of a figure's trailing mean over the last
    `window` steps (fewer at the start)."""
    steps = sorted({s for steps in per_seed.values() for s in steps})
    table = []
    for steps_of_seed in per_seed.values():
        row = []
        for s in steps:
            inside = [steps_of_seed[t][figure] for t in steps if s - window < t <= s
                      and t in steps_of_seed]
            num, den = sum(w[0] for w in inside), sum(w[1] for w in inside)
            row.append(num / den if den else np.nan)
        table.append(row)
    arr = np.asarray(table, dtype=float)  # [seeds, steps]
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return (np.asarray(steps), np.nanmean(arr, 0), np.nanmin(arr, 0), np.nanmax(arr, 0))


def smoothing_window(ev: dict) -> int:
    """Steps in the moving average: SMOOTH, or fewer when the run has fewer steps."""
    num_steps = len({s for steps in ev["per_seed"].values() for s in steps})
    return max(1, min(SMOOTH, num_steps))


def draw_evolution(ev: dict, title: str) -> Any:
    """The Figure of `plot_evolution`: block position and exploration / verification shares over
    RL steps (mean of seeds, band = min..max over seeds, trailing moving average of
    `smoothing_window(ev)` steps); early and late thirds shaded."""
    plt = pyplot()
    window = smoothing_window(ev)
    fig, axes = plt.subplots(2, 1, figsize=(7, 5.2), dpi=100, sharex=True, layout="constrained")
    panels = ((axes[0], (("position", "relative position of <Parallel>", "tab:blue"),)),
              (axes[1], (("exploration", "exploration share", "tab:green"),
                         ("verification", "verification share", "tab:red"))))
    for ax, items in panels:
        for figure, label, color in items:
            xs, mean, low, high = _curve(ev["per_seed"], figure, window)
            ax.plot(xs, mean, color=color, label=label)
            ax.fill_between(xs, low, high, color=color, alpha=0.2)
        first, last = ev["phase"]
        third = max((last - first + 1) // 3, 1)
        ax.axvspan(first, first + third - 1, color="grey", alpha=0.12)
        ax.axvspan(last - third + 1, last, color="grey", alpha=0.12)
        for b in ev["boundaries"]:
            ax.axvline(b, color="black", ls="--", lw=0.8)
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper left")
    integer_steps(axes[1])
    smoothing = (f"moving average of the last {window} steps" if window > 1
                 else "per step, not smoothed")
    fig.suptitle(f"{title}: strategy over RL\n{smoothing}; dashed: next stage; grey: early/late "
                 "third", fontsize=9, wrap=True)
    axes[1].set_xlabel("RL step (stages numbered on)")
    return fig


def plot_evolution(ev: dict, title: str, path: Path) -> Path:
    """`draw_evolution` written to `path` as a PNG (atomically)."""
    return save_png(draw_evolution(ev, title), path)


def plot_early_late(evolutions: dict[str, dict], titles: dict[str, str], path: Path) -> Path:
    """Early vs late third of the last RL phase per parallel arm, 95% intervals."""
    plt = pyplot()
    arms = list(evolutions)
    fig, axes = plt.subplots(1, 3, figsize=(10, 0.5 * len(arms) + 1.8), dpi=100, sharey=True)
    ys = np.arange(len(arms))[::-1]
    for ax, (figure, label) in zip(axes, (("position", "block position"),
                                          ("exploration", "exploration share"),
                                          ("verification", "verification share"))):
        for off, part, color in ((0.12, "early", "tab:gray"), (-0.12, "late", "tab:blue")):
            figs = [evolutions[a]["shift"][figure][part] for a in arms]
            ok = [i for i, f in enumerate(figs) if np.isfinite(f["value"])]
            if ok:
                ax.errorbar([figs[i]["value"] for i in ok], [ys[i] + off for i in ok],
                            xerr=[[figs[i]["value"] - figs[i]["low"] for i in ok],
                                  [figs[i]["high"] - figs[i]["value"] for i in ok]],
                            fmt="o", capsize=3, color=color, label=part)
        ax.set_title(label, fontsize=9)
        ax.set_xlim(-0.02, 1.02)
        ax.grid(alpha=0.3, axis="x")
    axes[0].set_yticks(ys, [titles.get(a, a) for a in arms], fontsize=8)
    axes[0].legend(fontsize=7)
    fig.suptitle("Early vs late third of the last RL phase (95% interval over seeds and steps)",
                 fontsize=10)
    fig.tight_layout()
    return save_png(fig, path)
