"""Generation engines: the block program over sampler backends, in the causal, threads and
structured layouts.

`ENGINES` maps a name to the engine class a user picks ("torch": the built-in engine, exact
log-probs); `BACKENDS` maps a name to a sampler backend ("torch", "openai": any OpenAI-compatible
completions server, "vllm": vLLM in process). Entries are imported lazily: importing this
package imports torch but no model code, vLLM or HTTP client.
"""

from parallel_r1.engine.types import ParallelParams, Request, Rollout, SamplingParams
from parallel_r1.registry import Registry

ENGINES: Registry = Registry("engine")
ENGINES.add("torch", "parallel_r1.engine.torch_engine:TorchEngine")

BACKENDS: Registry = Registry("backend")
BACKENDS.add("torch", "parallel_r1.engine.torch_backend:TorchBackend")
BACKENDS.add("openai", "parallel_r1.engine.openai_backend:OpenAIBackend")
BACKENDS.add("vllm", "parallel_r1.engine.vllm_backend:VLLMBackend")

__all__ = ["BACKENDS", "ENGINES", "ParallelParams", "Request", "Rollout", "SamplingParams"]
