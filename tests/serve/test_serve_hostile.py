"""A server no single client can take down (issue 20, items 3, 5 and 9), each case against a
real server process over real sockets: one huge request inside every limit, slow and silent
connections, streams that are never read, and what the server shows without a key."""

from __future__ import annotations

import json
import resource
import socket
import threading
import time

import httpx
import pytest

from parallel_r1.models.tiny import build_tiny

# The tiny model draws all of its tokens for this prompt and seed (no end of sequence).
LONG = {"model": "tiny", "prompt": "Tell a long story.", "seed": 5, "max_tokens": 1900}


def is_openai_error(reply: httpx.Response, status: int, param: str | None = None) -> dict:
    assert reply.status_code == status, reply.text
    error = reply.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["param"] == param
    return error


def wait_idle(server, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        health = server.health()
        if health["active_requests"] == health["active_rows"] == health["waiting"] == 0:
            return health
        assert time.monotonic() < deadline, f"server still busy: {health}"
        time.sleep(0.05)


# ------------------------------------------------------------------ item 3: one huge request

def test_samples_per_request_are_capped_with_a_400_naming_n(server_factory):
    server = server_factory()
    reply = httpx.post(server.base + "/v1/completions", timeout=60, json={
        "model": "tiny", "prompt": [f"q{i}" for i in range(16)], "n": 32, "max_tokens": 1})
    error = is_openai_error(reply, 400, "n")
    assert "512 samples" in error["message"] and "--max-samples" in error["message"]
    assert server.health()["num_steps"] == 0  # refused before the engine saw it


def test_a_huge_request_runs_in_waves_within_the_kv_budget_and_gives_memory_back(
        server_factory):
    """16 prompts of 1,000 ids x n=16: unbounded, 256 rows of 1,024 slots (134 MB of cache) at
    once; with a 20 MB budget the engine runs it in waves, a small request sent meanwhile
    finishes first, and the cache is empty again once the server is idle."""
    server = server_factory(None, "--kv-cache-gb", "0.02")
    ids = [[(7 * p + t) % 500 + 10 for t in range(1000)] for p in range(16)]
    done: dict[str, float] = {}

    def big() -> None:
        reply = httpx.post(server.base + "/v1/completions", timeout=300, json={
            "model": "tiny", "prompt": ids, "n": 16, "max_tokens": 1, "seed": 0})
        assert reply.status_code == 200, reply.text
        assert len(reply.json()["choices"]) == 256
        done["big"] = time.monotonic()

    worker = threading.Thread(target=big)
    worker.start()
    while server.health()["num_steps"] == 0 and worker.is_alive():
        time.sleep(0.01)
    reply = httpx.post(server.base + "/v1/completions", timeout=300, json={
        "model": "tiny", "prompt": "What is 2 + 3?", "max_tokens": 2, "seed": 0})
    done["small"] = time.monotonic()
    worker.join()
    assert reply.status_code == 200 and "big" in done
    assert done["small"] < done["big"], "the small request waited for the huge one"
    health = wait_idle(server)
    budget = health["kv_budget_bytes"]
    assert budget == int(0.02 * 2**30)
    assert 0 < health["kv_cache_peak_bytes"] <= 1.1 * budget  # rows round to the cache length
    deadline = time.monotonic() + 5
    while server.health()["kv_cache_bytes"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.health()["kv_cache_bytes"] == 0


# ------------------------------------------------------------------ item 5: slow clients

def test_slow_header_connections_past_the_fd_limit_do_not_lock_out_real_requests(tmp_path,
                                                                                 server_process):
    """300 connections sending a header byte a second to a server with `ulimit -n 256`:
    a real request still gets its answer in seconds (the oldest slow one is dropped)."""
    def low_fd_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))

    server = server_process(tmp_path / "server.log", None, preexec_fn=low_fd_limit)
    held: list[socket.socket] = []
    try:
        server.wait_healthy()
        for _ in range(300):
            held.append(socket.create_connection(("127.0.0.1", server.port), timeout=5))
        for _ in range(2):
            for sock in held:
                try:
                    sock.send(b"P")
                except OSError:
                    pass
            time.sleep(0.5)
        start = time.monotonic()
        reply = httpx.post(server.base + "/v1/completions", timeout=10, json={
            "model": "tiny", "prompt": "hi", "max_tokens": 2})
        assert reply.status_code == 200 and time.monotonic() - start < 10
    finally:
        for sock in held:
            sock.close()
        server.kill()


