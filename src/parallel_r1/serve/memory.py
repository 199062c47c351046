"""How much memory the server's KV cache may take, and giving it back when the server is idle.

`auto_kv_budget_gb` sizes the default budget from the machine (a share of the memory free once
the model is loaded); the engine admits samples in waves within it (`driver.Engine`).
`release_idle` drops the cache's buffers once no row is in use, so a burst does not keep its
peak for the life of the process.
"""

from __future__ import annotations

import ctypes
import os
from typing import Any

CPU_SHARE = 0.25  # of the RAM available at start: the rest is left to activations and the OS
GPU_SHARE = 0.5  # of the GPU memory free after loading the model
MIN_BUDGET_GB = 0.01


def available_gb(device: str) -> float:
    """GB free for new allocations on `device` ("cpu", "cuda", "cuda:1", ...)."""
    if device.startswith("cuda"):
        import torch

        free, _ = torch.cuda.mem_get_info(torch.device(device))
        return free / 2**30
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30


def auto_kv_budget_gb(device: str) -> float:
    """The default KV budget: a share of what `device` has free (at least 10 MB)."""
    share = GPU_SHARE if device.startswith("cuda") else CPU_SHARE
    return max(MIN_BUDGET_GB, round(share * available_gb(device), 2))


def release_idle(engine: Any) -> bool:
    """Drop the KV cache's buffers when no row is in use; True when something was freed.

    The built-in backend's cache only grows (rows and length double as needed); once every
    request is done, a fresh empty cache takes its place and the allocator is asked to hand
    the pages back (CUDA's cache, glibc's free lists).
    """
    backend = getattr(engine, "backend", None)
    cache = getattr(backend, "cache", None)
    if cache is None or cache.num_rows or not cache.keys or getattr(backend, "rows", None):
        return False
    backend.cache = type(cache)(cache.device)
    backend.cache.max_rows, backend.cache.max_slots = cache.max_rows, cache.max_slots
    del cache
    if backend.cache.device.type == "cuda":
        import torch

        torch.cuda.empty_cache()
    trim_heap()
    return True


def trim_heap() -> None:
    """Return freed heap pages to the OS (glibc's malloc_trim; a no-op elsewhere)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def rss_bytes(pid: int | str = "self") -> tuple[int, int]:
    """(resident, peak resident) bytes of a process, from /proc (Linux); (0, 0) elsewhere."""
    values = {"VmRSS:": 0, "VmHWM:": 0}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key = line.split(maxsplit=1)[0] if line.strip() else ""
                if key in values:
                    values[key] = int(line.split()[1]) * 1024
    except OSError:
        pass
    return values["VmRSS:"], values["VmHWM:"]
