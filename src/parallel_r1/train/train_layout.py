"""Training log-probs in another layout than the rollouts were sampled in: a deliberate arm.

The original Parallel-R1 code samples a block's paths isolated, but the summary and all later
text over the plain concatenation of the paths with sequential positions (our threads layout),
while its trainer recomputes every log-prob with the path-isolated mask and compressed positions
(our structured layout). An rl stage reproduces that with `mode: threads` and
`train_layout: structured` (issue 21 item 3: is this mismatch what collapses S1's parallel ratio
in the paper?). Only pairs whose token ids mean the same thing in both layouts are allowed: in
threads and structured the paths are isolated alike and the engine injects the same tokens; the
two differ only in how the text after a block sees the paths. Pure Python.
"""

from __future__ import annotations

# (sampled layout, trained layout) -> what the pair is
MISMATCHES = {
    ("threads", "structured"): "the original code's mismatch: summary and later text sampled "
                               "over the concatenated paths, trained under the structured mask",
    ("structured", "threads"): "its mirror: sampled under the structured mask, trained over the "
                               "concatenated paths",
}


def is_mismatch(mode: str, train_layout: str | None) -> bool:
    """Whether an rl stage samples in `mode` and trains in another layout."""
    return train_layout is not None and train_layout != mode


def describe(mode: str, train_layout: str | None) -> str | None:
    """One line for cards and logs: "sampled threads, trained structured (deliberate: ...)",
    or None when the stage trains in the layout it samples."""
    if not is_mismatch(mode, train_layout):
        return None
    what = MISMATCHES.get((mode, train_layout), "unsupported")
    return f"sampled {mode}, trained {train_layout} (deliberate: {what})"


def train_layout_problem(kind: str, mode: str, train_layout: str | None, backend: str
                         ) -> str | None:
    """Why a stage could not train in `train_layout` after sampling in `mode`, or None.

    Args:
        kind: the stage kind (sft | rl | eval); only rl stages have a separate trained layout.
        mode: the sampling layout (causal | structured | threads).
        train_layout: the trainer's layout; None = `mode`.
        backend: torch | vllm. TRL's vLLM path corrects the sampling/trainer gap by importance
            sampling (`vllm_importance_sampling_correction`), which would reweight the mismatch
            away: the original code has no such correction, so the arm needs backend torch.
    """
    if train_layout is None:
        return None
    layouts = ("causal", "structured", "threads")
    if train_layout not in layouts:
        return f"must be one of {', '.join(layouts)}, or null (= mode)"
    if kind != "rl":
        return "only rl stages train in another layout than they sample; remove it"
    if train_layout == mode:
        return None
    if (mode, train_layout) not in MISMATCHES:
        pairs = ", ".join(f"mode {a} -> train_layout {b}" for a, b in MISMATCHES)
        return (f"sampling {mode} and training {train_layout} is not supported (the token ids "
                f"would not mean the same thing in both); supported: {pairs}")
    if backend != "torch":
        return ("a deliberate layout mismatch needs backend: torch (TRL's vLLM importance-"
                "sampling correction would reweight it away)")
    return None
