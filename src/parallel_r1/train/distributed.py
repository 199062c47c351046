"""Data-parallel facts of a training process: its rank, the world size, the backend.

Training runs data-parallel under `torchrun` (DDP, or FSDP through accelerate's environment);
every process says once, on stderr, which process it is, so a launch that started fewer
processes than asked shows it (and the tests read these lines rather than trust the launcher).
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from typing import Any, Iterator


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


class CpuFsdp:
    """Trainer mixin: FSDP on CPU processes (gloo), as accelerate's launcher asks for it.

    accelerate 1.15 turns its FSDP settings (ACCELERATE_USE_FSDP and the FSDP_* variables that
    `accelerate launch` sets from an FSDP config) into FSDP only on accelerators; on CPU the
    processes silently train as DDP. Here the FSDP plugin is attached after the accelerator is
    built, so `accelerator.prepare` shards the model with FSDP2 over gloo.
    """

    def create_accelerator_and_postprocess(self) -> None:
        super().create_accelerator_and_postprocess()  # type: ignore[misc]
        from accelerate.state import PartialState
        from accelerate.utils import DistributedType, FullyShardedDataParallelPlugin

        state = self.accelerator.state  # type: ignore[attr-defined]
        wants = os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true"
        if wants and state.distributed_type == DistributedType.MULTI_CPU:
            state.fsdp_plugin = FullyShardedDataParallelPlugin()  # its settings from FSDP_*
            # AcceleratorState copies PartialState's fields whenever it is built again: both
            PartialState().distributed_type = state.distributed_type = DistributedType.FSDP
            self.is_fsdp_enabled = True


@contextmanager
def full_params(model: Any) -> Iterator[None]:
    """Hold every FSDP2-sharded module of `model` unsharded for the block (a no-op otherwise).

    Sampling runs a different number of forwards on each process (each stops when its own
    completions do), and a sharded forward all-gathers: the processes would wait on each other.
    Unsharding once, the same number of times on every process, makes the forwards local. Every
    process must enter the block. The model's state dict inside the block is the full one.
    """
    try:
        from torch.distributed.fsdp import FSDPModule
    except ImportError:  # a torch without FSDP2
        yield
        return
    sharded = [m for m in model.modules() if isinstance(m, FSDPModule)]
    for m in sharded:
        m.set_reshard_after_forward(False, recurse=False)
        m.unshard()
    try:
        yield
    finally:
        for m in sharded:
            m.reshard()
            m.set_reshard_after_forward(True, recurse=False)


def full_state_dict(model: Any) -> dict[str, Any] | None:
    """The full weights of an FSDP2-sharded `model`, on rank 0 (others get an empty dict);
    None when the model is not sharded. Every process must call it (it all-gathers)."""
    try:
        from torch.distributed.fsdp import FSDPModule
    except ImportError:
        return None
    if not any(isinstance(m, FSDPModule) for m in model.modules()):
        return None
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    full = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True,
                                                                cpu_offload=True))
    tied = getattr(model, "all_tied_weights_keys", None) or {}  # {copy: source}, e.g. lm_head
    return {k: v for k, v in full.items() if not (k in tied and tied[k] in full)}
