"""A small real OpenAI-compatible HTTP server for the teacher tests (stdlib only, own process).

GET /v1/models lists one model; POST /v1/chat/completions answers in the parallel format with the sum of the integers on the
prompt's "Problem:" line (or its last line) as the final answer. Knobs:
  --delay S          sleep S seconds before each answer (so a test can kill it mid-run)
  --fail-first N     the first N requests for each prompt fail: 429 (with Retry-After), then 503
  --retry-after S    the Retry-After value sent with 429
  --log FILE         append one line per request: "<status> <Authorization header> <problem>"
A prompt containing "BAD REQUEST" gets 400 (not retryable). Prints "READY <port>" when listening.
"""

from __future__ import annotations

import argparse
import json
import re
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ARGS = argparse.Namespace()
SEEN: Counter = Counter()
LOCK = threading.Lock()


def solve(prompt: str) -> tuple[str, str]:
    match = re.findall(r"Problem:\s*(.*)", prompt)
    problem = match[-1] if match else prompt.strip().splitlines()[-1]
    total = sum(int(n) for n in re.findall(r"-?\d+", problem))
    text = (f"We add the numbers.<Parallel><Path>\nleft to right: {total}\n</Path><Path>\n"
            f"right to left: {total}\n</Path></Parallel>\n<Summary>\nBoth give {total}.\n"
            f"</Summary>\nFinal Answer: {total}")
    return problem, text


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # keep the test output quiet
        pass

    def _send(self, status: int, body: dict, headers: dict | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path != "/v1/models":
            return self._send(404, {"error": {"message": f"no route {self.path}"}})
        self._send(200, {"object": "list", "data": [{"id": "stub", "object": "model"}]})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path != "/v1/chat/completions":
            return self._send(404, {"error": {"message": f"no route {self.path}"}})
        prompt = body["messages"][-1]["content"]
        problem, text = solve(prompt)
        with LOCK:
            SEEN[prompt] += 1
            attempt = SEEN[prompt]
        status, headers = 200, {}
        if "BAD REQUEST" in prompt:
            status = 400
        elif attempt <= ARGS.fail_first:
            status = 429 if attempt % 2 else 503
            headers = {"Retry-After": str(ARGS.retry_after)} if status == 429 else {}
        if status == 200:
            time.sleep(ARGS.delay)
        if ARGS.log:
            with LOCK, open(ARGS.log, "a") as handle:
                handle.write(f"{status} {self.headers.get('Authorization')} {problem}\n")
        if status != 200:
            return self._send(status, {"error": {"message": f"stub status {status}"}}, headers)
        self._send(200, {
            "id": f"cmpl-{attempt}", "object": "chat.completion", "model": body["model"],
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": len(prompt.split()), "completion_tokens": len(text.split())},
        })


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--fail-first", type=int, default=0)
    parser.add_argument("--retry-after", type=float, default=0.05)
    parser.add_argument("--log", default="")
    parser.parse_args(namespace=ARGS)
    server = ThreadingHTTPServer(("127.0.0.1", ARGS.port), Handler)
    server.daemon_threads = True
    print(f"READY {ARGS.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
