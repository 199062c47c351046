"""The plots a user reads (issue 22 item 7): whole-step ticks, a title inside the figure, a
smoothing label true to the data, and the block-position quartiles visible."""

from __future__ import annotations

import pytest

from parallel_r1.eval.grid_plots import SMOOTH, draw_evolution
from parallel_r1.eval.plots import CURVES, draw_lines, pyplot


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    pyplot().close("all")


def ticks_are_whole_steps(ax) -> bool:
    ax.figure.canvas.draw()
    lo, hi = ax.get_xlim()
    shown = [t for t in ax.get_xticks() if lo <= t <= hi]
    return bool(shown) and all(float(t).is_integer() for t in shown)


def inside_figure(fig, text) -> bool:
    renderer = fig.canvas.get_renderer()
    box, frame = text.get_window_extent(renderer), fig.bbox
    return (box.x0 >= frame.x0 and box.x1 <= frame.x1 and box.y0 >= frame.y0
            and box.y1 <= frame.y1)


def evolution(num_steps: int, seeds: int = 2) -> dict:
    per_seed = {seed: {s: {"position": (0.2 * s, 2), "exploration": (1.0, 2),
                           "verification": (1.0, 2), "parallel": (2.0, 2)}
                       for s in range(1, num_steps + 1)} for seed in range(seeds)}
    return {"per_seed": per_seed, "boundaries": [], "phase": [1, num_steps], "shift": {}}


def test_two_steps_get_whole_step_ticks():
    fig = draw_lines("Reward", "step", {"reward": ([1, 2], [0.1, 0.3])})
    assert ticks_are_whole_steps(fig.axes[0])


def test_the_q25_line_is_drawn_above_the_median_it_may_equal():
    (_, title, keys, ylabel, styles, ylim), = [c for c in CURVES if c[0] == "block_position.png"]
    same = ([1, 2], [0.4, 0.5])  # few blocks per step: q25 equals the median
    fig = draw_lines(title, "step", {label: same for label, _ in keys}, ylabel, styles=styles,
                     ylim=ylim)
    ax = fig.axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert lines["q25"].get_zorder() > max(lines["median"].get_zorder(),
                                           lines["mean"].get_zorder())
    assert lines["q25"].get_linestyle() == "--" and lines["q25"].get_marker() == "v"
    assert "q25" in [t.get_text() for t in ax.get_legend().get_texts()]
    assert ticks_are_whole_steps(ax)


@pytest.mark.parametrize("num_steps, label", [
    (4, "moving average of the last 4 steps"),
    (SMOOTH + 3, f"moving average of the last {SMOOTH} steps"),
    (1, "per step, not smoothed"),
])
def test_evolution_says_its_real_window_and_its_title_fits(num_steps, label):
    fig = draw_evolution(evolution(num_steps), "SFT then RL with the alternating reward, "
                                               "structured layout (seeds 0-2)")
    title = fig._suptitle
    assert label in title.get_text()
    assert inside_figure(fig, title)
    assert ticks_are_whole_steps(fig.axes[1])
