"""The parallel-thinking text format: tags, parse into a typed tree, render, validate, normalise.

Pure Python on strings: imports no torch, transformers or numpy.
"""

from parallel_r1.format.normalize import Edit, compare_normalized, normalize, normalize_answer
from parallel_r1.format.parse import find_tags, parse
from parallel_r1.format.stats import (
    FormatSummary,
    ResponseStats,
    is_valid_block,
    response_stats,
    summarize,
)
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
from parallel_r1.format.trace import Block, PathNode, StrayTag, Summary, Text, Trace, render
from parallel_r1.format.validate import MODES, Issue, is_valid, validate

__all__ = [
    "ANSWER_PREFIX",
    "MODES",
    "PARALLEL_CLOSE",
    "PARALLEL_OPEN",
    "PATH_CLOSE",
    "PATH_OPEN",
    "SUMMARY_CLOSE",
    "SUMMARY_OPEN",
    "TAGS",
    "Block",
    "Edit",
    "FormatSummary",
    "Issue",
    "PathNode",
    "ResponseStats",
    "StrayTag",
    "Summary",
    "TagIds",
    "Text",
    "Trace",
    "compare_normalized",
    "find_tags",
    "is_valid",
    "is_valid_block",
    "normalize",
    "normalize_answer",
    "parse",
    "render",
    "response_stats",
    "summarize",
    "validate",
]
