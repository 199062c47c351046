"""Cold-start traces from a teacher behind any OpenAI-compatible endpoint, then the SFT filter.

`generate` first probes the endpoint (one `GET /models`), then sends many requests at once
(bounded), retries connection errors, 429 and 5xx with exponential backoff and jitter (honouring
Retry-After), and appends each answer to a JSONL log as one whole line (single write, fsync) keyed
by the problem id; a rerun skips ids already in the log and repairs a last line cut by a crash.
A run of consecutive connection failures across all workers stops the whole run at once (the
teacher is down: retrying each problem would take hours). One writer per log (a lock file beside
it); readers keep the last row of each id. `postprocess` normalises, validates, grades against gold,
and reports: valid share, answer accuracy, rejection reasons, blocks and paths per trace.
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from parallel_r1.data.sources import EMPTY, Record, iter_json_rows, write_jsonl
from parallel_r1.data.templates import render_prompt
from parallel_r1.errors import ConfigError, DataError, ParallelR1Error
from parallel_r1.files import append_jsonl, command_line, dedupe, one_writer
from parallel_r1.files import read_log as _read_log

RETRY_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})


@dataclass
class TeacherConfig:
    """How to reach the teacher and how hard to push it."""

    base_url: str = field(default="http://127.0.0.1:8000/v1",
                          metadata={"help": "OpenAI-compatible base URL, ending in /v1"})
    model: str = field(default="teacher", metadata={"help": "model name sent with each request"})
    api_key_env: str = field(default="OPENAI_API_KEY",
                             metadata={"help": "environment variable holding the API key"})
    max_concurrency: int = field(default=8, metadata={"help": "requests in flight at most"})
    max_retries: int = field(default=6, metadata={"help": "retries per problem before giving up"})
    backoff_s: float = field(default=1.0, metadata={"help": "first retry delay (doubles each try)"})
    max_backoff_s: float = field(default=60.0, metadata={"help": "cap on one retry delay"})
    timeout_s: float = field(default=300.0, metadata={"help": "per-request timeout in seconds"})
    temperature: float = field(default=0.7, metadata={"help": "sampling temperature"})
    max_tokens: int = field(default=4096, metadata={"help": "completion token limit"})
    max_connect_failures: int = field(default=8, metadata={
        "help": "connection failures in a row, all workers together, that stop the run"})

    def __post_init__(self) -> None:
        for name in ("max_concurrency", "max_tokens", "max_connect_failures"):
            if getattr(self, name) < 1:
                raise ConfigError(f"must be >= 1, got {getattr(self, name)}", field=name)
        for name in ("max_retries", "backoff_s", "max_backoff_s", "temperature"):
            if getattr(self, name) < 0:
                raise ConfigError(f"must be >= 0, got {getattr(self, name)}", field=name)
        if self.timeout_s <= 0:
            raise ConfigError(f"must be > 0, got {self.timeout_s}", field="timeout_s")
        if not self.base_url.startswith(("http://", "https://")):
            raise ConfigError(f"'{self.base_url}' is not an http(s) URL; e.g. "
                              "http://127.0.0.1:8000/v1", field="base_url")


# ---------------------------------------------------------------- the append-only log

def read_log(path: str | Path) -> tuple[dict[str, dict], dict[str, int]]:
    """Rows already in a coldstart log, by id; a last line cut by a crash is cut off the file.

    Returns:
        (rows by id, metrics with num_rows and num_repaired_bytes).
    Raises:
        DataError: a broken line that is not the last one, or a row without `id`.
    """
    records, repaired = _read_log(path)
    rows: dict[str, dict] = {}
    for number, row in records:
        if "id" not in row:
            raise DataError("missing required field", file=str(path), line=number, field="id")
        rows[str(row["id"])] = row  # an id written twice: the last row wins
    return rows, {"num_rows": len(rows), "num_repaired_bytes": repaired}


class TeacherUnreachable(ParallelR1Error):
    """The teacher endpoint does not answer (refused, reset, timed out) or refuses our key."""


class _Breaker:
    """Consecutive connection failures (or replies saying the route does not exist) across
    all workers; trips at `limit`."""

    def __init__(self, limit: int):
        self.limit, self.failures, self.last = limit, 0, ""

    @property
    def tripped(self) -> bool:
        return self.failures >= self.limit

    def answered(self) -> None:
        self.failures = 0

    def failed(self, error: str) -> None:
        self.failures, self.last = self.failures + 1, error
        if self.tripped:
            raise TeacherUnreachable(f"{self.failures} failures in a row, last: {error}")


async def probe(client: Any, cfg: TeacherConfig) -> None:
    """One cheap request (`GET /models`) before the run: any HTTP answer but 401/403 will do.

    Raises:
        TeacherUnreachable: no connection, or the key is refused.
    """
    import httpx

    try:
        reply = await client.get("/models", timeout=min(cfg.timeout_s, 10.0))
    except httpx.TransportError as exc:
        raise TeacherUnreachable(f"{type(exc).__name__}: {exc}") from None
    if reply.status_code in (401, 403):
        raise TeacherUnreachable(f"HTTP {reply.status_code}, the API key was refused "
                                 f"(${cfg.api_key_env}): {reply.text[:200]}")


# ---------------------------------------------------------------- the client

def _retry_delay(cfg: TeacherConfig, attempt: int, retry_after: str | None) -> float:
    if retry_after:
        try:
            return min(float(retry_after), cfg.max_backoff_s)
        except ValueError:
            pass  # an HTTP date: fall back to our own backoff
    ceiling = min(cfg.max_backoff_s, cfg.backoff_s * 2 ** attempt)
    return ceiling * (0.5 + random.random() / 2)  # jitter so retries do not arrive in waves


async def ask_teacher(client: Any, cfg: TeacherConfig, prompt: str,
                      on_retry: Any = None, breaker: _Breaker | None = None) -> dict[str, Any]:
    """One chat completion with retries; returns {output, finish_reason, usage, num_retries}.

    Args:
        breaker: shared by all workers; counts connection failures in a row.
    Raises:
        RuntimeError: a non-retryable status, a malformed reply, or retries exhausted.
        TeacherUnreachable: the breaker tripped (here or in another worker).
    """
    import httpx

    breaker = breaker or _Breaker(1 << 30)
    body = {"model": cfg.model, "messages": [{"role": "user", "content": prompt}],
            "temperature": cfg.temperature, "max_tokens": cfg.max_tokens}
    for attempt in range(cfg.max_retries + 1):
        retry_after, error = None, ""
        if breaker.tripped:
            raise TeacherUnreachable(f"{breaker.failures} failures in a row, last: "
                                     f"{breaker.last}")
        try:
            reply = await client.post("/chat/completions", json=body)
        except httpx.TransportError as exc:  # connection refused/reset, timeouts
            error = f"{type(exc).__name__}: {exc}"
            breaker.failed(error)
        else:
            no_route = reply.status_code in (404, 405)  # every request will fail alike
            if not no_route:
                breaker.answered()
            if reply.status_code == 200:
                try:
                    choice = reply.json()["choices"][0]
                    return {"output": choice["message"]["content"],
                            "finish_reason": choice.get("finish_reason"),
                            "usage": reply.json().get("usage"), "num_retries": attempt}
                except (ValueError, KeyError, IndexError, TypeError) as exc:
                    raise RuntimeError(f"malformed reply: {exc!r}") from None
            error = f"HTTP {reply.status_code}: {reply.text[:200]}"
            if no_route:
                error = (f"HTTP {reply.status_code} for POST {client.base_url}chat/completions "
                         "(check the base URL: OpenAI-compatible servers serve it under /v1)")
                breaker.failed(error)
            if reply.status_code not in RETRY_STATUS:
                raise RuntimeError(error)
            retry_after = reply.headers.get("retry-after")
        if attempt == cfg.max_retries:
            break
        if on_retry is not None:
            on_retry(+1)
        await asyncio.sleep(_retry_delay(cfg, attempt, retry_after))
        if on_retry is not None:
            on_retry(-1)
    raise RuntimeError(f"gave up after {cfg.max_retries} retries; last error {error}")


@dataclass
class _Progress:
    bar: Any
    done: int = 0
    failed: int = 0
    retrying: int = 0
    num_retries: int = 0

    def update(self, *, done: int = 0, failed: int = 0, retrying: int = 0) -> None:
        self.done, self.failed, self.retrying = (self.done + done, self.failed + failed,
                                                 self.retrying + retrying)
        self.num_retries += max(retrying, 0)
        self.bar.update(done + failed)
        self.bar.set_postfix(done=self.done, failed=self.failed, retrying=self.retrying,
                             refresh=sys.stderr.isatty())  # a log file: with the next update


async def _solve_all(todo: list[Record], out: Path, cfg: TeacherConfig, template: str,
                     progress: _Progress) -> dict[str, str]:
    import httpx

    headers = {"Authorization": f"Bearer {os.environ.get(cfg.api_key_env, 'none')}"}
    failures: dict[str, str] = {}
    gate = asyncio.Semaphore(cfg.max_concurrency)
    breaker = _Breaker(cfg.max_connect_failures)
    limits = httpx.Limits(max_connections=cfg.max_concurrency)
    timeout = httpx.Timeout(cfg.timeout_s, connect=min(cfg.timeout_s, 10.0))
    async with httpx.AsyncClient(base_url=cfg.base_url.rstrip("/"), headers=headers,
                                 timeout=timeout, limits=limits) as client:
        await probe(client, cfg)
        fd = os.open(out, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

        async def solve(record: Record) -> None:
            async with gate:
                prompt = render_prompt(template, record.question)
                try:
                    reply = await ask_teacher(client, cfg, prompt,
                                              lambda n: progress.update(retrying=n), breaker)
                except RuntimeError as exc:
                    failures[record.id] = str(exc)
                    progress.update(failed=1)
                    return
                append_jsonl(fd, {"id": record.id, "question": record.question,
                                  "answer": record.answer, "source": record.source,
                                  "prompt": prompt, "model": cfg.model, **reply}, name=out)
                progress.update(done=1)

        tasks = [asyncio.create_task(solve(r)) for r in todo]
        try:
            if tasks:  # the first error (teacher down, disk full) stops every worker
                await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            os.close(fd)  # only once no worker can write any more
        for task in tasks:
            if not task.cancelled() and task.exception() is not None:
                raise task.exception()
    return failures


def generate(records: Iterable[Record], out: str | Path, *, config: TeacherConfig,
             template: str = "parallel", show_progress: bool = True) -> dict[str, Any]:
    """Ask the teacher for every record whose id is not yet in the log `out`; append as they come.

    Returns:
        metrics: num_total, num_skipped (already in the log), num_done, num_failed,
        num_retries, num_repaired_bytes, failures ({id: last error}).
    Raises:
        TeacherUnreachable: the probe failed, or connections failed `max_connect_failures` times
            in a row; names the URL and how many problems are done (those are kept).
        WriterLockedError: another process is writing this log.
        DiskFullError: the disk filled up (the log keeps every whole row).
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with one_writer(out.parent, command_line(), name=f".{out.name}.lock"):
        return _generate(list(records), out, config, template, show_progress)


