"""Data-parallel facts of a training process: its rank, the world size, the backend.

Training runs data-parallel under `torchrun` (DDP, or FSDP through accelerate's environment);
every process says once, on stderr, which process it is, so a launch that started fewer
processes than asked shows it (and the tests read these lines rather than trust the launcher).
"""

from __future__ import annotations

import os
import sys
from typing import Any


def world_size() -> int:
    """The number of processes the launcher started (WORLD_SIZE; 1 outside a launcher)."""
    try:
        return max(int(os.environ.get("WORLD_SIZE", "1")), 1)
    except ValueError:
        return 1


def rank() -> int:
    """This process's global rank (RANK; 0 outside a launcher)."""
    return int(os.environ.get("RANK", "0"))


def describe(trainer: Any) -> dict[str, Any]:
    """What the trainer's accelerator runs: {rank, world_size, distributed_type, backend,
    sharding} (sharding: "ddp", "fsdp" or "none")."""
    state = trainer.accelerator.state
    sharding = "fsdp" if getattr(trainer, "is_fsdp_enabled", False) else \
        "ddp" if state.num_processes > 1 else "none"
    return {"rank": state.process_index, "world_size": state.num_processes,
            "distributed_type": str(state.distributed_type.value), "backend": state.backend,
            "sharding": sharding}


def announce(trainer: Any, name: str) -> None:
    """One stderr line per process when several run (quiet in one process).

    Raises:
        RuntimeError: the launcher started N processes (WORLD_SIZE) but the trainer runs fewer,
            i.e. the processes do not train together.
    """
    info = describe(trainer)
    if world_size() > 1 and info["world_size"] != world_size():
        raise RuntimeError(f"{world_size()} processes were launched but the trainer runs "
                           f"{info['world_size']}: they would train apart; launch with torchrun "
                           "(see the README's 'Past one process')")
    if info["world_size"] > 1:
        print(f"[parallel-r1] {name}: process {info['rank']} of {info['world_size']} "
              f"({info['sharding']}, {info['distributed_type']}, backend {info['backend']})",
              file=sys.stderr, flush=True)
