"""`parallel-r1 serve`: load a model, build the engine and the app, run uvicorn on loopback.

`ServeConfig` is checked before anything is loaded; `serve(config)` blocks until interrupted.
"""

from __future__ import annotations

import errno
import os
import socket
import sys
from dataclasses import dataclass, field
from typing import Any

from parallel_r1.errors import ConfigError

LOOPBACK = ("127.0.0.1", "localhost", "::1")
HEADER_BYTES = 64 * 1024  # a request's headers at most


@dataclass
class ServeConfig:
    """What to serve and where."""

    model: str = field(default="tiny", metadata={
        "help": "a local model directory, or 'tiny' for the built-in tiny random model"})
    mode: str = field(default="structured", metadata={
        "help": "causal (tags are plain tokens), structured (paths decoded in isolation and "
                "joined) or threads (paths as separate contexts, read again after the block)"})
    paths: int = field(default=2, metadata={"help": "paths per block; 0 lets the model decide"})
    host: str = field(default="127.0.0.1", metadata={"help": "address to bind (loopback)"})
    port: int = field(default=8000, metadata={"help": "TCP port"})
    api_key_env: str | None = field(default=None, metadata={
        "help": "environment variable holding the API key that /v1 requires (none: open)"})
    served_name: str | None = field(default=None, metadata={
        "help": "model name clients send (default: MODEL as given)"})
    max_tokens: int = field(default=256, metadata={
        "help": "completion tokens when a request gives no max_tokens"})
    device: str = field(default="cpu", metadata={
        "help": "where the model runs: cpu, cuda, cuda:1, auto (cuda when visible), mps"})
    dtype: str = field(default="float32", metadata={
        "help": "weights dtype for a model directory: float32, bfloat16, float16, auto"})
    threads: int | None = field(default=None, metadata={
        "help": "torch CPU threads (None: $OMP_NUM_THREADS, else 1; parallel_r1.cpu_threads)"})
    max_body_mb: float = field(default=8.0, metadata={
        "help": "request bodies over this many MB are refused unread (413)"})
    shutdown_grace: float = field(default=30.0, metadata={
        "help": "seconds in-flight requests get on shutdown; then streams end with an error"})
    kv_cache_gb: float = field(default=0.0, metadata={
        "help": "GB the KV cache may take (samples beyond it wait their turn); 0 sizes it from "
                "the machine: 25% of the free RAM, or 50% of the GPU memory free after loading"})
    max_samples: int = field(default=256, metadata={
        "help": "most samples (prompts x n) one request may ask for; more is a 400"})
    max_connections: int = field(default=0, metadata={
        "help": "open connections at most (past it, the oldest still sending its headers is "
                "dropped); 0: the file-descriptor limit less 128, at most 4096"})
    header_timeout: float = field(default=10.0, metadata={
        "help": "seconds a client gets to send a request's headers (408 after)"})
    body_timeout: float = field(default=30.0, metadata={
        "help": "seconds a client gets to send a request's body (408 after)"})
    write_timeout: float = field(default=30.0, metadata={
        "help": "seconds a reply may wait on a client that reads nothing; then the connection "
                "is closed and its generation stopped"})
    keep_alive: float = field(default=5.0, metadata={
        "help": "seconds an idle keep-alive connection stays open"})
    stream_buffer: int = field(default=64, metadata={
        "help": "unread stream events per choice after which the generation is stopped"})

    def __post_init__(self) -> None:
        if self.mode not in ("causal", "structured", "threads"):
            raise ConfigError(f"must be causal, structured or threads, got {self.mode!r}",
                              field="mode")
        if self.paths != 0 and self.paths < 2:
            raise ConfigError(f"must be >= 2, or 0 to let the model decide, got {self.paths}",
                              field="paths")
        if not 0 <= self.port < 65536:
            raise ConfigError(f"must be in [0, 65535], got {self.port}", field="port")
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"must be >= 1, got {self.threads}", field="threads")
        if self.max_tokens < 1:
            raise ConfigError(f"must be >= 1, got {self.max_tokens}", field="max_tokens")
        if not self.max_body_mb > 0:
            raise ConfigError(f"must be > 0, got {self.max_body_mb}", field="max_body_mb")
        if not self.shutdown_grace >= 0:
            raise ConfigError(f"must be >= 0, got {self.shutdown_grace}", field="shutdown_grace")
        if not self.kv_cache_gb >= 0:
            raise ConfigError(f"must be >= 0 (0: sized from the machine), got "
                              f"{self.kv_cache_gb}", field="kv_cache_gb")
        for name in ("max_samples", "stream_buffer"):
            if getattr(self, name) < 1:
                raise ConfigError(f"must be >= 1, got {getattr(self, name)}", field=name)
        if self.max_connections < 0:
            raise ConfigError(f"must be >= 0 (0: from the file-descriptor limit), got "
                              f"{self.max_connections}", field="max_connections")
        for name in ("header_timeout", "body_timeout", "write_timeout", "keep_alive"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"must be > 0 seconds, got {getattr(self, name)}", field=name)
        from parallel_r1.devices import check_device

        check_device(self.device)
        if self.api_key_env is not None and not os.environ.get(self.api_key_env):
            raise ConfigError(f"environment variable {self.api_key_env} is unset or empty; "
                              "export the key there or drop --api-key-env", field="api_key_env")

    @property
    def api_key(self) -> str | None:
        return os.environ[self.api_key_env] if self.api_key_env else None


