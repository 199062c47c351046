"""What the command line prints: quiet by default, everything with `--verbose`.

Quiet: our own progress bars (one per stage) and the `[parallel-r1]` lines only. Third-party
notices a user cannot act on are filtered by their exact text (each listed with where it comes
from), and transformers' own progress bars (loading weights, writing shards) are off. Anything
else, a new warning included, still shows. Verbose: every warning (DeprecationWarnings too) and
every third-party bar. The choice reaches child processes through $PARALLEL_R1_VERBOSE. When
stderr is not a terminal (a log file), a bar writes a line at most every 30 s, not per update.
"""

from __future__ import annotations

import os
import warnings

VERBOSE_ENV = "PARALLEL_R1_VERBOSE"
LOG_INTERVAL_ENV, LOG_INTERVAL_S = "TQDM_MININTERVAL", 30  # tqdm reads TQDM_* as its defaults

# (category, message regex, where it comes from). Filtered by text, so that a warning our own
# code raises is never hidden by a filter on its category or module.
NOISE = (
    (FutureWarning, r"`is_gradient_checkpointing` is deprecated",
     "TRL 1.16 GRPOTrainer reads it before every log-prob pass (trl.models.utils)"),
    (FutureWarning, r"`gradient_checkpointing_(enable|disable)` is deprecated",
     "TRL 1.16 toggles checkpointing around its no-grad passes when it is on"),
    (UserWarning, r"TRL currently supports vLLM versions from",
     "TRL 1.16 on vLLM 0.32, the newest vLLM for our torch (tests/*/test_vllm_*.py run it)"),
)
QUIET_ENV = {  # third-party switches that only silence notices; read when the library loads
    "TRL_EXPERIMENTAL_SILENCE": "1",  # "trl.experimental is unstable" on import
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",  # transformers' and the hub's bars; ours are plain tqdm
    "VLLM_LOGGING_LEVEL": "ERROR",  # vLLM's start-up INFO lines and CPU-build notices (Triton)
}


def is_verbose(flag: bool = False) -> bool:
    """Verbose when asked by the flag or by $PARALLEL_R1_VERBOSE=1."""
    return flag or os.environ.get(VERBOSE_ENV) == "1"


def configure_output(verbose: bool = False) -> None:
    """Set up this process's warnings, library logging and progress bars for the CLI.

    Args:
        verbose: show everything (also sets $PARALLEL_R1_VERBOSE=1 for child processes).
    """
    import sys

    if not sys.stderr.isatty():  # a log file: every bar (ours, child processes') a line per 30 s
        os.environ.setdefault(LOG_INTERVAL_ENV, str(LOG_INTERVAL_S))
    if verbose:
        os.environ[VERBOSE_ENV] = "1"
        warnings.simplefilter("default")  # DeprecationWarnings included, once per place
        return
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)
    for category, message, _ in NOISE:
        warnings.filterwarnings("ignore", message=message, category=category)
    import logging

    logging.getLogger("vllm").setLevel(logging.ERROR)  # its import-time notices (no Triton CPU)
