"""How many CPU threads torch computes with: one rule for every command and worker.

The count is `threads` when given (a command's `--threads`, a grid's `threads`), else
`$OMP_NUM_THREADS` when the user set it, else `DEFAULT_THREADS`. The default is one thread
because the models this runs on a CPU are small and the CPU is usually shared: with other jobs
on the machine, torch's own default (a thread per core) ran the demo 4-17x slower than one
thread (issue 22; README.md, "Threads", has this machine's measurement). Pure standard library:
torch is touched only when it is imported already.
"""

from __future__ import annotations

import os
import sys

from parallel_r1.errors import ConfigError

THREADS_ENV = "OMP_NUM_THREADS"
DEFAULT_THREADS = 1


def thread_count(threads: int | None = None) -> int:
    """The rule: `threads` if given, else `$OMP_NUM_THREADS` if set, else `DEFAULT_THREADS`.

    Raises:
        ConfigError: `threads` < 1, or `$OMP_NUM_THREADS` is not a positive integer (OpenMP's
            nested form "4,2" counts its first level).
    """
    if threads is not None:
        if type(threads) is not int or threads < 1:
            raise ConfigError(f"must be an integer >= 1, got {threads!r}", field="threads")
        return threads
    raw = os.environ.get(THREADS_ENV, "").strip()
    if not raw:
        return DEFAULT_THREADS
    first = raw.split(",")[0].strip()
    if not first.isdigit() or int(first) < 1:
        raise ConfigError(f"${THREADS_ENV}={raw!r} is not a positive integer; unset it or give "
                          "--threads N", field=THREADS_ENV)
    return int(first)


def use_threads(threads: int | None = None) -> int:
    """Apply `thread_count(threads)` to this process and the processes it starts.

    Sets `$OMP_NUM_THREADS` (read by torch when it is imported later, and by child processes)
    and calls `torch.set_num_threads` when torch is imported already.

    Returns:
        The thread count now in force.

    Raises:
        ConfigError: as `thread_count`.
    """
    count = thread_count(threads)
    os.environ[THREADS_ENV] = str(count)
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "set_num_threads"):
        torch.set_num_threads(count)
    return count