def _generate(records: list[Record], out: Path, config: TeacherConfig, template: str,
              show_progress: bool) -> dict[str, Any]:
    from tqdm import tqdm

    done, log_metrics = read_log(out)
    todo = list({r.id: r for r in records if r.id not in done}.values())
    bar = tqdm(total=len(todo), desc="teacher", unit="problem", disable=not show_progress)
    progress = _Progress(bar)
    try:
        failures = asyncio.run(_solve_all(todo, out, config, template, progress))
    except TeacherUnreachable as exc:
        num_done = len(records) - len(todo) + progress.done
        raise TeacherUnreachable(
            f"teacher at {config.base_url} is unreachable ({exc}); {num_done} of "
            f"{len(records)} problems done, kept in {out}; rerun the same command to resume"
        ) from None
    finally:
        bar.close()
    return {"num_total": len(records), "num_skipped": len(records) - len(todo),
            "num_done": progress.done, "num_failed": len(failures),
            "num_retries": progress.num_retries,
            "num_repaired_bytes": log_metrics["num_repaired_bytes"], "failures": failures}


# ---------------------------------------------------------------- the SFT filter

def check_trace(text: str, gold: str, *, mode: str = "paper",
                grader: str = "math-verify") -> dict[str, Any]:
    """Normalise one teacher text, validate it, grade its final answer, count blocks and paths.

    Returns:
        {text (normalised), num_edits, issues (codes), pred, is_correct (bool | None),
         num_blocks, paths_per_block (list), reasons (why it would be rejected; empty = keep)}.
    """
    from parallel_r1.format.normalize import normalize
    from parallel_r1.format.parse import parse
    from parallel_r1.format.validate import validate
    from parallel_r1.rewards.grading import grade_response_detail

    text, edits = normalize(text)
    codes = sorted({issue.code for issue in validate(text, mode)})
    verdict = grade_response_detail(text, gold, grader)  # the answer contract's reading
    pred = verdict.pred
    is_correct = verdict.correct if pred is not None else None
    blocks = parse(text).blocks
    reasons = [f"format:{code}" for code in codes]
    if pred is None:
        reasons.append("no_final_answer")
    elif not is_correct:
        reasons.append("wrong_answer")
    return {"text": text, "num_edits": len(edits), "issues": codes, "pred": pred,
            "is_correct": is_correct, "num_blocks": len(blocks),
            "paths_per_block": [b.num_paths for b in blocks], "reasons": reasons}


