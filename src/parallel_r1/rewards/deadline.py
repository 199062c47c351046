"""A time limit for one call that works on any thread, without signals.

math-verify's own limit uses `signal.alarm`, which exists only on the main thread of the main
interpreter (and cancels any other SIGALRM timer, such as pytest-timeout's). Grading also runs in
the server's and the eval's worker threads, so we use one watchdog thread instead: `run_with_limit`
registers a deadline; if the call is still running when it passes, the watchdog raises
`GradeTimeout` inside the calling thread (CPython's `PyThreadState_SetAsyncExc`), again every
`_RETRY` seconds until the call returns (a broad `except` in the callee cannot swallow it for
good). `GradeTimeout` derives from BaseException so math-verify's `except Exception` lets it through.

Limits of the mechanism: the exception arrives between Python bytecodes, so a single long C call
(a huge integer power) is not interrupted; `rewards.grading` refuses such inputs before parsing.
Cost: one lock, one heap push and a condition notify per call (about 5 µs; bench/grading_bench.py).
"""

from __future__ import annotations

import ctypes
import heapq
import itertools
import threading
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
_RETRY = 0.05
_MAX_FIRES = 40  # give up on a call after about 2 s of re-raising (it is stuck in C code)


class GradeTimeout(BaseException):
    """Raised inside a call that ran past its deadline (see `run_with_limit`)."""


class _Watchdog:
    """One daemon thread that raises GradeTimeout in threads whose deadline passed."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.heap: list[tuple[float, int, int]] = []  # (deadline, token, thread id)
        self.active: dict[int, int] = {}  # token -> thread id, while the call runs
        self.fired: dict[int, int] = {}  # token -> times raised
        self.counter = itertools.count()
        self.thread: threading.Thread | None = None

    def arm(self, seconds: float) -> int:
        token = next(self.counter)
        with self.cond:
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._loop, name="grade-deadline",
                                               daemon=True)
                self.thread.start()
            tid = threading.get_ident()
            self.active[token] = tid
            heapq.heappush(self.heap, (time.monotonic() + seconds, token, tid))
            if self.heap[0][1] == token:
                self.cond.notify()
        return token

    def disarm(self, token: int) -> bool:
        """Stop watching `token`; True when the deadline had passed (the call timed out)."""
        with self.cond:
            self.active.pop(token, None)
            fired = self.fired.pop(token, 0) > 0
            if fired:
                _set_async_exc(threading.get_ident(), None)  # drop one not yet delivered
        return fired

    def _loop(self) -> None:
        with self.cond:
            while True:
                while self.heap and self.heap[0][1] not in self.active:
                    heapq.heappop(self.heap)
                if not self.heap:
                    self.cond.wait()
                    continue
                deadline, token, tid = self.heap[0]
                wait = deadline - time.monotonic()
                if wait > 0:
                    self.cond.wait(wait)
                    continue
                heapq.heappop(self.heap)
                self.fired[token] = self.fired.get(token, 0) + 1
                _set_async_exc(tid, GradeTimeout)
                if self.fired[token] < _MAX_FIRES:
                    heapq.heappush(self.heap, (time.monotonic() + _RETRY, token, tid))


def _set_async_exc(thread_id: int, exc: type[BaseException] | None) -> None:
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread_id), ctypes.py_object(exc) if exc is not None else None)


_WATCHDOG = _Watchdog()


def run_with_limit(fn: Callable[[], T], seconds: float | None) -> T:
    """Call `fn()`; raise GradeTimeout if it runs longer than `seconds` (None: no limit).

    Works on the main thread and on any other thread. Calls may nest only without a limit inside.

    Raises:
        GradeTimeout: the call passed its deadline (its partial work is abandoned).
    """
    if seconds is None:
        return fn()
    token = _WATCHDOG.arm(seconds)
    timed_out = False
    try:
        result = fn()
    except GradeTimeout:
        timed_out = True
    finally:
        while True:  # a timeout may land while we disarm: disarm anyway, then report it
            try:
                timed_out = _WATCHDOG.disarm(token) or timed_out
                break
            except GradeTimeout:
                timed_out = True
    if timed_out:
        raise GradeTimeout(f"call exceeded its {seconds} s limit")
    return result
