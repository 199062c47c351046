"""A real `parallel-r1 serve tiny` process on a free loopback port, always killed afterwards."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

API_KEY = "test-key-6"
KEY_ENV = "PARALLEL_R1_TEST_KEY"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """`python -m parallel_r1 serve MODEL ...` (tiny by default) in its own process; output goes
    to a log file."""

    def __init__(self, log: Path, port: int | None = None, *args: str, api_key: str | None = None,
                 model: str = "tiny", preexec_fn=None):
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
        cmd = [sys.executable, "-m", "parallel_r1", "serve", model, "--port", str(self.port),
               *args]
        if api_key is not None:
            env[KEY_ENV] = api_key
            cmd += ["--api-key-env", KEY_ENV]
        self.log, self.api_key = log, api_key
        self._log_file = log.open("ab")
        self.proc = subprocess.Popen(cmd, stdout=self._log_file, stderr=subprocess.STDOUT, env=env,
                                     preexec_fn=preexec_fn)  # e.g. a lower `ulimit -n`

    def wait_healthy(self, timeout: float = 120.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited with {self.proc.returncode}:\n"
                                     + self.log.read_text(errors="replace")[-3000:])
            try:
                return httpx.get(self.base + "/health", timeout=2).json()
            except httpx.HTTPError:
                time.sleep(0.2)
        raise AssertionError("server never became healthy:\n" + self.log.read_text()[-3000:])

    def health(self) -> dict:
        return httpx.get(self.base + "/health", timeout=10).json()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)
        self._log_file.close()


@pytest.fixture
def server_factory(tmp_path):
    """Start servers on demand; every one is SIGKILLed at teardown, whatever happened."""
    started: list[ServerProcess] = []

    def start(port: int | None = None, *args: str, api_key: str | None = None) -> ServerProcess:
        server = ServerProcess(tmp_path / f"server-{len(started)}.log", port, *args,
                               api_key=api_key)
        started.append(server)
        server.wait_healthy()
        return server

    yield start
    for server in started:
        server.kill()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One server for a module's tests, requiring API_KEY."""
    proc = ServerProcess(tmp_path_factory.mktemp("serve") / "server.log", api_key=API_KEY)
    try:
        proc.wait_healthy()
        yield proc
    finally:
        proc.kill()


@pytest.fixture(scope="module")
def bounded_server(tmp_path_factory):
    """One server for a module's tests, requiring API_KEY, request bodies bounded at 2 MB."""
    proc = ServerProcess(tmp_path_factory.mktemp("serve") / "server.log", None,
                         "--max-body-mb", "2", api_key=API_KEY)
    try:
        proc.wait_healthy()
        yield proc
    finally:
        proc.kill()


@pytest.fixture(scope="module")
def client(server):
    openai = pytest.importorskip("openai")
    with openai.OpenAI(base_url=server.base + "/v1", api_key=API_KEY, max_retries=0,
                       timeout=60) as c:
        yield c


@pytest.fixture(scope="session")
def server_process():
    """The ServerProcess class, for module-scoped servers of other models."""
    return ServerProcess
