"""The training reward (REFERENCE §5): outcome reward, tool-turn shaping, DAPO overlong penalty.

1. Outcome reward from the grade: math and mcq ``correct_reward`` (+1) when correct, else
   ``incorrect_reward`` (-1). Code, as the released reward computed it: no code block, a
   program that does not compile or lacks the functional tests' entry point (``pred`` None)
   gives ``incorrect_reward``; every test passed gives ``correct_reward``; otherwise the
   fraction of tests passed, in [0, 1) - so a program that runs but fails every test
   scores 0, above an answer without code. ``code_reward="binary"`` gives
   ``correct_reward`` / ``incorrect_reward`` by whether every test passed instead.
2. Tool-turn shaping, ``min(-0.6, r + 0.1 * (num_turns - 2) / 2)``, applied where the
   outcome reward is negative: the released condition (``score < 0``). For math and mcq
   that is every wrong answer; for code only the answers without a runnable program
   (fractions are never negative). ``tool_shaping="released"`` (the default) uses
   ``num_turns = 0``, what the released reward read (verl never passed it), so every
   negative reward becomes -1.1; ``"num-turns"`` uses the real ``num_turns``; ``"off"``.
   ``num_turns`` counts as verl does: the user prompt, every assistant turn and every round
   of tool observations (``user_turns + assistant_turns + 1``); a trajectory that made k
   tool calls, one per turn, and then answered has ``2k + 2`` turns, so the shaping adds
   0.1 per tool call. ``verl_num_turns`` converts sodctl's counts.
3. DAPO overlong penalty ``min(0, -(L - (L_max - buffer)) / buffer)`` on all response
   tokens (tool tokens included), added to the reward; it does not change ``correct``.

Steps 2 and 3 call the core's tensor functions (``sodctl.core.shaping``), so the values
are float32 like everything the engines compute.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch

from sodctl.core.shaping import RELEASED_NUM_TURNS, tool_turn_shaping
from sodctl.core.shaping import overlong_penalty as overlong_penalty_B
from sodctl.rewards.code import Compare
from sodctl.rewards.grading import GroundTruth, grade_many
from sodctl.rewards.mcq import DEFAULT_LETTERS
from sodctl.rewards.result import Grader, GradeResult, Kind
from sodctl.tools.executors import Executor

CodeReward = Literal["fraction", "binary"]
ToolShaping = Literal["released", "num-turns", "off"]
TOOL_SHAPINGS: tuple[str, ...] = ("released", "num-turns", "off")


@dataclass(frozen=True)
class RewardResult:
    """reward = shaped + overlong_penalty.

    correct, score, pred  from the grade (score: 1/0, code: fraction of tests passed).
    shaped                the outcome reward after the tool-turn shaping.
    overlong_penalty      the DAPO penalty added to it (<= 0; 0 when switched off).
    """

    reward: float
    correct: bool
    score: float
    pred: str | None
    shaped: float
    overlong_penalty: float


def code_test_options(reward_cfg: Any) -> dict[str, Any]:
    """The code-test keywords of ``grade`` / ``training_rewards`` from a config's ``reward``
    section: training and evaluation grade code by the same rules."""
    return {
        "compare": str(reward_cfg.code_compare),
        "unescape": reward_cfg.code_unescape,
        "code_timeout_s": reward_cfg.code_timeout_s,
        "memory_mb": reward_cfg.code_memory_mb,
    }


def verl_num_turns(assistant_turns: int, tool_rounds: int) -> int:
    """verl's ``num_turns`` from sodctl's counts: ``tool_rounds`` is the number of assistant
    turns that were answered with tool observations."""
    return 1 + assistant_turns + tool_rounds


def outcome_reward(
    grade: GradeResult,
    kind: Kind,
    *,
    correct_reward: float = 1.0,
    incorrect_reward: float = -1.0,
    code_reward: CodeReward = "fraction",
) -> float:
    """Step 1 of the module docstring."""
    if grade.correct:
        return correct_reward
    if kind != "code" or code_reward == "binary" or grade.pred is None:
        return incorrect_reward
    return grade.score


def training_rewards(
    responses: Sequence[str],
    ground_truths: Sequence[GroundTruth],
    *,
    kind: Kind | Sequence[Kind],
    num_turns: Sequence[int],
    response_tokens: Sequence[int],
    max_response_tokens: int = 20480,
    overlong_buffer: int = 1024,
    tool_shaping: ToolShaping = "released",
    overlong: bool = True,
    grader: Grader = "strict",
    correct_reward: float = 1.0,
    incorrect_reward: float = -1.0,
    code_reward: CodeReward = "fraction",
    executor: Executor | None = None,
    timeout_s: float | None = None,
    compare: Compare = "released",
    unescape: bool = False,
    code_timeout_s: float | None = None,
    memory_mb: int | None = None,
    letters: str = DEFAULT_LETTERS,
) -> list[RewardResult]:
    """The training reward of a batch (code tests of the whole batch run together)."""
    n = len(responses)
    if not (len(num_turns) == len(response_tokens) == n):
        raise ValueError(
            f"{n} responses, {len(num_turns)} num_turns, {len(response_tokens)} response_tokens"
        )
    if tool_shaping not in TOOL_SHAPINGS:
        raise ValueError(f"unknown tool_shaping {tool_shaping!r}; choose one of {TOOL_SHAPINGS}")
    kinds = [kind] * n if isinstance(kind, str) else list(kind)
    code_limits = {k: v for k, v in (("memory_mb", memory_mb), ("code_timeout_s", code_timeout_s)) if v is not None}
    grades = grade_many(
        responses,
        ground_truths,
        kind=kinds,
        grader=grader,
        executor=executor,
        timeout_s=timeout_s,
        compare=compare,
        unescape=unescape,
        letters=letters,
        **code_limits,
    )
    base_B = torch.tensor(
        [
            outcome_reward(
                g,
                k,
                correct_reward=correct_reward,
                incorrect_reward=incorrect_reward,
                code_reward=code_reward,
            )
            for g, k in zip(grades, kinds)
        ],
        dtype=torch.float32,
    )
    shaped_B = base_B
    if tool_shaping != "off":
        turns = [RELEASED_NUM_TURNS] * n if tool_shaping == "released" else list(num_turns)
        turns_B = torch.tensor(turns, dtype=torch.float32)
        shaped_B = tool_turn_shaping(base_B, base_B >= 0, turns_B)
    penalty_B = torch.zeros_like(base_B)
    if overlong:
        lengths_B = torch.tensor(list(response_tokens), dtype=torch.float32)
        penalty_B = overlong_penalty_B(lengths_B, max_response_tokens, overlong_buffer)
    reward_B = shaped_B + penalty_B
    return [
        RewardResult(
            reward=float(reward_B[i]),
            correct=g.correct,
            score=g.score,
            pred=g.pred,
            shaped=float(shaped_B[i]),
            overlong_penalty=float(penalty_B[i]),
        )
        for i, g in enumerate(grades)
    ]


def training_reward(
    response: str,
    ground_truth: GroundTruth,
    *,
    kind: Kind,
    num_turns: int,
    response_tokens: int,
    max_response_tokens: int = 20480,
    overlong_buffer: int = 1024,
    tool_shaping: ToolShaping = "released",
    overlong: bool = True,
    grader: Grader = "strict",
    correct_reward: float = 1.0,
    incorrect_reward: float = -1.0,
    code_reward: CodeReward = "fraction",
    executor: Executor | None = None,
    timeout_s: float | None = None,
    compare: Compare = "released",
    unescape: bool = False,
    memory_mb: int | None = None,
    letters: str = DEFAULT_LETTERS,
) -> RewardResult:
    """The training reward of one response (see the module docstring)."""
    return training_rewards(
        [response],
        [ground_truth],
        kind=kind,
        num_turns=[num_turns],
        response_tokens=[response_tokens],
        max_response_tokens=max_response_tokens,
        overlong_buffer=overlong_buffer,
        tool_shaping=tool_shaping,
        overlong=overlong,
        grader=grader,
        correct_reward=correct_reward,
        incorrect_reward=incorrect_reward,
        code_reward=code_reward,
        executor=executor,
        timeout_s=timeout_s,
        compare=compare,
        unescape=unescape,
        memory_mb=memory_mb,
        letters=letters,
    )[0]
