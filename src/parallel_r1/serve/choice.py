"""One choice of a response as it grows: incremental text, stop strings, log-probs, structure.

Fed with the token ids a sample gains each engine step (a block's paths arrive all at once when
it joins). The text keeps the tags. A stop string ends the choice at its first occurrence; while
streaming, the last `len(longest stop) - 1` characters are held back so a stop string is never
half sent. The final text is the engine's own decode when the sample finished in the engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from parallel_r1.format.parse import parse
from parallel_r1.format.trace import Trace
from parallel_r1.structure import layout_from_ids

# The engine's finish reasons beyond OpenAI's two: a block cap ends the text like a stop.
_OPENAI_REASON = {"stop": "stop", "length": "length", "max_blocks": "stop", "stop_string": "stop"}


@dataclass(frozen=True)
class ChoiceSpec:
    """What every choice of one request shares."""

    tokenizer: Any
    prompt_ids: list[int]
    stops: tuple[str, ...] = ()
    tags: Any = None  # TagIds, or None for a tokenizer without the tags
    layout: str = "structured"  # causal | structured | threads
    incremental: bool = False  # decode while running (streaming); else only stop strings need it


class ChoiceState:
    """Text, ids and log-probs of one choice; `feed` returns the text that may be sent now."""

    def __init__(self, spec: ChoiceSpec):
        self.spec = spec
        self.ids: list[int] = []  # [T] tokens the engine generated for this sample
        self.logprobs: list[float | None] = []  # [T]
        self.text: str | None = None  # final text once done
        self.engine_reason: str | None = None
        self.depth: int | None = None
        self.sent = 0  # characters already handed out
        self._stable_ids = 0  # ids decoded into _decoded (no partial UTF-8 at its end)
        self._decoded = ""
        self._checked = 0  # characters already searched for stop strings
        self._hold = max((len(s) for s in spec.stops), default=1) - 1

    @property
    def done(self) -> bool:
        return self.text is not None

    @property
    def finish_reason(self) -> str | None:
        """OpenAI's finish reason: "stop" or "length"."""
        return _OPENAI_REASON.get(self.engine_reason) if self.engine_reason else None

    def feed(self, new_ids: list[int], logprobs: list[float] | None, rollout: Any = None) -> str:
        """Add one step's tokens (and the rollout once the engine finished the sample).

        Returns:
            The text newly safe to send ("" when nothing is, or after the choice is done).
        """
        if self.done:
            return ""
        self.ids += new_ids
        self.logprobs += logprobs if logprobs is not None else [None] * len(new_ids)
        if rollout is not None:
            self.logprobs = list(rollout.logprobs)
            return self._finish(rollout.text, rollout.finish_reason,
                                rollout.critical_path_length, cut=self._find_stop(rollout.text))
        if not (self.spec.incremental or self.spec.stops):
            return ""
        tail = self.spec.tokenizer.decode(self.ids[self._stable_ids:], skip_special_tokens=False)
        if not tail.endswith("\ufffd"):  # a multi-byte character may still be incomplete
            self._decoded += tail
            self._stable_ids = len(self.ids)
        cut = self._find_stop(self._decoded)
        if cut is not None:
            return self._finish(self._decoded, "stop_string", None, cut=cut)
        safe = len(self._decoded) - self._hold
        if not self.spec.incremental or safe <= self.sent:
            return ""
        delta, self.sent = self._decoded[self.sent:safe], safe
        return delta

    def _find_stop(self, text: str) -> int | None:
        start = max(0, self._checked - self._hold)
        self._checked = len(text)
        hits = [i for i in (text.find(s, start) for s in self.spec.stops) if i >= 0]
        return min(hits) if hits else None

    def _finish(self, text: str, reason: str, depth: int | None, cut: int | None) -> str:
        if cut is not None:
            text, reason, depth = text[:cut], "stop_string", None
        self.text, self.engine_reason = text, reason
        self.depth = depth if depth is not None else self._depth()
        delta, self.sent = text[self.sent:], len(text)
        return delta

    def _depth(self) -> int:
        """Sequential depth of the generated ids (all of them, as `completion_tokens` counts)."""
        if self.spec.tags is None or not self.ids:
            return len(self.ids)
        prompt = self.spec.prompt_ids
        layout = layout_from_ids(prompt + self.ids, self.spec.tags, start=len(prompt),
                                 layout=self.spec.layout)
        return layout.critical_path_length()

    # ---- what the response reports ---------------------------------------------------------------
    def token_pieces(self) -> tuple[list[str], list[float | None], list[int]]:
        """(token strings, their log-probs, character offsets) of the tokens inside the text."""
        tokens, logprobs, offsets, pos = [], [], [], 0
        for token_id, logprob in zip(self.ids, self.logprobs):
            if pos >= len(self.text or ""):
                break
            piece = self.spec.tokenizer.decode([token_id], skip_special_tokens=False)
            tokens.append(piece)
            logprobs.append(logprob)
            offsets.append(pos)
            pos += len(piece)
        return tokens, logprobs, offsets

    def parallel_info(self, mode: str) -> dict[str, Any]:
        """The extra `parallel` field: parsed blocks and paths, token counts, raw finish reason."""
        return {"mode": mode, "num_blocks": 0, **describe_trace(parse(self.text or "")),
                "completion_tokens": len(self.ids), "sequential_depth": self.depth,
                "finish_reason": self.engine_reason}


def describe_trace(trace: Trace) -> dict[str, Any]:
    """Blocks of a parsed text as JSON: each block's path texts, summary and whether it closed."""
    blocks = [{"paths": [p.text for p in b.paths],
               "summary": b.summary.text if b.summary is not None else None,
               "closed": b.closed, "start": b.start, "end": b.end} for b in trace.blocks]
    return {"num_blocks": len(blocks), "blocks": blocks}
