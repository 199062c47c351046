"""The six tags of the parallel-thinking format, and their token ids for a given tokenizer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from parallel_r1.errors import EngineError

PARALLEL_OPEN = "<Parallel>"
PARALLEL_CLOSE = "</Parallel>"
PATH_OPEN = "<Path>"
PATH_CLOSE = "</Path>"
SUMMARY_OPEN = "<Summary>"
SUMMARY_CLOSE = "</Summary>"

TAGS: tuple[str, ...] = (
    PARALLEL_OPEN, PARALLEL_CLOSE, PATH_OPEN, PATH_CLOSE, SUMMARY_OPEN, SUMMARY_CLOSE,
)
ANSWER_PREFIX = "Final Answer:"


@dataclass(frozen=True)
class TagIds:
    """Token ids of the six tags in one tokenizer (each tag must be a single token)."""

    parallel_open: int
    parallel_close: int
    path_open: int
    path_close: int
    summary_open: int
    summary_close: int

    @classmethod
    def from_tokenizer(cls, tokenizer: Any) -> TagIds:
        """Look the tags up in a Hugging Face tokenizer.

        Raises:
            EngineError: a tag is not one token in this tokenizer (add the tags first with
                `parallel_r1.models.add_tags`).
        """
        ids = []
        for tag in TAGS:
            encoded = tokenizer.encode(tag, add_special_tokens=False)
            if len(encoded) != 1:
                raise EngineError(
                    f"the tokenizer splits the tag {tag} into {len(encoded)} tokens {encoded}; "
                    "add the six tags as single tokens first (parallel_r1.models.add_tags)"
                )
            ids.append(encoded[0])
        return cls(*ids)

    def as_tuple(self) -> tuple[int, ...]:
        return (self.parallel_open, self.parallel_close, self.path_open, self.path_close,
                self.summary_open, self.summary_close)

    def name_of(self, token_id: int) -> str | None:
        """The tag string for `token_id`, or None if it is not a tag."""
        for tag, tid in zip(TAGS, self.as_tuple()):
            if tid == token_id:
                return tag
        return None
