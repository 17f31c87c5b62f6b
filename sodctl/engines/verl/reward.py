"""The training reward on verl: sodctl's ``compute_score`` behind a DAPO reward manager.

Grading is ``sodctl.rewards.verl_compat.compute_score`` (nothing is re-implemented
here); verl calls it from a reward manager. What verl 0.9.1 does (paths in ``verl/``):

- ``trainer/ppo/reward.py:50-86`` loads ``reward.custom_reward_function.{path,name}``
  (``pkg://`` works, ``utils/import_utils.py:170-172``) and binds
  ``custom_reward_function.reward_kwargs`` as keyword arguments; ``reward.py:89-108,152``
  picks the manager (``reward.reward_manager.{source,name}``) and builds it as
  ``cls(config=, tokenizer=, compute_score=, ...)``.
- The managers call ``compute_score(data_source=, solution_str=, ground_truth=,
  extra_info=)`` on the response decoded with ``skip_special_tokens=True``
  (``experimental/reward_loop/reward_manager/dapo.py:52-93``, ``naive.py:34-84``). A dict
  result must hold ``"score"``; every key goes to ``reward_extra_info`` (``dapo.py:95-104``),
  so ``compute_score``'s ``{"score", "acc", "pred"}`` is accepted as it is.
- ``extra_info`` is the dataset row's ``extra_info``. ``naive`` adds ``num_turns`` (from
  ``__num_turns__``) and the loop's ``extra_fields`` (``naive.py:44-52``); **``dapo``
  adds nothing**, so under ``dapo`` ``compute_score`` never sees ``num_turns`` (the
  released run's situation: every wrong answer scored -1.1).
- The DAPO overlong penalty reads ``reward.reward_kwargs.{overlong_buffer_cfg,
  max_resp_len}`` (``dapo.py:33-50,108-117``) and is computed on every response token
  (tool tokens included), ``min(0, -(L - (L_max - buffer)) / buffer) * factor``: the
  released penalty, added to the score.

``SodDAPORewardManager`` (registered as ``sod_dapo``) is verl's ``dapo`` manager that
first writes ``num_turns`` (verl's count, ``user_turns + assistant_turns + 1``) into the
sample's ``extra_info``, so ``reward.tool_shaping="num-turns"`` works with the overlong
penalty; with the default ``"released"`` shaping ``compute_score`` ignores it.
``reward_overrides`` gives the verl config keys for sodctl's ``reward`` section.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from verl import DataProto
from verl.experimental.reward_loop.reward_manager.dapo import DAPORewardManager
from verl.experimental.reward_loop.reward_manager.registry import register

REWARD_MANAGER_NAME = "sod_dapo"
REWARD_FN_PATH = "pkg://sodctl.rewards.verl_compat"
REWARD_FN_NAME = "compute_score"


@register(REWARD_MANAGER_NAME)
class SodDAPORewardManager(DAPORewardManager):
    """verl's ``dapo`` manager that passes ``num_turns`` to ``compute_score``."""

    async def run_single(self, data: DataProto) -> dict:
        data = data[-1:]  # the manager grades the last output of a trajectory (dapo.py:53)
        batch = data.non_tensor_batch
        turns = batch.get("__num_turns__")
        if turns is not None:
            infos = batch.get("extra_info")
            info = dict(infos[0] or {}) if infos is not None else {}
            info["num_turns"] = int(turns[0])
            batch["extra_info"] = np.array([info], dtype=object)
        return await super().run_single(data)


def reward_overrides(
    reward_cfg: Any, *, max_response_tokens: int, sandbox_url: str | None = None
) -> dict[str, Any]:
    """verl config keys (dotted, from the root) for sodctl's ``reward`` section.

    ``max_response_tokens``: ``rollout.response_length`` (the DAPO ``L_max``);
    ``sandbox_url``: grade code on SandboxFusion instead of the local pool. Keys that verl's
    YAML does not declare (``custom_reward_function.reward_kwargs``, ``reward.reward_kwargs``)
    need Hydra's ``+`` on a command line.
    """

    def plain(value: Any) -> Any:
        return getattr(value, "value", value)

    score_kwargs: dict[str, Any] = {
        "grader": plain(reward_cfg.grader),
        "tool_shaping": plain(reward_cfg.tool_shaping),
        "correct_reward": float(reward_cfg.correct),
        "incorrect_reward": float(reward_cfg.incorrect),
        "compare": plain(reward_cfg.code_compare),
        "unescape": bool(reward_cfg.code_unescape),
        "timeout_s": float(reward_cfg.code_timeout_s),
        "memory_mb": int(reward_cfg.code_memory_mb),
    }
    if sandbox_url:
        score_kwargs["sandbox_url"] = sandbox_url
    return {
        "reward.custom_reward_function.path": REWARD_FN_PATH,
        "reward.custom_reward_function.name": REWARD_FN_NAME,
        "reward.custom_reward_function.reward_kwargs": score_kwargs,
        "reward.reward_manager.source": "register",
        "reward.reward_manager.name": REWARD_MANAGER_NAME,
        "reward.reward_kwargs": {
            "overlong_buffer_cfg": {
                "enable": bool(reward_cfg.overlong_penalty),
                "len": int(reward_cfg.overlong_buffer),
                "penalty_factor": 1.0,
                "log": False,
            },
            "max_resp_len": int(max_response_tokens),
        },
    }
