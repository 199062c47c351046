"""`parallel-r1 serve MODEL`: an OpenAI-compatible server over the engine ([serve] extra)."""

from __future__ import annotations

import typer

from parallel_r1.cli.options import Threads


def serve(
    model: str = typer.Argument(..., help="A local model directory, or 'tiny' (test model)."),
    mode: str | None = typer.Option(
        None, "--mode", help="causal | structured | threads (default: the model's recorded "
        "layout, else structured).", show_default=False),
    paths: int | None = typer.Option(
        None, "--paths", help="Paths per block; 0 lets the model decide (default: the model's "
        "recorded count, else 2).", show_default=False),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind (loopback by default)."),
    port: int = typer.Option(8000, "--port", help="TCP port."),
    api_key_env: str | None = typer.Option(
        None, "--api-key-env", help="Env variable holding the API key /v1 requires."),
    served_name: str | None = typer.Option(
        None, "--served-name", help="Model name clients send (default: MODEL)."),
    max_tokens: int = typer.Option(256, "--max-tokens",
                                   help="Completion tokens when a request gives none."),
    device: str = typer.Option("cpu", "--device", help="cpu | cuda (cuda:1, ...) | auto | mps."),
    threads: Threads = None,
    dtype: str = typer.Option("float32", "--dtype",
                              help="float32 | bfloat16 | float16 | auto (model directories)."),
    max_body_mb: float = typer.Option(8.0, "--max-body-mb",
                                      help="Refuse request bodies over this many MB (413)."),
    shutdown_grace: float = typer.Option(
        30.0, "--shutdown-grace",
        help="Seconds in-flight requests get on shutdown; then streams end with an error."),
    kv_cache_gb: float = typer.Option(
        0.0, "--kv-cache-gb", help="GB the KV cache may take (more samples wait); 0 sizes it "
        "from the machine (25% of free RAM, 50% of free GPU memory)."),
    max_samples: int = typer.Option(
        256, "--max-samples", help="Most samples (prompts x n) per request; more is a 400."),
    max_connections: int = typer.Option(
        0, "--max-connections", help="Open connections at most; 0: the file-descriptor "
        "limit less 128 (at most 4096)."),
    header_timeout: float = typer.Option(
        10.0, "--header-timeout", help="Seconds to send a request's headers (408 after)."),
    body_timeout: float = typer.Option(
        30.0, "--body-timeout", help="Seconds to send a request's body (408 after)."),
    write_timeout: float = typer.Option(
        30.0, "--write-timeout", help="Seconds a reply waits on a client that reads nothing; "
        "then the connection closes and its generation stops."),
    keep_alive: float = typer.Option(
        5.0, "--keep-alive", help="Seconds an idle keep-alive connection stays open."),
    stream_buffer: int = typer.Option(
        64, "--stream-buffer", help="Unread stream events per choice before the generation "
        "is stopped."),
) -> None:
    """Serve MODEL with the OpenAI API: /v1/completions, /v1/chat/completions, /v1/models, and
    vLLM's /tokenize, /detokenize, /tokenizer_info. vLLM's fields are taken (echo, logprobs up to
    20, prompt_logprobs, min_p, ignore_eos, seed -1, 32 stop strings); repetition_penalty,
    min_tokens and skip_special_tokens=true are not honoured and named in the
    X-Parallel-R1-Ignored reply header (README: "The server for vLLM clients").

    The layout and paths per block default to what MODEL's parallel_r1.json records; a given
    --mode or --paths that contradicts it is used, with a warning."""
    from parallel_r1.models.settings import recorded, settle
    from parallel_r1.serve.server import ServeConfig
    from parallel_r1.serve.server import serve as run_server

    identity = recorded(model)[0] if model != "tiny" else {}
    values, warnings = settle({"mode": mode, "num_paths": paths}, identity,
                              {"mode": "structured", "num_paths": 2}, model=model,
                              flags={"num_paths": "--paths"})
    config = ServeConfig(model=model, mode=values["mode"], paths=values["num_paths"], host=host,
                         port=port, api_key_env=api_key_env, served_name=served_name,
                         max_tokens=max_tokens, device=device, dtype=dtype, threads=threads,
                         max_body_mb=max_body_mb, shutdown_grace=shutdown_grace,
                         kv_cache_gb=kv_cache_gb, max_samples=max_samples,
                         max_connections=max_connections, header_timeout=header_timeout,
                         body_timeout=body_timeout, write_timeout=write_timeout,
                         keep_alive=keep_alive, stream_buffer=stream_buffer)
    for line in warnings:  # after every setting was checked
        typer.echo(line, err=True)
    run_server(config)


def register(app: typer.Typer) -> None:
    """Add the `serve` command to `app`."""
    app.command("serve")(serve)
