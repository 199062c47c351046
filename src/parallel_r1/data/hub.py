"""Rows from the Hugging Face hub through `datasets`, the only data path that needs the network.

A hub that cannot be reached (no network, a DNS failure, a timeout, or offline mode set by
$HF_HUB_OFFLINE / $HF_DATASETS_OFFLINE with no cached copy) is one `DataError` naming the data
set and what to do instead. `datasets` is imported only when rows are asked for.
"""

from __future__ import annotations

import os
from typing import Any

from parallel_r1.errors import DataError

OFFLINE_ENVS = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
_TRUE = ("1", "on", "yes", "true")


def offline_env() -> str | None:
    """"HF_HUB_OFFLINE=1" (the variable as set) when the hub is switched off for this process,
    else None: then only a copy in the `datasets` cache can be read."""
    for name in OFFLINE_ENVS:
        if os.environ.get(name, "").strip().lower() in _TRUE:
            return f"{name}={os.environ[name]}"
    return None


def _unreachable() -> tuple[type[BaseException], ...]:
    """The exception types that mean "the hub could not be reached" (not "no such data set")."""
    kinds: list[type[BaseException]] = [ConnectionError, TimeoutError]  # OfflineModeIsEnabled too
    try:
        from huggingface_hub.errors import LocalEntryNotFoundError

        kinds.append(LocalEntryNotFoundError)  # offline, and not in the cache
    except ImportError:
        pass
    for module, names in (("requests.exceptions", ("ConnectionError", "Timeout")),
                          ("httpx", ("TransportError",))):
        try:
            imported = __import__(module, fromlist=list(names))
            kinds.extend(getattr(imported, n) for n in names)
        except ImportError:
            pass
    return tuple(kinds)


def download_rows(name: str, hub_name: str, config: str | None, split: str, *,
                  instead: str) -> list[dict[str, Any]]:
    """The rows of one split of a hub data set, downloaded (or read from the `datasets` cache).

    Args:
        name: our name of the data set, for the error.
        hub_name, config, split: the hub's id, config and split names.
        instead: what the user can do instead of the hub, for the error.
    Raises:
        DataError: the hub cannot be reached (names the data set, the cause and `instead`).
    """
    import datasets  # optional extra [data]

    try:
        hub = datasets.load_dataset(hub_name, config, split=split)
    except _unreachable() as exc:
        offline = offline_env()
        cause = f"{offline} is set" if offline else f"no network? {type(exc).__name__}"
        raise DataError(f"data set '{name}': cannot reach the hub for {hub_name} ({cause}); "
                        f"{instead}") from None
    return [dict(row) for row in hub]
