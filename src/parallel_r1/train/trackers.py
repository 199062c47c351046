"""Trackers: the recipe's `report_to`, checked up front, and how a stage's trainer reports to it.

Any tracker transformers' Trainer supports (TensorBoard, W&B, Trackio, MLflow, ...) receives every
log record of the trainers: TRL's figures and ours (rollout, filter, phase times, log-prob gap).
Pure Python at import (the recipe checks run before any work); transformers is imported inside.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

from parallel_r1.errors import ConfigError

# Trackers transformers' Trainer can report to (transformers.integrations INTEGRATION_TO_CALLBACK)
# and the module each one needs; "all" = every installed one, "none" = no tracker.
TRACKERS = {"azure_ml": "azureml", "clearml": "clearml", "codecarbon": "codecarbon",
            "comet_ml": "comet_ml", "dagshub": "dagshub", "dvclive": "dvclive",
            "flyte": "flytekit", "kubeflow": None, "mlflow": "mlflow",
            "neptune": "neptune", "swanlab": "swanlab", "tensorboard": "tensorboard",
            "trackio": "trackio", "wandb": "wandb"}


def check_report_to(value: Any) -> list[str]:
    """The recipe's `report_to` as a list of tracker names, each known and installed.

    Raises:
        ConfigError: an unknown tracker (the known ones are listed), or one that is not
            installed (its module is named).
    """
    names = [value] if isinstance(value, str) else list(value or [])
    if names in (["none"], []):
        return []
    if names == ["all"]:
        return ["all"]
    for name in names:
        if name not in TRACKERS:
            raise ConfigError(f"unknown tracker '{name}'; known: all, none, "
                              f"{', '.join(sorted(TRACKERS))}", field="report_to")
        module = TRACKERS[name]
        if module and importlib.util.find_spec(module) is None and not (
                name == "tensorboard" and importlib.util.find_spec("tensorboardX")):
            raise ConfigError(f"tracker '{name}' is not installed (no module '{module}')",
                              field="report_to")
    return names


def tracker_setup(recipe: Any, stage: Any, out: Path) -> tuple[dict[str, Any], list]:
    """(config fields, callbacks) that send a training stage's metrics to the recipe's trackers.

    TensorBoard writes to `<stage dir>/tensorboard` (unless $TENSORBOARD_LOGGING_DIR is set);
    runs are named `<recipe>/<stage>`.
    """
    names = list(recipe.report_to)
    callbacks = []
    if "tensorboard" in names and not os.environ.get("TENSORBOARD_LOGGING_DIR"):
        from transformers.integrations import TensorBoardCallback

        board = TensorBoardCallback()
        board.logging_dir = str(out / "tensorboard")
        callbacks.append(board)
        names.remove("tensorboard")
    return {"report_to": names, "run_name": f"{recipe.name}/{stage.name}",
            "project": recipe.name}, callbacks
