"""TRL's colocated vLLM made exact on vLLM's CPU build: the trainer's dtype, and a weight sync
by reload.

Dtype. TRL 1.16 builds `vllm.LLM(model=..., ...)` without a dtype, and vLLM's "auto" dtype
downcasts a float32 checkpoint to bfloat16 (`vllm/config/model.py`, `_resolve_auto_dtype`: "Downcast
for float32 models"), so a float32 trainer would be compared with a bfloat16 sampler.
`colocated_llm` passes the trainer model's own dtype while TRL builds its LLM (both builds), and
on the CPU build `enforce_eager=True` (torch.compile adds ~25 s of start-up on CPU and decodes no
faster at these sizes).

Why TRL's route fails there. TRL 1.16 (`trl/generation/vllm_generation.py`, `sync_weights`,
colocate branch) calls `model_runner.model.load_weights([(name, tensor)])` once per parameter,
and vLLM's loaders copy each tensor into the layer's parameter through its `weight_loader`. On the
CPU build, after the first load `UnquantizedLinearMethod.process_weights_after_loading`
(`vllm/model_executor/layers/linear.py`) calls `dispatch_cpu_unquantized_gemm(layer,
remove_weight=True)` (`vllm/model_executor/layers/utils.py`): the weight is prepacked into a oneDNN
(or sgl-kernel / zentorch) handle captured by `layer.cpu_linear`, and `layer.weight` is replaced
by an empty `Parameter` without `weight_loader`. So the second load raises
`AttributeError: 'Parameter' object has no attribute 'weight_loader'`, and even a loader that
wrote into `layer.weight` would not reach the prepacked copy the forward uses (the LM head keeps
its weight, `remove_weight=False`, but also samples through a prepacked copy).

The route used here: vLLM 0.32's in-place reload (`Worker.reload_weights(weights_iterator=...)`
-> `vllm/model_executor/model_loader/reload/inplace.py`). It puts every layer back in its
as-created (checkpoint) form, feeds the trainer's tensors through the original loaders, re-runs
`process_weights_after_loading` per layer (a new prepacked handle from the new weights), and
copies the processed tensors into the storage vLLM holds. One case it misses: a tied LM head
(SmolLM2, Qwen3-0.6B) shares `embed_tokens.weight` and is loaded through it, so the reload
never reprocesses the head, whose prepacked copy would stay at step 0 (measured on SmolLM2: the
vLLM/trainer gap grew 4e-5, 0.07, 0.12, 0.19, 0.20 over five steps); `reload_sync` repacks every
module whose kernel the reload left in place. The trainer's tensors come from TRL's
own `_iter_named_params` (PEFT merge, FSDP / ZeRO-3 gathers unchanged). Only the CPU build takes
this route; on CUDA, TRL's `sync_weights` is left as it is.
"""

from __future__ import annotations

import contextlib
import functools
import os
from typing import Any, Iterator

CPU_KV_ENV = "VLLM_CPU_KVCACHE_SPACE"
DEFAULT_CPU_KV_GB = 1


@contextlib.contextmanager
def colocated_llm(model: Any, args: Any) -> Iterator[None]:
    """While TRL's trainer is built: its colocated `vllm.LLM` gets `dtype` = `model`'s (and
    `enforce_eager` on the CPU build).

    Args:
        model: the trainer's model (a module; a hub id string is left to TRL).
        args: the GRPOConfig (nothing changes unless `use_vllm` in colocate mode).
    """
    colocate = getattr(args, "use_vllm", False) and getattr(args, "vllm_mode", "") == "colocate"
    if not colocate or isinstance(model, str):
        yield
        return
    import trl.generation.vllm_generation as generation

    built = generation.LLM
    dtype = str(next(model.parameters()).dtype).removeprefix("torch.")
    eager = {"enforce_eager": True} if is_cpu_build() else {}
    generation.LLM = functools.partial(built, dtype=dtype, **eager)
    try:
        yield
    finally:
        generation.LLM = built


def is_cpu_build() -> bool:
    """Whether the installed vLLM runs on CPU (the `vllm-cpu` build, or no accelerator)."""
    from vllm.platforms import current_platform

    return current_platform.is_cpu()


def cpu_defaults() -> dict[str, str]:
    """Environment the CPU build needs before TRL builds its `LLM`; returns what it set.

    vLLM's CPU worker sizes its KV cache from `VLLM_CPU_KVCACHE_SPACE` (GiB, an integer); unset,
    it takes a share of the machine's free memory. An unset variable gets `DEFAULT_CPU_KV_GB`
    (a value already set is kept).
    """
    if os.environ.get(CPU_KV_ENV):
        return {}
    os.environ[CPU_KV_ENV] = str(DEFAULT_CPU_KV_GB)
    return {CPU_KV_ENV: str(DEFAULT_CPU_KV_GB)}


def reload_sync(generation: Any) -> None:
    """Copy the trainer's weights into TRL's colocated CPU vLLM by an in-place reload.

    After the reload, a module whose prepacked kernel was not rebuilt is one whose weight is
    shared with another module and loaded through it: the tied LM head (vLLM's `tie_weights`
    points `lm_head.weight` at `embed_tokens.weight`; the reload loads and processes
    `embed_tokens` only, and the head would go on sampling with its step-0 copy). Its weight
    storage holds the new values, so its processing is run again, which repacks it.

    Args:
        generation: TRL's `VLLMGeneration` (`trainer.vllm_generation`), colocate mode.

    Raises:
        RuntimeError: a module kept its old kernel and has no weight to repack it from.
    """
    worker = generation.llm.llm_engine.model_executor.driver_worker
    model = worker.model_runner.model
    before = _kernels(model)  # module name -> its prepacked CPU linear kernel
    worker.reload_weights(weights_iterator=generation._iter_named_params(),
                          is_checkpoint_format=True)
    for name, module in model.named_modules():
        if name not in before or module.cpu_linear is not before[name]:
            continue  # reprocessed by the reload
        if module.weight.numel() == 0:
            raise RuntimeError(f"vLLM module {name} kept its step-0 kernel after reload_weights "
                               "and has no weight to repack it from")
        module.quant_method.process_weights_after_loading(module)
    generation.llm.reset_prefix_cache()  # cached KV was computed with the old weights


def _kernels(model: Any) -> dict[str, Any]:
    """Each module's prepacked CPU linear kernel (`cpu_linear`, set by vLLM's CPU GEMM
    dispatch); a reload that re-runs a module's weight processing replaces it."""
    return {name: m.cpu_linear for name, m in model.named_modules()
            if getattr(m, "cpu_linear", None) is not None}


def install(generation: Any) -> bool:
    """Route `generation.sync_weights` through `reload_sync` on the CPU build, colocate mode.

    Returns whether it did (False on CUDA and in server mode: TRL's own sync stays).
    """
    if getattr(generation, "mode", None) != "colocate" or not is_cpu_build():
        return False
    generation.sync_weights = lambda: reload_sync(generation)
    return True
