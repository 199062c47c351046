"""Hostile clients against `parallel-r1 serve tiny` (issue 20, items 3 and 5), before vs after.

Three probes, each on a fresh server (tiny model, one torch thread):
  big:    one request inside every limit (P prompts of L token ids, n samples, max_tokens 1) while
          a small request is sent every 0.2 s: the server's peak RSS, its RSS once idle again,
          the big request's time, and the small requests' worst latency.
  slow:   S connections sending a header byte every second (server at `ulimit -n` F): the
          latency of a real request while they are held (or that it failed).
  unread: U streams (n=4, 1,900 tokens each) opened and never read for W seconds: tokens the
          engine generated meanwhile, and a small request's latency during them.
The 'before' side is main's code (`--src /tmp/server-before/src`, serve flags it lacks left
out); the 'after' side this tree's, with `--kv-cache-gb` scaled to the tiny model.

    git archive cecf16ed src | tar -x -C /tmp/server-before
    python bench/serve_hostile.py --side before --src /tmp/server-before/src
    python bench/serve_hostile.py --side after --src src      # then the table of both
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import socket
import subprocess
import threading
import time
from pathlib import Path

import httpx
from serve_load import launch_server

RESULTS = Path(__file__).resolve().parent / "results"
AFTER_FLAGS = ["--kv-cache-gb", "0.05"]  # the tiny model's KV: 512 B per token


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--side", choices=("before", "after"), required=True)
    ap.add_argument("--src", type=Path, required=True, help="the src/ folder to serve from")
    ap.add_argument("--prompts", type=int, default=16, help="big: prompts")
    ap.add_argument("--prompt-len", type=int, default=2000, help="big: token ids per prompt")
    ap.add_argument("--n", type=int, default=16, help="big: samples per prompt")
    ap.add_argument("--slow", type=int, default=300, help="slow: connections held")
    ap.add_argument("--fd-limit", type=int, default=256, help="slow: the server's ulimit -n")
    ap.add_argument("--unread", type=int, default=4, help="unread: streams")
    ap.add_argument("--window", type=float, default=20.0, help="unread: seconds unread")
    ap.add_argument("--probes", default="big,slow,unread", help="which probes to run")
    ap.add_argument("--out", type=Path, default=RESULTS)
    return ap.parse_args()


def launch(src: Path, flags: list[str], fd_limit: int | None = None) -> tuple[subprocess.Popen,
                                                                              str]:
    """The server on a free port; (process, base URL) once /health answers."""
    env = dict(os.environ, PYTHONPATH=str(src.resolve()), OMP_NUM_THREADS="1")

    def limit() -> None:
        if fd_limit:
            resource.setrlimit(resource.RLIMIT_NOFILE, (fd_limit, fd_limit))

    return launch_server(["--threads", "1", *flags], env, preexec_fn=limit)


def rss_mb(pid: int) -> tuple[float, float]:
    """(resident, peak resident) MB of a process."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            values[line.split(":")[0]] = int(line.split()[1]) / 1024
    return round(values["VmRSS"], 1), round(values["VmHWM"], 1)


def small(base: str, timeout: float = 120.0) -> float | None:
    """Seconds a 4-token completion takes (None: it failed or timed out)."""
    start = time.perf_counter()
    try:
        reply = httpx.post(base + "/v1/completions", timeout=timeout, json={
            "model": "tiny", "prompt": "What is 2 + 3?", "max_tokens": 4, "seed": 0})
        reply.raise_for_status()
    except httpx.HTTPError:
        return None
    return round(time.perf_counter() - start, 3)


def probe_big(args: argparse.Namespace, flags: list[str]) -> dict:
    proc, base = launch(args.src, flags)
    try:
        small(base)
        rss0, _ = rss_mb(proc.pid)
        ids = [[(7 * p + t) % 500 + 10 for t in range(args.prompt_len)]
               for p in range(args.prompts)]
        result: dict = {}

        def big() -> None:
            start = time.perf_counter()
            reply = httpx.post(base + "/v1/completions", timeout=600, json={
                "model": "tiny", "prompt": ids, "n": args.n, "max_tokens": 1, "seed": 0})
            result.update(status=reply.status_code, big_s=round(time.perf_counter() - start, 2))

        worker = threading.Thread(target=big)
        worker.start()
        latencies = []
        while worker.is_alive():
            time.sleep(0.2)
            if worker.is_alive():
                latencies.append(small(base))
        worker.join()
        time.sleep(2.0)  # idle: the cache may be given back
        rss_idle, peak = rss_mb(proc.pid)
    finally:
        proc.kill()
        proc.wait()
    done = [x for x in latencies if x is not None]
    return {**result, "rss_start_mb": rss0, "peak_rss_mb": peak, "rss_idle_mb": rss_idle,
            "small_during_max_s": max(done) if done else None,
            "small_during_count": len(latencies), "small_failed": len(latencies) - len(done)}


