"""Parallel-R1: teach causal language models to think in parallel with reinforcement learning.

Importing this package is cheap: it imports no torch, transformers, TRL or web framework. The parts
live in subpackages (format, structure, rewards, rl, models, engine, data, train, eval, serve, cli);
the names of the Python API below are imported from them on first use.
"""

__version__ = "0.1.0"

from parallel_r1.errors import (  # noqa: E402
    ConfigError,
    DataError,
    EngineError,
    FormatError,
    ParallelR1Error,
    UnknownNameError,
)

# name -> "module:attribute", imported when first read (PEP 562), so `import parallel_r1` stays light
_LAZY = {
    "TorchEngine": "parallel_r1.engine.torch_engine:TorchEngine",
    "SamplingParams": "parallel_r1.engine.types:SamplingParams",
    "ParallelParams": "parallel_r1.engine.types:ParallelParams",
    "Rollout": "parallel_r1.engine.types:Rollout",
    "apply_template": "parallel_r1.models.load:apply_template",
    "load": "parallel_r1.models.load:load",
    "parse": "parallel_r1.format.parse:parse",
    "grade_response": "parallel_r1.rewards.grading:grade_response",
    "rollout_func": "parallel_r1.train.rollout:rollout_func",
    "ParallelGRPOTrainer": "parallel_r1.train.grpo:ParallelGRPOTrainer",
}


def __getattr__(name: str):
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'parallel_r1' has no attribute {name!r}")
    import importlib

    module, attr = target.split(":")
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "ConfigError",
    "DataError",
    "EngineError",
    "FormatError",
    "ParallelR1Error",
    "UnknownNameError",
    "__version__",
    *_LAZY,
]