def read_until_closed(sock: socket.socket, timeout: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection, and when that was."""
    sock.settimeout(timeout)
    start, data = time.monotonic(), b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    return data, time.monotonic() - start


def test_headers_and_bodies_sent_too_slowly_get_a_408_and_the_connection_closed(
        server_factory):
    server = server_factory(None, "--header-timeout", "1", "--body-timeout", "1")
    slow_head = socket.create_connection(("127.0.0.1", server.port))
    stop = threading.Event()

    def trickle() -> None:
        for byte in b"POST /v1/completions HTTP/1.1\r\nhost: x\r\n":
            if stop.wait(0.2):
                return
            try:
                slow_head.send(bytes([byte]))
            except OSError:
                return

    threading.Thread(target=trickle, daemon=True).start()
    data, took = read_until_closed(slow_head, 10)
    stop.set()
    assert data.startswith(b"HTTP/1.1 408") and took < 5, (data, took)

    slow_body = socket.create_connection(("127.0.0.1", server.port))
    slow_body.sendall(b"POST /v1/completions HTTP/1.1\r\nhost: x\r\ncontent-type: "
                      b"application/json\r\ncontent-length: 100\r\n\r\n{\"model\"")
    data, took = read_until_closed(slow_body, 10)
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408") and took < 5, (data, took)
    assert json.loads(body)["error"]["code"] == "request_timeout"
    assert server.health()["active_requests"] == 0


def test_a_stream_nobody_reads_stops_generating_and_frees_its_rows(server_factory):
    """Two streams of n=4 x 1,900 tokens whose clients never read (main generated 9,440 of the
    15,200 asked, the rest ended early): generation stops after a bounded number of tokens
    (socket buffers + --stream-buffer) instead of running to the end."""
    server = server_factory()
    body = json.dumps({**LONG, "stream": True, "n": 4}).encode()
    streams = []
    for _ in range(2):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", server.port))
        sock.sendall(b"POST /v1/completions HTTP/1.1\r\nhost: x\r\ncontent-type: "
                     b"application/json\r\ncontent-length: %d\r\n\r\n" % len(body) + body)
        streams.append(sock)
    try:
        last, deadline = -1, time.monotonic() + 60
        while time.monotonic() < deadline:  # until the token count stops moving
            time.sleep(1.0)
            health = server.health()
            if health["num_tokens"] == last:
                break
            last = health["num_tokens"]
        assert health["num_tokens"] < 4000, health
        assert health["active_rows"] == 0 and health["num_aborted"] == 2, health
        reply = httpx.post(server.base + "/v1/completions", timeout=30, json={
            "model": "tiny", "prompt": "hi", "max_tokens": 2})
        assert reply.status_code == 200
    finally:
        for sock in streams:
            sock.close()


# ------------------------------------------------------------------ item 9: what shows without a key

@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from parallel_r1.models.load import save

    directory = tmp_path_factory.mktemp("secret-place") / "my-model"
    model, tokenizer = build_tiny(seed=0)
    save(model, tokenizer, directory)
    return directory


def test_health_shows_no_path_and_the_docs_need_the_key(tmp_path, server_process, model_dir):
    server = server_process(tmp_path / "server.log", None, api_key="k-9", model=str(model_dir))
    try:
        server.wait_healthy()
        health = httpx.get(server.base + "/health", timeout=10)
        assert health.status_code == 200 and "secret-place" not in health.text
        assert "model" not in health.json()
        for route in ("/docs", "/redoc", "/openapi.json"):
            reply = httpx.get(server.base + route, timeout=10)
            assert reply.status_code == 401, (route, reply.status_code)
            assert reply.json()["error"]["code"] == "invalid_api_key"
            keyed = httpx.get(server.base + route, timeout=10,
                              headers={"Authorization": "Bearer k-9"})
            assert keyed.status_code == 200, (route, keyed.text[:200])
        assert "/v1/completions" in httpx.get(server.base + "/openapi.json", headers={
            "Authorization": "Bearer k-9"}).json()["paths"]
    finally:
        server.kill()
