"""`parallel-r1 serve MODEL`: an OpenAI-compatible server over the engine ([serve] extra)."""

from __future__ import annotations

import typer


def serve(
    model: str = typer.Argument(..., help="A local model directory, or 'tiny' (test model)."),
    mode: str = typer.Option("structured", "--mode", help="causal | structured | threads."),
    paths: int = typer.Option(2, "--paths", help="Paths per block; 0 lets the model decide."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind (loopback by default)."),
    port: int = typer.Option(8000, "--port", help="TCP port."),
    api_key_env: str | None = typer.Option(
        None, "--api-key-env", help="Env variable holding the API key /v1 requires."),
    served_name: str | None = typer.Option(
        None, "--served-name", help="Model name clients send (default: MODEL)."),
    max_tokens: int = typer.Option(256, "--max-tokens",
                                   help="Completion tokens when a request gives none."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda, cuda:1, ..."),
    threads: int = typer.Option(0, "--threads", help="Torch CPU threads; 0 keeps torch's choice."),
    dtype: str = typer.Option("float32", "--dtype",
                              help="float32 | bfloat16 | float16 | auto (model directories)."),
    max_body_mb: float = typer.Option(8.0, "--max-body-mb",
                                      help="Refuse request bodies over this many MB (413)."),
    shutdown_grace: float = typer.Option(
        30.0, "--shutdown-grace",
        help="Seconds in-flight requests get on shutdown; then streams end with an error."),
) -> None:
    """Serve MODEL with the OpenAI API: /v1/completions, /v1/chat/completions, /v1/models."""
    from parallel_r1.serve.server import ServeConfig
    from parallel_r1.serve.server import serve as run_server

    run_server(ServeConfig(model=model, mode=mode, paths=paths, host=host, port=port,
                           api_key_env=api_key_env, served_name=served_name,
                           max_tokens=max_tokens, device=device, dtype=dtype,
                           threads=threads, max_body_mb=max_body_mb,
                           shutdown_grace=shutdown_grace))


def register(app: typer.Typer) -> None:
    """Add the `serve` command to `app`."""
    app.command("serve")(serve)
