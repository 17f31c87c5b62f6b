"""Graders and the training reward (REFERENCE §5): one grader serves training and evaluation.

``grade`` / ``grade_many`` grade math (strict boxed match or math-verify), multiple choice
and code (tests run on a tool executor); ``training_reward`` turns a grade into the
paper's reward (±1, code fractions, tool-turn shaping, DAPO overlong penalty);
``compute_score`` is verl's reward hook.
"""

from sodctl.rewards.boxed import extract_boxed_strict
from sodctl.rewards.code import CodeCase, extract_code_block, parse_tests
from sodctl.rewards.grading import grade, grade_many
from sodctl.rewards.math_verify_grader import MathVerifyPool
from sodctl.rewards.mcq import extract_letter
from sodctl.rewards.result import GRADERS, KINDS, Grader, GradeResult, Kind
from sodctl.rewards.reward import (
    RewardResult,
    outcome_reward,
    training_reward,
    training_rewards,
    verl_num_turns,
)
from sodctl.rewards.verl_compat import compute_score, kind_for_source

__all__ = [
    "GRADERS",
    "KINDS",
    "CodeCase",
    "GradeResult",
    "Grader",
    "Kind",
    "MathVerifyPool",
    "RewardResult",
    "compute_score",
    "extract_boxed_strict",
    "extract_code_block",
    "extract_letter",
    "grade",
    "grade_many",
    "kind_for_source",
    "outcome_reward",
    "parse_tests",
    "training_reward",
    "training_rewards",
    "verl_num_turns",
]
