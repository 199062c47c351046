"""Rewards: find the final answer, grade it, score the parallel format, and schedule the mix.

Pure Python on text (math-verify and sacrebleu are imported lazily, on first use); imports no
torch, transformers or numpy. How answers are read and compared is one contract, stated in
`rewards.contract`. Every paper reward is in REWARDS by its paper name (see `variants`).
"""

from parallel_r1.rewards.answer import (
    extract_answer,
    extract_boxed,
    extract_final_answer,
    read_answer,
)
from parallel_r1.rewards.compose import ComposedReward, batch_metrics, build_reward, compose
from parallel_r1.rewards.expression import Reduced, reduce_answer
from parallel_r1.rewards.grading import (
    DEFAULT_GRADER,
    GRADERS,
    Verdict,
    equivalent,
    grade,
    grade_detail,
    grade_response,
    grade_response_detail,
    normalize_paper,
)
from parallel_r1.rewards.parallel import (
    efficiency_gain,
    is_format_valid,
    num_blocks,
    num_valid_blocks,
    self_bleu,
)
from parallel_r1.rewards.schedule import (
    SCHEDULES,
    Alternating,
    Constant,
    SwitchAfter,
    schedule_from_config,
)
from parallel_r1.rewards.variants import REWARDS

__all__ = [
    "DEFAULT_GRADER", "GRADERS", "REWARDS", "SCHEDULES", "Alternating", "ComposedReward",
    "Constant", "Reduced", "SwitchAfter", "Verdict", "batch_metrics", "build_reward", "compose",
    "efficiency_gain", "equivalent", "extract_answer", "extract_boxed", "extract_final_answer",
    "grade", "grade_detail", "grade_response", "grade_response_detail", "is_format_valid",
    "normalize_paper", "num_blocks", "num_valid_blocks", "read_answer", "reduce_answer",
    "schedule_from_config", "self_bleu",
]