def load_model(model: str, *, device: str = "cpu", dtype: str = "float32") -> tuple[Any, Any]:
    """(model, tokenizer) for a directory, or the tiny random float32 model for "tiny"."""
    from parallel_r1.devices import check_device

    device = check_device(device)
    if model == "tiny":
        from parallel_r1.models.tiny import build_tiny

        tiny, tokenizer = build_tiny(seed=0)
        return tiny.to(device), tokenizer
    from parallel_r1.models.load import load

    return load(model, device=device, dtype=dtype)


def build_app(config: ServeConfig, model: Any = None, tokenizer: Any = None) -> Any:
    """The app for `config` (loads the model unless given).

    Raises:
        ConfigError: structured mode with a tokenizer that lacks the six tags.
    """
    from parallel_r1.cpu_threads import use_threads
    from parallel_r1.engine.torch_engine import TorchEngine
    from parallel_r1.engine.types import ParallelParams
    from parallel_r1.serve.app import create_app
    from parallel_r1.serve.memory import auto_kv_budget_gb

    use_threads(config.threads)
    if model is None:
        model, tokenizer = load_model(config.model, device=config.device, dtype=config.dtype)
    engine = TorchEngine(model, tokenizer, kv_budget_gb=config.kv_cache_gb)
    if not config.kv_cache_gb:  # a share of what is free once the prepacked weights exist
        engine.backend.prepare_weights()
        engine.backend.set_kv_budget(int(auto_kv_budget_gb(config.device) * 2**30))
    if config.mode != "causal" and engine.tags is None:
        raise ConfigError("structured mode needs the six tags in the tokenizer; serve with "
                          "--mode causal, or prepare the model (parallel-r1 models prepare)",
                          field="mode")
    parallel = ParallelParams(mode=config.mode, num_paths=config.paths or None)
    return create_app(engine, tokenizer, config.served_name or config.model,
                      api_key=config.api_key, parallel=parallel,
                      default_max_tokens=config.max_tokens, max_body_mb=config.max_body_mb,
                      shutdown_grace=config.shutdown_grace, max_samples=config.max_samples,
                      stream_buffer=config.stream_buffer, body_timeout=config.body_timeout)


def bind(host: str, port: int) -> socket.socket:
    """A TCP socket bound to (host, port), as uvicorn binds one (port 0: any free port).

    Raises:
        ConfigError: the port is in use, or the address cannot be bound (one line naming it).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(f"port {port} is in use; pick another with --port") from None
        raise ConfigError(f"cannot bind {host}:{port}: {exc.strerror or exc}; pick another "
                          "--host or --port") from None
    sock.set_inheritable(True)
    return sock


def serve(config: ServeConfig) -> None:
    """Bind the port, load, build and run the server until interrupted (Ctrl-C, SIGTERM).

    On a signal the server stops accepting connections and refuses new requests (503); requests
    in flight get `shutdown_grace` seconds, after which streams end with an error event and
    `[DONE]` and whole replies with a 503.

    Raises:
        ConfigError: the port cannot be bound (before the model is loaded).
    """
    import uvicorn

    from parallel_r1.serve.connections import auto_max_connections, guarded_protocol

    if config.host not in LOOPBACK and config.api_key_env is None:
        print(f"warning: binding {config.host} without --api-key-env: anyone who can reach "
              "this address can use the model", file=sys.stderr)
    sock = bind(config.host, config.port)  # first: a busy port fails before the model loads
    app = build_app(config)
    budget = app.state.server.worker.engine.backend.kv_budget_bytes / 2**30
    port = sock.getsockname()[1]
    print(f"serving '{config.served_name or config.model}' ({config.mode} mode) on "
          f"http://{config.host}:{port}/v1 (KV cache up to {budget:.2f} GB)", flush=True)
    max_connections = config.max_connections or auto_max_connections()
    protocol = guarded_protocol(config.header_timeout, config.write_timeout, max_connections)
    settings = uvicorn.Config(app, host=config.host, port=config.port, log_level="warning",
                              timeout_graceful_shutdown=config.shutdown_grace + 5,
                              http=protocol, timeout_keep_alive=config.keep_alive,
                              h11_max_incomplete_event_size=HEADER_BYTES)

    class Server(uvicorn.Server):
        async def shutdown(self, sockets: Any = None) -> None:
            app.state.server.begin_shutdown()  # the grace clock starts with the signal
            await super().shutdown(sockets)

    Server(settings).run(sockets=[sock])
