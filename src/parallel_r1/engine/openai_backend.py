"""Any OpenAI-compatible completions server as a backend: token-id prompts in, token ids and
their log-probs out (vLLM's and SGLang's servers, and `parallel-r1 serve`).

Each segment is one POST /v1/completions with the whole context as a list of token ids,
`stop_token_ids`, `logprobs: 0`, a seed, and vLLM's `return_token_ids` and
`return_tokens_as_token_ids` (SGLang returns `token_ids` for the first; the ids are also read
back from "token_id:N" log-prob tokens). The server's prefix cache shares the prefix between a
block's path requests. Requests run on a thread pool (`max_concurrency` in flight); connection
errors, 408/429/5xx are retried with exponential backoff. Capabilities: none, so the block
program runs the causal and threads layouts, and injected tokens get NaN log-probs.

A `parallel-r1 serve` server is told to sample plainly (`parallel: {"mode": "causal"}`), so it
stops at `<Parallel>` as asked instead of forking itself; other servers get no extra field.
For exact log-probs at temperature != 1, run vLLM with `--logprobs-mode processed_logprobs`.
"""

from __future__ import annotations

import math
import os
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

from parallel_r1.engine.segments import Segment, SegmentResult
from parallel_r1.errors import EngineError

RETRY_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})


class OpenAIBackend:
    """Segments as completions requests to `base_url` (ending in /v1)."""

    capabilities = frozenset()

    def __init__(self, base_url: str, model: str | None = None, *, api_key_env: str | None = None,
                 max_concurrency: int = 8, timeout_s: float = 300.0, max_retries: int = 3,
                 backoff_s: float = 0.5):
        import httpx

        key = os.environ.get(api_key_env, "") if api_key_env else ""
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.base_url = base_url.rstrip("/")
        self.client = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout_s,
                                   limits=httpx.Limits(max_connections=max_concurrency))
        self.max_retries, self.backoff_s = max_retries, backoff_s
        self.model, self.ours = self._served_model(model)
        self.pool = ThreadPoolExecutor(max_concurrency, thread_name_prefix="openai-backend")
        self.futures: dict[Future, int] = {}

    def _served_model(self, wanted: str | None) -> tuple[str, bool]:
        import httpx

        try:
            reply = self.client.get("/models")
            reply.raise_for_status()
            served = reply.json()["data"]
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            raise EngineError(f"cannot list the models of {self.base_url}: {exc}") from None
        names = {m["id"]: m.get("owned_by") for m in served}
        if wanted is None and len(names) == 1:
            wanted = next(iter(names))
        if wanted not in names:
            raise EngineError(f"{self.base_url} does not serve model {wanted!r}; it serves: "
                              f"{', '.join(sorted(names))}")
        return wanted, names[wanted] == "parallel-r1"

    # ---- protocol -----------------------------------------------------------------------------
    def submit(self, segments: list[Segment]) -> None:
        for seg in segments:
            if seg.join:
                raise EngineError("an OpenAI-compatible server cannot join paths side by side; "
                                  "the structured layout needs the built-in engine")
            self.futures[self.pool.submit(self._complete, seg)] = seg.key

    def step(self) -> list[SegmentResult]:
        """Wait until at least one request in flight is answered; return the answered ones."""
        if not self.futures:
            return []
        done, _ = wait(list(self.futures), return_when=FIRST_COMPLETED)
        out = []
        for fut in done:
            key = self.futures.pop(fut)
            try:
                out.append(fut.result())
            except Exception as exc:  # a bug in parsing must not hang the caller
                out.append(SegmentResult(key, finish="error", error=f"{type(exc).__name__}: {exc}"))
        return out

    def release(self, keys: list[int]) -> None:
        pass  # the server's prefix cache manages itself

    def cancel(self, keys: list[int]) -> None:
        keys = set(keys)
        for fut, key in list(self.futures.items()):
            if key in keys:
                fut.cancel()
                del self.futures[fut]

    def has_work(self) -> bool:
        return bool(self.futures)

    def partial(self, key: int, start: int = 0) -> tuple[list[int], list[float]]:
        return [], []

    def max_rows(self, length: int) -> int | None:
        return None  # the server schedules its own memory

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.client.close()

    # ---- one request ----------------------------------------------------------------------------
    def body(self, seg: Segment) -> dict[str, Any]:
        """The completions request of one segment."""
        body: dict[str, Any] = {
            "model": self.model, "prompt": list(seg.context_ids), "max_tokens": seg.max_tokens,
            "temperature": seg.temperature, "top_p": seg.top_p, "seed": seg.seed % 2**62,
            "stop_token_ids": sorted(seg.stop_ids), "logprobs": 0, "return_token_ids": True,
            "return_tokens_as_token_ids": True}
        if seg.top_k:
            body["top_k"] = seg.top_k
        if seg.min_p:
            body["min_p"] = seg.min_p
        if self.ours:
            body["parallel"] = {"mode": "causal"}
        return body

    def _complete(self, seg: Segment) -> SegmentResult:
        if seg.max_tokens == 0:  # nothing to draw; scores need the "score" capability
            return SegmentResult(seg.key, extension_logprobs=[math.nan] * len(seg.extension),
                                 score=[math.nan] * len(seg.score_ids))
        reply = self._post(self.body(seg))
        if isinstance(reply, str):
            return SegmentResult(seg.key, finish="error", error=reply)
        try:
            return parse_choice(seg, reply["choices"][0])
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            return SegmentResult(seg.key, finish="error",
                                 error=f"malformed reply from {self.base_url}: {exc!r}")

    def _post(self, body: dict[str, Any]) -> dict[str, Any] | str:
        """The reply's JSON, or an error message once retries are spent."""
        import httpx

        error = ""
        for attempt in range(self.max_retries + 1):
            try:
                reply = self.client.post("/completions", json=body)
            except httpx.TransportError as exc:
                error = f"{type(exc).__name__}: {exc}"
            else:
                if reply.status_code == 200:
                    return reply.json()
                error = f"HTTP {reply.status_code}: {reply.text[:300]}"
                if reply.status_code not in RETRY_STATUS:
                    return error
            if attempt < self.max_retries:
                time.sleep(self.backoff_s * 2 ** attempt)
        return f"gave up after {self.max_retries} retries: {error}"


