"""Load test of `parallel-r1 serve` on loopback: N concurrent requests vs the same N in sequence.

Starts the server (tiny model unless --base-url points at a running one), sends the N requests
all at once, then the same N one after another, and checks that every request got a complete
answer (none lost: one reply per request, distinct ids, a finish reason on every choice). Reports
completion tokens per second for both and their ratio, plus the engine steps each phase took
(from /health), as JSON and a markdown table under bench/results/.

    .venv/bin/python bench/serve_load.py                  # 64 requests x 32 tokens, tiny model
    .venv/bin/python bench/serve_load.py --num-requests 16 --max-tokens 16 --timeout 120
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

RESULTS = Path(__file__).resolve().parent / "results"


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--num-requests", type=int, default=64, help="requests per phase")
    ap.add_argument("--max-tokens", type=int, default=32, help="completion tokens per request")
    ap.add_argument("--mode", default="structured", help="server mode: causal | structured")
    ap.add_argument("--threads", type=int, default=1, help="torch threads of the server")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds per phase, at most")
    ap.add_argument("--base-url", default=None, help="use a running server (no /v1 suffix)")
    ap.add_argument("--out", type=Path, default=RESULTS, help="where JSON + table go")
    return ap.parse_args()


def launch_server(serve_args: list[str], env: dict[str, str], what: str = "server",
                  preexec_fn=None) -> tuple[subprocess.Popen, str]:
    """`parallel-r1 serve tiny` on a free port with `serve_args`; (process, base URL) once
    /health answers (at most 120 s). Raises SystemExit naming `what` if it exits or never does.
    `preexec_fn` runs in the child before the server starts (e.g. to lower its fd limit)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "parallel_r1", "serve", "tiny", "--port",
                             str(port), *serve_args], env=env, preexec_fn=preexec_fn,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with {proc.returncode}")
        try:
            httpx.get(base + "/health", timeout=2).raise_for_status()
            return proc, base
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"{what} did not come up in 120 s")


def start_server(args: argparse.Namespace) -> tuple[subprocess.Popen, str]:
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), PYTHONUNBUFFERED="1")
    return launch_server(["--mode", args.mode, "--threads", str(args.threads)], env)


def body(i: int, max_tokens: int) -> dict:
    return {"model": "tiny", "prompt": f"Problem {i}: what is {i} + {2 * i}?",
            "max_tokens": max_tokens, "seed": i, "temperature": 1.0}


async def one(client: httpx.AsyncClient, i: int, max_tokens: int) -> dict:
    start = time.perf_counter()
    reply = await client.post("/v1/completions", json=body(i, max_tokens))
    reply.raise_for_status()
    data = reply.json()
    assert data["choices"] and all(c["finish_reason"] for c in data["choices"]), data
    return {"i": i, "id": data["id"], "tokens": data["usage"]["completion_tokens"],
            "latency_s": time.perf_counter() - start}


async def warm_up(base: str) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=120) as client:
        await one(client, 10**6, 4)


async def phase(base: str, args: argparse.Namespace, concurrent: bool) -> dict:
    limits = httpx.Limits(max_connections=args.num_requests)
    async with httpx.AsyncClient(base_url=base, timeout=args.timeout, limits=limits) as client:
        before = (await client.get("/health")).json()
        start = time.perf_counter()
        if concurrent:
            runs = [one(client, i, args.max_tokens) for i in range(args.num_requests)]
            results = await asyncio.wait_for(asyncio.gather(*runs, return_exceptions=True),
                                             args.timeout)
        else:
            results = []
            for i in range(args.num_requests):
                left = args.timeout - (time.perf_counter() - start)
                try:
                    results.append(await asyncio.wait_for(one(client, i, args.max_tokens), left))
                except (httpx.HTTPError, AssertionError, asyncio.TimeoutError) as exc:  # lost
                    results.append(exc)
        wall = time.perf_counter() - start
        after = (await client.get("/health")).json()
    done = [r for r in results if isinstance(r, dict)]
    tokens = sum(r["tokens"] for r in done)
    latencies = sorted(r["latency_s"] for r in done) or [float("nan")]
    return {"num_requests": args.num_requests, "num_ok": len(done),
            "num_lost": args.num_requests - len({r["id"] for r in done}),
            "errors": [repr(r) for r in results if not isinstance(r, dict)][:5],
            "completion_tokens": tokens, "wall_s": round(wall, 3),
            "tokens_per_s": round(tokens / wall, 1),
            "latency_p50_s": round(latencies[len(latencies) // 2], 3),
            "latency_max_s": round(latencies[-1], 3),
            "engine_steps": after["num_steps"] - before["num_steps"],
            "idle_after": after["active_requests"] == 0 and after["active_rows"] == 0}


def table(result: dict) -> str:
    rows = [("| phase | requests | ok | lost | tokens | wall s | tokens/s | p50 s | max s | "
            "engine steps |"), "|---|---|---|---|---|---|---|---|---|---|"]
    for name in ("concurrent", "sequential"):
        r = result[name]
        rows.append(f"| {name} | {r['num_requests']} | {r['num_ok']} | {r['num_lost']} | "
                    f"{r['completion_tokens']} | {r['wall_s']} | {r['tokens_per_s']} | "
                    f"{r['latency_p50_s']} | {r['latency_max_s']} | {r['engine_steps']} |")
    s = result["settings"]
    return ("\n".join(rows) + f"\n\nThroughput ratio (concurrent / sequential): "
            f"**{result['throughput_ratio']}x**  \nSettings: tiny model, {s['mode']} mode, "
            f"{s['max_tokens']} max tokens, torch threads {s['threads']}, {s['machine']}, "
            f"{s['date']}.\n")


def main() -> int:
    args = parse_args()
    proc, base = (None, args.base_url) if args.base_url else start_server(args)
    try:
        asyncio.run(warm_up(base))
        concurrent = asyncio.run(phase(base, args, concurrent=True))
        sequential = asyncio.run(phase(base, args, concurrent=False))
    finally:
        if proc is not None:
            proc.kill()
            proc.wait()
    ratio = round(concurrent["tokens_per_s"] / sequential["tokens_per_s"], 2)
    result = {"concurrent": concurrent, "sequential": sequential, "throughput_ratio": ratio,
              "settings": {"num_requests": args.num_requests, "max_tokens": args.max_tokens,
                           "mode": args.mode, "threads": args.threads,
                           "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
                           "date": time.strftime("%Y-%m-%d %H:%M")}}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "serve_load.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "serve_load.md").write_text("# Serving load test\n\n" + table(result))
    print(table(result))
    lost = concurrent["num_lost"] + sequential["num_lost"]
    return 1 if lost or not (concurrent["idle_after"] and sequential["idle_after"]) else 0


if __name__ == "__main__":
    raise SystemExit(main())