def postprocess_rows(rows: Iterable[Mapping[str, Any]], *, field: str = "output",
                     gold_field: str = "answer", mode: str = "paper",
                     grader: str = "math-verify") -> tuple[list[dict], dict[str, Any]]:
    """Keep rows whose `field` text is format-valid and whose final answer equals the gold one.

    Kept rows are the input row plus `completion` (the normalised trace) and `num_blocks`.

    Returns:
        (kept rows, report) with num_rows, num_kept, valid_share, answer_accuracy (over all
        rows), rejections {reason: count}, blocks_per_trace and paths_per_block histograms
        (over kept rows), num_normalized (rows the normaliser changed).
    """
    kept, reasons = [], Counter()
    blocks, paths = Counter(), Counter()
    num_rows = num_valid = num_correct = num_edited = 0
    for row in rows:
        num_rows += 1
        result = check_trace(str(row.get(field) or ""), str(row.get(gold_field, "")),
                             mode=mode, grader=grader)
        num_valid += not result["issues"]
        num_correct += bool(result["is_correct"])
        num_edited += result["num_edits"] > 0
        reasons.update(result["reasons"])
        if not result["reasons"]:
            kept.append({**row, "completion": result["text"], "num_blocks": result["num_blocks"]})
            blocks[result["num_blocks"]] += 1
            paths.update(result["paths_per_block"])
    report = {"num_rows": num_rows, "num_kept": len(kept),
              "valid_share": num_valid / num_rows if num_rows else 0.0,
              "answer_accuracy": num_correct / num_rows if num_rows else 0.0,
              "num_normalized": num_edited, "rejections": dict(sorted(reasons.items())),
              "blocks_per_trace": dict(sorted(blocks.items())),
              "paths_per_block": dict(sorted(paths.items()))}
    return kept, report


def postprocess(path: str | Path, out: str | Path | None = None, *, field: str = "output",
                gold_field: str = "answer", mode: str = "paper",
                grader: str = "math-verify") -> dict[str, Any]:
    """`postprocess_rows` on a JSONL file; writes the kept rows to `out` atomically when given.

    Rows sharing an `id` (a log written twice) count once: the last one (`num_duplicates` says
    how many were dropped).

    Raises:
        DataError: a row lacks `field` or `gold_field`, or its gold answer is blank (names the
            file and line).
    """
    path = Path(path)
    rows = []
    for number, row in iter_json_rows(path):
        for name in (field, gold_field):
            if name not in row or name == gold_field and not str(row[name]).strip():
                raise DataError("missing required field" if name not in row else EMPTY,
                                file=str(path), line=number, field=name)
        rows.append(row)
    unique = dedupe(rows, lambda r: ("id", str(r["id"])) if "id" in r else ("row", id(r)))
    kept, report = postprocess_rows(unique, field=field, gold_field=gold_field, mode=mode,
                                    grader=grader)
    report["num_duplicates"] = len(rows) - len(unique)
    if out is not None:
        write_jsonl(out, kept)
        report["out"] = str(out)
    return report
