"""The parallel-thinking text format: tags, parse into a typed tree, render, validate, normalise.

Pure Python on strings: imports no torch, transformers or numpy.
"""

from parallel_r1.format.tags import (
    ANSWER_PREFIX,
    PARALLEL_CLOSE,
    PARALLEL_OPEN,
    PATH_CLOSE,
    PATH_OPEN,
    SUMMARY_CLOSE,
    SUMMARY_OPEN,
    TAGS,
    TagIds,
)

__all__ = [
    "ANSWER_PREFIX", "PARALLEL_CLOSE", "PARALLEL_OPEN", "PATH_CLOSE", "PATH_OPEN",
    "SUMMARY_CLOSE", "SUMMARY_OPEN", "TAGS", "TagIds",
]
