"""verl's custom reward hook: ``compute_score(data_source, solution_str, ground_truth, extra_info)``.

Point verl at it with ``reward.custom_reward_function.path=pkg://sodctl.rewards.verl_compat``
and ``name=compute_score``; options go in ``custom_reward_function.reward_kwargs``:
``grader`` (strict | math-verify), ``tool_shaping`` (released | num-turns | off),
``correct_reward``, ``incorrect_reward``, ``code_reward``, ``timeout_s``, ``compare``
(released | lcb), ``unescape``, ``memory_mb``, ``letters``, and ``sandbox_url`` (code
tests on SandboxFusion instead of the local pool). Other keyword arguments verl adds are
ignored (logged once).

It returns ``{"score": reward, "acc": correct, "pred": prediction or ""}``: the reward
with the tool-turn shaping. ``tool_shaping="released"`` (the default) reproduces the
released run, whose reward never received ``num_turns`` (every negative score -> -1.1);
``"num-turns"`` reads ``extra_info["num_turns"]``, which verl 0.9.1's ``naive`` reward
manager fills but its ``dapo`` manager does not (sodctl's ``sod_dapo`` manager,
``sodctl.engines.verl.reward``, does); when it is missing the shaping is skipped, with
one warning. The DAPO overlong penalty is left to the ``dapo`` / ``sod_dapo`` reward
manager, configured by ``+reward.reward_kwargs.{overlong_buffer_cfg,max_resp_len}``
(``sodctl.engines.verl.reward.reward_overrides`` writes them), which adds it to this
score.

Kind from ``data_source`` (lower-cased), as the released reward routed it:

- contains ``code`` -> code (``LiveCodeBench_v6``, ``train-code-taco-*``,
  ``train-code-leetcode-*``);
- contains ``gpqa``, ``science``, ``mcq`` or ``choice`` and the ground truth is a single
  option letter (A-D, or ``letters``; ``\boxed{B}`` counts as ``B``) -> mcq;
- anything else (AIME, DAPO-Math, Skywork math, MegaScience with a non-letter answer) ->
  math.

Under the strict grader mcq and math are graded alike (boxed exact match), as in the
released code; the split matters for math-verify. An mcq ground truth written
``\boxed{B}`` is graded against ``B`` (the released grader compared the box's content
with the ground truth as written, so such a row could never be right).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from sodctl.rewards.mcq import DEFAULT_LETTERS, option_letter
from sodctl.rewards.result import Kind
from sodctl.rewards.reward import training_reward
from sodctl.tools.executors import get_executor

logger = logging.getLogger(__name__)

_OPTIONS = {
    "grader",
    "tool_shaping",
    "correct_reward",
    "incorrect_reward",
    "code_reward",
    "timeout_s",
    "compare",
    "unescape",
    "memory_mb",
    "letters",
    "sandbox_url",
}
_MCQ_HINTS = ("gpqa", "science", "mcq", "choice")
_warned: set[str] = set()


def kind_for_source(
    data_source: str | None, ground_truth: Any, letters: str = DEFAULT_LETTERS
) -> Kind:
    """The kind of problem a verl row holds (rules in the module docstring)."""
    ds = (data_source or "").lower()
    if "code" in ds:
        return "code"
    if any(h in ds for h in _MCQ_HINTS) and isinstance(ground_truth, str):
        gt = option_letter(ground_truth)
        if len(gt) == 1 and gt in letters.upper():
            return "mcq"
    return "math"


def _warn_once(key: str, message: str) -> None:
    if key not in _warned:
        _warned.add(key)
        logger.warning(message)


def _with_fn_name(ground_truth: Any, extra_info: Mapping[str, Any]) -> Any:
    """Functional LiveCodeBench rows may keep the function name in ``extra_info``."""
    name = extra_info.get("fn_name") or extra_info.get("func_name")
    if not name:
        return ground_truth
    if isinstance(ground_truth, str):
        try:
            ground_truth = json.loads(ground_truth)
        except ValueError:
            return ground_truth
    if isinstance(ground_truth, Mapping) and "inputs" in ground_truth:
        return {**ground_truth, "fn_name": ground_truth.get("fn_name") or name}
    if isinstance(ground_truth, list):
        return {"tests": ground_truth, "fn_name": name}
    return ground_truth


def compute_score(
    data_source: str,
    solution_str: str,
    ground_truth: Any,
    extra_info: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """verl's reward function (see the module docstring)."""
    extra_info = extra_info or {}
    ignored = sorted(set(kwargs) - _OPTIONS)
    if ignored:
        _warn_once("kwargs:" + ",".join(ignored), f"compute_score ignores {ignored}")
    options = {k: v for k, v in kwargs.items() if k in _OPTIONS}
    letters = options.pop("letters", DEFAULT_LETTERS)
    sandbox_url = options.pop("sandbox_url", None)
    kind = kind_for_source(data_source, ground_truth, letters)
    if kind == "code":
        ground_truth = _with_fn_name(ground_truth, extra_info)
    elif kind == "mcq":
        ground_truth = option_letter(str(ground_truth))
    elif not isinstance(ground_truth, str):
        ground_truth = str(ground_truth)
    num_turns = extra_info.get("num_turns")
    tool_shaping = str(options.pop("tool_shaping", "released"))
    if tool_shaping == "num-turns" and num_turns is None:
        _warn_once(
            "num_turns",
            "extra_info has no num_turns: the tool-turn shaping is skipped "
            "(verl's agent loop provides it; the released run lacked it and gave -1.1)",
        )
        tool_shaping = "off"
    executor = get_executor("sandbox-fusion", sandbox_url=sandbox_url) if sandbox_url else None
    result = training_reward(
        solution_str,
        ground_truth,
        kind=kind,
        num_turns=int(num_turns or 0),
        response_tokens=0,
        tool_shaping=tool_shaping,
        overlong=False,
        executor=executor,
        letters=letters,
        **options,
    )
    return {"score": result.reward, "acc": result.correct, "pred": result.pred or ""}
