"""Turn a reward name, a weighted sum or a schedule into the batch reward the RL trainer calls.

`build_reward(spec)` accepts a reward name ("accuracy_reward"), a {name: weight} mapping, a
schedule object, or a schedule config ({"kind": "alternating", ...}); `compose` does the same from
explicit arguments. The result is a `ComposedReward`:
`(responses, golds, step) -> (scores, metrics)`, with metrics averaged over the batch.
Our recipes grade with "math-verify" by default; pass `grader="paper"` to reproduce the paper.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from parallel_r1.errors import ConfigError
from parallel_r1.rewards.grading import DEFAULT_GRADER, GRADERS
from parallel_r1.rewards.schedule import AnySchedule, Constant, schedule_from_config
from parallel_r1.rewards.variants import REWARDS, Parts


@dataclass(frozen=True)
class ComposedReward:
    """A schedule of named rewards graded with one grader; call it on a batch."""

    schedule: AnySchedule
    grader: str = DEFAULT_GRADER

    def __post_init__(self) -> None:
        for name in self.schedule.names():
            REWARDS.get(name)  # an unknown name fails here, listing the known ones
        if self.grader != "paper":
            GRADERS.get(self.grader)

    def score(self, response: str, gold: str, step: int) -> tuple[float, Parts]:
        """One response: (weighted total, parts), parts of each reward prefixed by its name
        when more than one reward pays at this step."""
        weights = self.schedule.weights(step)
        total, merged = 0.0, {}
        for name, weight in weights.items():
            if weight == 0:
                continue
            value, parts = REWARDS.get(name)(response, gold, grader=self.grader, step=step)
            total += weight * value
            if len(weights) == 1:
                merged.update(parts)
            else:
                merged[f"{name}/score"] = value
                merged.update({f"{name}/{k}": v for k, v in parts.items()})
        return total, merged

    def score_parts(self, responses: Sequence[str], golds: Sequence[str],
                    step: int) -> tuple[list[float], list[Parts]]:
        """A batch: per-response scores [B] and parts [B] (for dumps and per-sample logs).

        Raises:
            ValueError: `responses` and `golds` differ in length, or step < 1.
        """
        if len(responses) != len(golds):
            raise ValueError(f"{len(responses)} responses but {len(golds)} gold answers")
        results = [self.score(r, g, step) for r, g in zip(responses, golds)]
        return [s for s, _ in results], [p for _, p in results]

    def __call__(self, responses: Sequence[str], golds: Sequence[str],
                 step: int) -> tuple[list[float], dict[str, float]]:
        """A batch: scores [B] and metrics ("reward/score" and the mean of every numeric part)."""
        scores, parts = self.score_parts(responses, golds, step)
        return scores, batch_metrics(scores, parts)


def batch_metrics(scores: Sequence[float], parts: Sequence[Parts]) -> dict[str, float]:
    """Means over the batch: "reward/score" and "reward/<part>" for each numeric part."""
    metrics = {"reward/score": sum(scores) / len(scores) if scores else 0.0}
    sums: dict[str, list[float]] = {}
    for row in parts:
        for key, value in row.items():
            if isinstance(value, (int, float)):  # bools too; "pred" strings are skipped
                sums.setdefault(key, []).append(float(value))
    metrics.update({f"reward/{k}": sum(v) / len(v) for k, v in sums.items()})
    return metrics


def compose(names: str | Sequence[str], weights: Sequence[float] | None = None, *,
            schedule: AnySchedule | None = None,
            grader: str = DEFAULT_GRADER) -> ComposedReward:
    """A weighted sum of named rewards, or a schedule.

    Args:
        names: one reward name or several (ignored when `schedule` is given).
        weights: one weight per name (default 1.0 each).
        schedule: a schedule object (Constant, Alternating, SwitchAfter).
        grader: the grader every reward uses ("math-verify", "paper", ...).

    Returns:
        The batch reward callable.

    Raises:
        UnknownNameError: an unknown reward or grader. ConfigError: weights do not match names.
    """
    if schedule is None:
        names = [names] if isinstance(names, str) else list(names)
        weights = [1.0] * len(names) if weights is None else list(weights)
        if len(weights) != len(names):
            raise ConfigError(f"{len(weights)} weights for {len(names)} rewards", field="weights")
        schedule = Constant(dict(zip(names, weights)))
    return ComposedReward(schedule, grader)


def build_reward(spec: str | Mapping[str, Any] | AnySchedule, *,
                 grader: str = DEFAULT_GRADER) -> ComposedReward:
    """The batch reward for a recipe's reward setting.

    Args:
        spec: a reward name; {name: weight, ...}; a schedule object; or a schedule config
            {"kind": "constant" | "alternating" | "switch", ...fields}.
        grader: the grader every reward uses; "math-verify" unless the recipe asks for "paper".

    Returns:
        The batch reward callable.

    Raises:
        UnknownNameError: an unknown reward, grader or schedule kind. ConfigError: a bad field.
    """
    if isinstance(spec, str):
        return compose(spec, grader=grader)
    if isinstance(spec, Mapping):
        if "kind" in spec:
            return ComposedReward(schedule_from_config(spec), grader)
        return compose(list(spec), [float(w) for w in spec.values()], grader=grader)
    return ComposedReward(spec, grader)