def parse_choice(seg: Segment, choice: dict[str, Any]) -> SegmentResult:
    """A completions choice -> the segment's drawn ids, their log-probs and its finish.

    Raises:
        ValueError: the reply has no token ids, or they do not match its log-probs.
    """
    logprobs = choice.get("logprobs") or {}
    values = [math.nan if v is None else float(v) for v in logprobs.get("token_logprobs") or []]
    ids = choice.get("token_ids")
    if ids is None:
        tokens = logprobs.get("tokens") or []
        if not all(isinstance(t, str) and t.startswith("token_id:") for t in tokens):
            raise ValueError("no token ids: the server returns neither `token_ids` "
                             "(return_token_ids) nor 'token_id:N' tokens")
        ids = [int(t.removeprefix("token_id:")) for t in tokens]
    ids = [int(i) for i in ids]
    if len(values) != len(ids):
        raise ValueError(f"{len(ids)} token ids but {len(values)} log-probs")
    stop = choice.get("stop_reason", choice.get("matched_stop"))
    if choice.get("finish_reason") == "stop" and (not ids or ids[-1] not in seg.stop_ids) \
            and isinstance(stop, int) and stop in seg.stop_ids:
        ids.append(stop)  # a server that leaves the stop token out of the ids
        values.append(math.nan)
    finish = "stop" if ids and ids[-1] in seg.stop_ids else "length"
    return SegmentResult(seg.key, ids, values, [[math.nan] * len(seg.watch_ids) for _ in ids],
                         [math.nan] * len(seg.extension), finish=finish)
