"""Which device a model runs on: one check for every command that takes `--device`.

A name is refused before any work when it is unknown, or names an accelerator this torch build or
this machine does not have, with what to do. Pure standard library until a name needs torch to
answer (cuda, mps, auto); torch is imported then.
"""

from __future__ import annotations

import re

from parallel_r1.errors import ConfigError

_NAME = re.compile(r"(auto|cpu|cuda|mps)(:(\d+))?")


def known_devices() -> tuple[str, ...]:
    """The names `check_device` takes here: auto, cpu, cuda (cuda:N), and mps where torch has it."""
    import torch

    mps = getattr(torch.backends, "mps", None)
    return ("auto", "cpu", "cuda") + (("mps",) if mps is not None and mps.is_built() else ())


def check_device(name: str, *, flag: str = "--device") -> str:
    """The device `name` resolves to ("auto": cuda when visible, else cpu), checked.

    Args:
        name: "auto", "cpu", "cuda", "cuda:N" or "mps".
        flag: how the user gave it, for the error ("--device", "device").
    Returns:
        "cpu", "cuda", "cuda:N" or "mps".
    Raises:
        ConfigError: an unknown name (lists the known ones), or a device this torch build or
            machine lacks (says which torch and what to do); the message starts with `flag`.
    """
    match = _NAME.fullmatch(str(name).strip().lower())
    kind = match.group(1) if match else None
    if kind == "cpu" and not match.group(2):
        return "cpu"
    import torch

    if kind is None or (match.group(2) and kind != "cuda"):
        raise ConfigError(f"{flag} {name}: unknown device; known: "
                          f"{' | '.join(known_devices())} (cuda:N for the N-th GPU)")
    if kind == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if kind == "mps":
        if "mps" not in known_devices() or not torch.backends.mps.is_available():
            raise ConfigError(f"{flag} mps: this torch build or machine has no MPS (torch "
                              f"{torch.__version__}); use --device cpu")
        return "mps"
    if torch.version.cuda is None:
        raise ConfigError(f"{flag} {name}: this torch build has no CUDA (torch "
                          f"{torch.__version__}); use --device cpu or install a CUDA torch")
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    index = int(match.group(3) or 0)
    if index >= count:
        seen = f"{count} GPU{'s' if count != 1 else ''} visible" if count else "no GPU visible"
        raise ConfigError(f"{flag} {name}: {seen} (torch {torch.__version__}, CUDA "
                          f"{torch.version.cuda}); use --device cpu, or check "
                          "CUDA_VISIBLE_DEVICES and the driver")
    return name.strip().lower()
