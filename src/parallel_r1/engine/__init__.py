"""Generation engines: sample rollouts in causal or structured (forked paths) mode.

`ENGINES` maps a backend name to its class, imported lazily: "torch" (built in, exact log-probs).
Importing this package imports torch but no model code, vLLM or HTTP client.
"""

from parallel_r1.engine.types import ParallelParams, Request, Rollout, SamplingParams
from parallel_r1.registry import Registry

ENGINES: Registry = Registry("engine")
ENGINES.add("torch", "parallel_r1.engine.torch_engine:TorchEngine")

__all__ = ["ENGINES", "ParallelParams", "Request", "Rollout", "SamplingParams"]
