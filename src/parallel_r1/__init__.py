"""Parallel-R1: teach causal language models to think in parallel with reinforcement learning.

Importing this package is cheap: it imports no torch, transformers, TRL or web framework. The parts
live in subpackages (format, structure, rewards, rl, models, engine, data, train, eval, serve, cli).
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

__all__ = [
    "ConfigError",
    "DataError",
    "EngineError",
    "FormatError",
    "ParallelR1Error",
    "UnknownNameError",
    "__version__",
]
