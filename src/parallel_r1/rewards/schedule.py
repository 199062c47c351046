"""Reward schedules: which rewards pay, with what weight, at global step s (s starts at 1).

A schedule is a small frozen object with `weights(step) -> {reward name: weight}`. Three kinds:
`Constant` (fixed weights), `Alternating` (SPEC 4.4: in every window of 10 steps, steps 1-8 pay
the first reward and steps 9-10 the second) and `SwitchAfter` (the first reward up to step N,
the second after it, e.g. the mid-training scaffold). `schedule_from_config` builds one from a dict.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Protocol

from parallel_r1.errors import ConfigError
from parallel_r1.registry import Registry


class Schedule(Protocol):
    """Anything with `weights(step)` and `names()`."""

    def weights(self, step: int) -> dict[str, float]:
        """{reward name: weight} paid at global step `step` (>= 1)."""

    def names(self) -> list[str]:
        """Every reward name the schedule can pay."""


def _check_step(step: int) -> None:
    if step < 1:
        raise ValueError(f"global steps start at 1, got step={step}")


@dataclass(frozen=True)
class Constant:
    """The same weighted sum of rewards at every step."""

    rewards: Mapping[str, float] = field(metadata={"help": "reward name -> weight"})

    def __post_init__(self) -> None:
        if not self.rewards:
            raise ConfigError("needs at least one reward, e.g. {'accuracy_reward': 1.0}",
                              field="rewards")
        object.__setattr__(self, "rewards", dict(self.rewards))

    def weights(self, step: int) -> dict[str, float]:
        """{name: weight} for `step` (the same for all steps)."""
        _check_step(step)
        return dict(self.rewards)

    def names(self) -> list[str]:
        """Every reward name this schedule can pay."""
        return list(self.rewards)


@dataclass(frozen=True)
class Alternating:
    """Windows of `window` steps: the first `num_first` pay `first`, the rest pay `second`."""

    first: str = field(default="accuracy_reward", metadata={"help": "reward of the early steps"})
    second: str = field(default="emphase_parallel", metadata={"help": "reward of the late steps"})
    window: int = field(default=10, metadata={"help": "steps per window"})
    num_first: int = field(default=8, metadata={"help": "steps paying `first` in each window"})

    def __post_init__(self) -> None:
        if self.window < 1:
            raise ConfigError(f"must be >= 1, got {self.window}", field="window")
        if not 0 <= self.num_first <= self.window:
            raise ConfigError(f"must be in [0, window={self.window}], got {self.num_first}",
                              field="num_first")

    def uses_first(self, step: int) -> bool:
        """True when `step` is one of the first `num_first` steps of its window."""
        _check_step(step)
        return (step - 1) % self.window < self.num_first

    def weights(self, step: int) -> dict[str, float]:
        """{first: 1.0} or {second: 1.0}, by the position of `step` in its window."""
        return {self.first if self.uses_first(step) else self.second: 1.0}

    def names(self) -> list[str]:
        """Every reward name this schedule can pay."""
        return [self.first, self.second]


@dataclass(frozen=True)
class SwitchAfter:
    """`first` for steps 1..`after`, `second` from step `after + 1` on."""

    first: str = field(metadata={"help": "reward up to and including step `after`"})
    second: str = field(metadata={"help": "reward after step `after`"})
    after: int = field(metadata={"help": "last step paying `first` (0: always `second`)"})

    def __post_init__(self) -> None:
        if self.after < 0:
            raise ConfigError(f"must be >= 0, got {self.after}", field="after")

    def weights(self, step: int) -> dict[str, float]:
        """{first: 1.0} while step <= after, else {second: 1.0}."""
        _check_step(step)
        return {self.first if step <= self.after else self.second: 1.0}

    def names(self) -> list[str]:
        """Every reward name this schedule can pay."""
        return [self.first, self.second]


AnySchedule = Constant | Alternating | SwitchAfter
SCHEDULES: Registry[type] = Registry("reward schedule")
SCHEDULES.add("constant", Constant)
SCHEDULES.add("alternating", Alternating)
SCHEDULES.add("switch", SwitchAfter)


def schedule_from_config(config: Mapping[str, Any]) -> AnySchedule:
    """Build a schedule from `{"kind": "alternating", "first": ..., ...}`.

    Args:
        config: "kind" (a name in SCHEDULES) plus the fields of that schedule.

    Returns:
        The schedule object.

    Raises:
        UnknownNameError: unknown kind. ConfigError: missing kind, unknown or missing fields.
    """
    if "kind" not in config:
        raise ConfigError(f"a schedule needs 'kind', one of {SCHEDULES.names()}", field="kind")
    cls = SCHEDULES.get(config["kind"])
    args = {k: v for k, v in config.items() if k != "kind"}
    known = {f.name for f in fields(cls)}
    for key in args:
        if key not in known:
            raise ConfigError(f"unknown field for schedule '{config['kind']}'; known: "
                              f"{', '.join(sorted(known))}", field=key)
    try:
        return cls(**args)
    except TypeError as exc:  # a required field is missing
        raise ConfigError(f"schedule '{config['kind']}': {exc}", field="kind") from exc
