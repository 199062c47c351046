"""TrainingArguments fields whose names differ across the transformers versions we support.

transformers 5.23 calls the recompute-in-backward switch `activation_checkpointing` (keeping
`gradient_checkpointing` as a deprecated alias); 5.19, which both vLLM builds require, knows only
`gradient_checkpointing`. The name is read from the config class's own fields, never from the
version string, so a backport or a removal is followed as it is.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from parallel_r1.errors import ConfigError

CHECKPOINTING_FIELDS = ("activation_checkpointing", "gradient_checkpointing")


def checkpointing_args(config_cls: type, enabled: bool) -> dict[str, Any]:
    """`{name: enabled}` for the first of `CHECKPOINTING_FIELDS` that `config_cls` declares.

    Args:
        config_cls: a TrainingArguments dataclass (GRPOConfig, SFTConfig).
        enabled: recompute activations in the backward pass.

    Raises:
        ConfigError: the class declares neither field (names the field asked for).
    """
    names = {f.name for f in dataclasses.fields(config_cls)}
    for name in CHECKPOINTING_FIELDS:
        if name in names:
            return {name: enabled}
    raise ConfigError(f"{config_cls.__name__} has none of {', '.join(CHECKPOINTING_FIELDS)}; "
                      "this transformers version is not supported", field="activation_checkpointing")
