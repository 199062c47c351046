"""Does one huge request stall the server? /health latency while a 20 MB chat body is posted.

Starts `parallel-r1 serve tiny` from each given source tree (so a change can be measured against
the code before it), posts one oversized chat body (20 MB by default, and a prompt far longer than
the context but under the body bound), and meanwhile polls /health every 50 ms. Reports the big
request's status and time to answer, and the /health latency (median, max) while it was in
flight, as JSON and a markdown table under bench/results/.

    .venv/bin/python bench/serve_big_body.py --src after=src
    .venv/bin/python bench/serve_big_body.py --src before=/tmp/base/src --src after=src
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
from serve_load import launch_server

RESULTS = Path(__file__).resolve().parent / "results"
REPO = Path(__file__).resolve().parents[1]


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", action="append", default=[],
                    help="LABEL=PATH of a source tree (its `src` dir); repeatable")
    ap.add_argument("--sizes-mb", default="20,6", help="body sizes to post, in MB")
    ap.add_argument("--timeout", type=float, default=180.0, help="seconds per request, at most")
    ap.add_argument("--out", type=Path, default=RESULTS, help="where JSON + table go")
    return ap.parse_args()


def start_server(src: Path) -> tuple[subprocess.Popen, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(src), PYTHONUNBUFFERED="1")
    return launch_server(["--threads", "1"], env, what=f"server from {src}")


def big_body(size_mb: float) -> bytes:
    """A chat body of about `size_mb` MB: one user message of short words."""
    words = "the cat sat on a mat " * int(size_mb * 1e6 / 21)
    return json.dumps({"model": "tiny", "max_tokens": 4,
                       "messages": [{"role": "user", "content": words}]}).encode()


async def one_case(base: str, body: bytes, timeout: float) -> dict:
    """Post `body` while polling /health; the latencies of the health checks during the post."""
    latencies: list[float] = []
    done = asyncio.Event()

    async def poll(client: httpx.AsyncClient) -> None:
        while not done.is_set():
            start = time.perf_counter()
            await client.get(base + "/health")
            latencies.append(time.perf_counter() - start)
            await asyncio.sleep(0.05)

    async with httpx.AsyncClient(timeout=timeout) as health, \
            httpx.AsyncClient(timeout=timeout) as poster:
        poller = asyncio.create_task(poll(health))
        await asyncio.sleep(0.2)
        start = time.perf_counter()
        try:
            reply = await poster.post(base + "/v1/chat/completions", content=body,
                                      headers={"Content-Type": "application/json"})
            status, message = reply.status_code, reply.text[:160]
        except httpx.HTTPError as exc:
            status, message = None, f"{type(exc).__name__}: {exc}"[:160]
        elapsed = time.perf_counter() - start
        await asyncio.sleep(0.3)  # a few checks after the answer, to see the server recover
        done.set()
        await poller
    return {"body_mb": round(len(body) / 1e6, 1), "status": status, "answer_s": elapsed,
            "message": message, "health_checks": len(latencies),
            "health_p50_ms": 1000 * statistics.median(latencies),
            "health_max_ms": 1000 * max(latencies)}


def main() -> None:
    args = parse_args()
    sources = [s.split("=", 1) for s in args.src] or [["current", str(REPO / "src")]]
    rows = []
    for label, src in sources:
        proc, base = start_server(Path(src).resolve())
        try:
            for size in (float(x) for x in args.sizes_mb.split(",")):
                row = asyncio.run(one_case(base, big_body(size), args.timeout))
                rows.append({"code": label, **row})
                print(json.dumps(rows[-1]), flush=True)
        finally:
            proc.kill()
            proc.wait()
    args.out.mkdir(parents=True, exist_ok=True)
    meta = {"machine": platform.platform(), "cpus": os.cpu_count(), "python": sys.version.split()[0],
            "command": " ".join(sys.argv)}
    (args.out / "serve_big_body.json").write_text(json.dumps({"meta": meta, "rows": rows},
                                                             indent=2) + "\n")
    lines = ["| code | body MB | status | answered in s | /health checks | /health p50 ms | "
             "/health max ms |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['code']} | {r['body_mb']} | {r['status']} | {r['answer_s']:.2f} | "
              f"{r['health_checks']} | {r['health_p50_ms']:.1f} | {r['health_max_ms']:.1f} |"
              for r in rows]
    table = "\n".join(lines)
    (args.out / "serve_big_body.md").write_text(
        "# /health latency while one oversized chat body is posted (tiny model, loopback)\n\n"
        f"`{meta['command']}` on {meta['machine']}, {meta['cpus']} CPUs\n\n{table}\n")
    print(table)


if __name__ == "__main__":
    main()
