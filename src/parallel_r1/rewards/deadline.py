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
An exception that lands inside an `import` leaves a half-initialised module behind (sympy imports
lazily while it simplifies), so the watchdog holds its fire while the thread holds an import lock;
and `rewards.grading` resets the global state of sympy and its caches after every timeout.
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
    """One daemon thread that raises GradeTimeout in threads whose deadline passed.

    Safety rules (an exception delivered at the wrong moment must never leak a lock or escape
    the call): the watchdog fires only while the call itself runs (`running`), all shared state
    is guarded by a C-level `threading.Lock` (its `with` has no Python frame in which an
    exception could land between acquiring and protecting), and the caller's clean-up retries.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.wakeup = threading.Event()
        self.heap: list[tuple[float, int, int]] = []  # (deadline, token, thread id)
        self.armed: set[int] = set()  # tokens not disarmed yet
        self.running: dict[int, int] = {}  # token -> thread id, while the call runs
        self.fired: dict[int, int] = {}  # token -> times raised
        self.counter = itertools.count()
        self.thread: threading.Thread | None = None

    def arm(self, seconds: float) -> int:
        token = next(self.counter)
        with self.lock:
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._loop, name="grade-deadline",
                                               daemon=True)
                self.thread.start()
            self.armed.add(token)
            heapq.heappush(self.heap, (time.monotonic() + seconds, token,
                                       threading.get_ident()))
            earliest = self.heap[0][1] == token
        if earliest:
            self.wakeup.set()
        return token

    def disarm(self, token: int) -> bool:
        """Stop watching `token`; True when the deadline had passed (the call timed out)."""
        with self.lock:
            self.armed.discard(token)
            self.running.pop(token, None)
            fired = self.fired.pop(token, 0) > 0
            if len(self.heap) > 64 + 4 * len(self.armed):  # drop disarmed deadlines: memory
                self.heap = [entry for entry in self.heap if entry[1] in self.armed]
                heapq.heapify(self.heap)  # stays bounded by the calls running, not those made
            if fired:  # drop an exception raised but not yet delivered
                ctypes.pythonapi.PyThreadState_SetAsyncExc(
                    ctypes.c_ulong(threading.get_ident()), None)
        return fired

    def _loop(self) -> None:
        while True:
            with self.lock:
                wait = self._fire_due()
            self.wakeup.wait(wait)
            self.wakeup.clear()

    def _fire_due(self) -> float | None:
        """Fire every passed deadline of a running call; seconds until the next one (or None)."""
        now = time.monotonic()
        while self.heap:
            deadline, token, tid = self.heap[0]
            if deadline > now:
                return deadline - now
            heapq.heappop(self.heap)
            if token not in self.armed:
                continue  # disarmed: the call is over
            if token not in self.running or _importing(tid):
                # not started yet, or importing (never interrupt an import): retry shortly
                heapq.heappush(self.heap, (now + _RETRY / 10, token, tid))
                continue
            self.fired[token] = self.fired.get(token, 0) + 1
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(tid),
                                                       ctypes.py_object(GradeTimeout))
            if self.fired[token] < _MAX_FIRES:
                heapq.heappush(self.heap, (now + _RETRY, token, tid))
        return None


def _importing(thread_id: int) -> bool:
    """Whether `thread_id` holds a module import lock (CPython's importlib bootstrap)."""
    try:
        from importlib import _bootstrap

        for ref in list(_bootstrap._module_locks.values()):
            lock = ref()
            if lock is not None and lock.owner == thread_id:
                return True
    except Exception:  # noqa: BLE001  (a private structure: if it changes, do not block)
        return False
    return False


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
    _WATCHDOG.running[token] = threading.get_ident()  # from here on the watchdog may fire
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
