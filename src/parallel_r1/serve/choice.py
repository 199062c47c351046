"""One choice of a response as it grows: incremental text, stop strings, log-probs, structure.

Fed with the token ids a sample gains each engine step (a block's paths arrive all at once when
it joins). The text keeps the tags. A stop string ends the choice at its first occurrence; while
streaming, the last `len(longest stop) - 1` characters are held back so a stop string is never
half sent. The final text is the engine's own decode when the sample finished in the engine.
"""

from __future__ import annotations

import codecs
import json
import re
from dataclasses import dataclass
from functools import lru_cache
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
        self.scores: Any = None  # scoring.Scores of prompt + ids, when the response shows them

    @classmethod
    def empty(cls, spec: ChoiceSpec) -> ChoiceState:
        """A choice that generated nothing (max_tokens 0 with echo): finished by "length"."""
        choice = cls(spec)
        choice._finish("", "length", 0, None)
        return choice

    @property
    def done(self) -> bool:
        return self.text is not None

    @property
    def finish_reason(self) -> str | None:
        """OpenAI's finish reason: "stop" or "length"."""
        return _OPENAI_REASON.get(self.engine_reason) if self.engine_reason else None

    def feed(self, new_ids: list[int], logprobs: list[float | None] | None, rollout: Any = None,
             filled: dict[int, float] | None = None) -> str:
        """Add one step's tokens (and the rollout once the engine finished the sample).

        `filled`: log-probs of earlier tokens (by position) that had none when they came.

        Returns:
            The text newly safe to send ("" when nothing is, or after the choice is done).
        """
        if self.done:
            return ""
        self.ids += new_ids
        self.logprobs += logprobs if logprobs is not None else [None] * len(new_ids)
        for pos, value in (filled or {}).items():
            self.logprobs[pos] = value
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
    def token_pieces(self) -> tuple[list[str], list[float | None], list[int], list[bytes]]:
        """(token strings, log-probs, character offsets, bytes) of the tokens inside the text,
        then the stop token that ended the choice (finish "stop"), outside the text.

        The strings join to exactly the returned text: a character split over several byte
        tokens belongs to the token that completes it (the ones before it have ""), and a token
        a stop string cuts keeps only its part before the stop (its bytes too). `bytes` are the
        token's own bytes, so they join to the text's UTF-8. Offsets count characters.
        Before the choice is done: the tokens whose text was sent whole (a prefix of the final
        lists, so a stream's chunks add up to them).
        """
        partial = not self.done
        text = self._decoded[:self.sent] if partial else self.text
        parts = pieces(self.spec.tokenizer, self.ids)
        if not "".join(p[0] for p in parts).startswith(text):  # a decoder that rewrites text
            parts = [(self.spec.tokenizer.decode([i], skip_special_tokens=False), b"", 0)
                     for i in self.ids]
            parts = [(s, s.encode("utf-8"), 0) for s, _, _ in parts]
        # A stop token (EOS, a stop_token_ids entry) ends the text unwritten, yet it was
        # generated with a log-prob: it comes last, at the text's end, as vLLM reports it.
        num_text = len(self.ids) - (self.engine_reason == "stop" and bool(self.ids))
        tokens, logprobs, offsets, raw, pos = [], [], [], [], 0
        for (piece, data, pending), logprob in zip(parts[:num_text], self.logprobs):
            if pos >= len(text):
                break
            if partial and (pos + len(piece) > len(text) or logprob is None):
                break  # not sent whole yet, or its log-prob comes with the next step
            if pos + len(piece) > len(text):  # cut by a stop string (or the text's end)
                dropped = piece[len(text) - pos:]
                piece = piece[:len(text) - pos]
                data = data[:max(0, len(data) - pending - len(dropped.encode("utf-8")))]
            tokens.append(piece)
            logprobs.append(logprob)
            offsets.append(pos)
            raw.append(data)
            pos += len(piece)
        if num_text < len(self.ids):
            stop_id = self.ids[-1]
            tokens.append(self.spec.tokenizer.decode([stop_id], skip_special_tokens=False))
            logprobs.append(self.logprobs[-1])
            offsets.append(len(text))
            raw.append(token_bytes(self.spec.tokenizer, [stop_id])[0])
        return tokens, logprobs, offsets, raw

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


def pieces(tokenizer: Any, ids: list[int]) -> list[tuple[str, bytes, int]]:
    """Per token: (the characters it completes, its bytes, bytes it leaves pending)."""
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    out = []
    for data in token_bytes(tokenizer, ids):
        text = decoder.decode(data)
        out.append((text, data, len(decoder.getstate()[0])))
    tail = decoder.decode(b"", final=True)  # bytes never completed: U+FFFD, as decode() gives
    if tail and out:
        out[-1] = (out[-1][0] + tail, out[-1][1], 0)
    return out


_BYTE_TOKEN = re.compile(r"<0x([0-9A-Fa-f]{2})>")  # SentencePiece byte fallback


def token_bytes(tokenizer: Any, ids: list[int]) -> list[bytes]:
    """The bytes each token stands for (an added token: its text in UTF-8).

    Byte-level BPE vocabularies (GPT-2, Qwen, Llama 3, SmolLM2) map every byte to one printable
    character; that map is inverted here. Other tokenizers: `<0xNN>` byte-fallback tokens give
    their byte, the rest their decoded text.
    """
    byte_level, added = _vocab_kind(tokenizer)
    table = _byte_decoder()
    out = []
    for token_id, piece in zip(ids, tokenizer.convert_ids_to_tokens(list(ids))):
        if token_id in added:
            out.append(added[token_id].encode("utf-8"))
        elif byte_level and piece is not None and all(c in table for c in piece):
            out.append(bytes(table[c] for c in piece))
        elif piece is not None and (match := _BYTE_TOKEN.fullmatch(piece)):
            out.append(bytes([int(match.group(1), 16)]))
        else:
            out.append(tokenizer.decode([token_id], skip_special_tokens=False).encode("utf-8"))
    return out


@lru_cache(maxsize=8)
def _vocab_kind(tokenizer: Any) -> tuple[bool, dict[int, str]]:
    """(whether the decoder is byte-level, added token id -> text), once per tokenizer."""
    added = {i: t.content for i, t in getattr(tokenizer, "added_tokens_decoder", {}).items()}
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return False, added
    decoder = json.loads(backend.to_str()).get("decoder") or {}
    return decoder.get("type") == "ByteLevel" or any(
        d.get("type") == "ByteLevel" for d in decoder.get("decoders") or []), added


@lru_cache(maxsize=1)
def _byte_decoder() -> dict[str, int]:
    """Character -> byte of the byte-level BPE alphabet (printable bytes stand for themselves,
    the others are shifted past 255)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
                 *range(ord("®"), ord("ÿ") + 1)]
    chars, shift = {}, 0
    for byte in range(256):
        if byte in printable:
            chars[chr(byte)] = byte
        else:
            chars[chr(256 + shift)] = byte
            shift += 1
    return chars