def probe_slow(args: argparse.Namespace, flags: list[str]) -> dict:
    proc, base = launch(args.src, flags, args.fd_limit)
    port = int(base.rsplit(":", 1)[1])
    held: list[socket.socket] = []
    stop = threading.Event()
    try:
        alone = small(base)
        for _ in range(args.slow):
            try:
                held.append(socket.create_connection(("127.0.0.1", port), timeout=2))
            except OSError:
                break

        def trickle() -> None:
            while not stop.wait(1.0):
                for sock in held:
                    try:
                        sock.send(b"G")
                    except OSError:
                        pass

        threading.Thread(target=trickle, daemon=True).start()
        time.sleep(1.0)
        during = small(base, timeout=15.0)
    finally:
        stop.set()
        for sock in held:
            sock.close()
        proc.kill()
        proc.wait()
    return {"connections_opened": len(held), "small_alone_s": alone, "small_during_s": during}


def probe_unread(args: argparse.Namespace, flags: list[str]) -> dict:
    proc, base = launch(args.src, flags)
    port = int(base.rsplit(":", 1)[1])
    streams = []
    try:
        alone = small(base)
        before = httpx.get(base + "/health").json()["num_tokens"]
        body = json.dumps({"model": "tiny", "prompt": "Tell a long story.", "n": 4,
                           "max_tokens": 1900, "stream": True, "seed": 5}).encode()
        for _ in range(args.unread):
            sock = socket.create_connection(("127.0.0.1", port))
            sock.sendall(b"POST /v1/completions HTTP/1.1\r\nhost: x\r\ncontent-type: "
                         b"application/json\r\ncontent-length: %d\r\n\r\n" % len(body) + body)
            streams.append(sock)  # never read
        time.sleep(args.window / 2)
        during = small(base, timeout=args.window)
        half = httpx.get(base + "/health").json()
        time.sleep(args.window / 2)
        end = httpx.get(base + "/health").json()
    finally:
        for sock in streams:
            sock.close()
        proc.kill()
        proc.wait()
    return {"streams": args.unread, "tokens_generated": end["num_tokens"] - before,
            "tokens_last_half": end["num_tokens"] - half["num_tokens"],
            "rows_running_at_end": end["active_rows"], "tokens_asked": args.unread * 4 * 1900,
            "small_alone_s": alone, "small_during_s": during}


def table(results: dict) -> str:
    rows = ["| measure | before (main) | after |", "|---|---|---|"]
    names = [("big", "big_s", "big request: seconds"),
             ("big", "peak_rss_mb", "big request: server peak RSS, MB"),
             ("big", "rss_idle_mb", "big request: server RSS once idle, MB"),
             ("big", "rss_start_mb", "server RSS before it, MB"),
             ("big", "small_during_max_s", "small request during it: worst latency, s"),
             ("slow", "small_alone_s", "small request alone, s"),
             ("slow", "small_during_s", "small request while slow connections are held, s"),
             ("unread", "tokens_generated", "unread streams: tokens generated"),
             ("unread", "tokens_last_half", "unread streams: tokens in the window's 2nd half"),
             ("unread", "rows_running_at_end", "unread streams: engine rows running at the end"),
             ("unread", "small_during_s", "small request during unread streams, s")]
    for probe, key, label in names:
        cells = [str(results.get(side, {}).get(probe, {}).get(key, "-")).replace("None",
                                                                                 "failed")
                 for side in ("before", "after")]
        rows.append(f"| {label} | {cells[0]} | {cells[1]} |")
    return "\n".join(rows) + "\n"


def main() -> int:
    args = parse_args()
    flags = AFTER_FLAGS if args.side == "after" else []
    probes = {"big": probe_big, "slow": probe_slow, "unread": probe_unread}
    side = {name: probes[name](args, flags) for name in args.probes.split(",")}
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "serve_hostile.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    results[args.side] = {**results.get(args.side, {}), **side}
    results["settings"] = {**{k: v for k, v in vars(args).items() if k not in ("out", "src",
                                                                                 "side", "probes")},
                           "after_flags": AFTER_FLAGS, "machine": f"{platform.machine()}, "
                           f"{os.cpu_count()} CPUs", "date": time.strftime("%Y-%m-%d %H:%M")}
    path.write_text(json.dumps(results, indent=2) + "\n")
    s = results["settings"]
    md = (f"# Hostile clients against the server (issue 20, items 3 and 5)\n\n{table(results)}\n"
          f"big: {s['prompts']} prompts x {s['prompt_len']} token ids x n={s['n']}, max_tokens 1; "
          f"slow: {s['slow']} connections at a byte a second, server `ulimit -n` {s['fd_limit']};"
          f" unread: {s['unread']} streams x n=4 x 1,900 tokens, {s['window']} s unread. "
          f"After: serve {' '.join(AFTER_FLAGS)}. Tiny model, 1 torch thread, {s['machine']}, "
          f"{s['date']}. Made by `python bench/serve_hostile.py --side before|after --src ...`.\n")
    (args.out / "serve_hostile.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
