"""verl's tool agent loop, recording which tool calls went wrong: ``sod_tool_agent``.

``SodToolAgentLoop`` is verl's ``ToolAgentLoop`` unchanged, except that every tool call
is noted (its assistant turn, whether it was erroneous) and three numbers per sample are
added to the loop output's ``extra_fields``:

- ``sod_first_error_step``: the 0-based assistant turn of the first erroneous tool call,
  -1 if none. Step k (the k-th run of 1s in ``response_mask``) is assistant turn k, as in
  sodctl's loop (``Trajectory.first_error_step``), because the mask is 1 exactly on
  generated tokens (``utils/tokenizer/continuous_token.py:392-415``).
- ``sod_tool_calls``: the calls that were made (at most ``multi_turn.max_parallel_calls``
  per turn; verl never runs the rest).
- ``sod_tool_errors``: how many of them were erroneous.

A call is erroneous when ``CodeInterpreterTool`` says so (``metrics["erroneous"]``:
any status but ``ok``, invalid arguments included), or when verl answered it without the
tool: an unknown tool name, arguments that are not JSON, or an exception inside the tool
(``tool_agent_loop.py:455-492``, which returns empty metrics). A call to some other tool
that returns no ``erroneous`` metric counts as not erroneous.

How it is done (paths in ``verl/``): the only overrides are ``run`` and ``_call_tool``
(``experimental/agent_loop/tool_agent_loop.py:130-213,443-518``). ``_call_tool`` calls
verl's and notes the result on a per-run list held in a context variable, which the
tasks of ``asyncio.gather`` (L316-321) inherit; ``run`` calls verl's and adds the three
fields to ``output.extra_fields``. Nothing is written into ``AgentData.extra_fields``
while the loop runs, because verl copies the server's extra fields into it only while it
is empty (L261-270).

Where the fields land (what a trainer reads):

- v1 trainers (``trainer.use_v1``, TransferQueue): ``AgentLoopWorkerTQ._agent_loop_postprocess``
  stores ``output.as_dict()`` per trajectory (``trainer/ppo/v1/agent_loop_tq.py:183-227``),
  so they are keys of the dict in the field **``extra_fields``** (a ``NonTensorStack`` of
  dicts, one per trajectory): ``tq.kv_batch_get(keys=batch.keys,
  partition_id=batch.partition_id, select_fields=["extra_fields"]).pop("extra_fields")
  .tolist()[i]["sod_first_error_step"]``, as verl reads its ``spec_*`` stats
  (``trainer/ppo/v1/trainer_base.py:1904-1917``); ``td["extra_fields"]`` gives a
  list-like ``LinkedList`` instead, also fine. ``tool_error_fields`` turns either into
  per-sample lists (and raises for a sample some other loop produced).
- the DataProto path (``AgentLoopWorker._postprocess``,
  ``experimental/agent_loop/agent_loop.py:1120-1135``): every extra field becomes a
  top-level ``non_tensor_batch`` object array: ``batch.non_tensor_batch["sod_first_error_step"]``.
- reward managers that merge ``tool_extra_fields`` into ``extra_info`` (``naive``,
  ``limited``; ``agent_loop.py:1016``) see them too; ``compute_score`` ignores them.

Choosing the loop: verl picks the loop per sample from the dataset column ``agent_name``
(``agent_loop.py:610-612,661-682``; v1: ``agent_loop_tq.py:79-81``), falling back to
``rollout.agent.default_agent_loop`` only when the column is absent. sodctl's data
builders write ``agent_name: tool_agent`` (verl's stock loop, which records nothing), so
either the rows say ``sod_tool_agent`` (``AGENT_NAME``) or the column is dropped and
``actor_rollout_ref.rollout.agent.default_agent_loop=sod_tool_agent`` is set
(``rollout_overrides`` sets it). The registration itself happens on import (verl's
``register`` decorator, ``agent_loop.py:467-478``), which the plugin does in every process.
"""

from __future__ import annotations

import contextvars
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from verl.experimental.agent_loop.agent_loop import AgentLoopOutput, register
from verl.experimental.agent_loop.tool_agent_loop import AgentData, ToolAgentLoop
from verl.experimental.agent_loop.tool_parser import FunctionCall
from verl.tools.schemas import ToolResponse

from sodctl.engines.verl.tool import CodeInterpreterTool

AGENT_NAME = "sod_tool_agent"
FIRST_ERROR_STEP = "sod_first_error_step"
TOOL_CALLS = "sod_tool_calls"
TOOL_ERRORS = "sod_tool_errors"
FIELDS: tuple[str, ...] = (FIRST_ERROR_STEP, TOOL_CALLS, TOOL_ERRORS)
# Headroom over max_observation_chars for the cut marker, so verl's own cut
# (tool_agent_loop.py:498-506) never touches an observation the tool already cut.
TOOL_RESPONSE_HEADROOM = 64


@dataclass(frozen=True)
class CallNote:
    """One tool call as the loop saw it: its 0-based assistant turn and whether it erred."""

    turn: int
    erroneous: bool


_calls: contextvars.ContextVar[list[CallNote] | None] = contextvars.ContextVar(
    "sod_tool_calls", default=None
)


def summarize(calls: Iterable[CallNote]) -> dict[str, int]:
    """The three ``extra_fields`` of a sample from its calls (in any order)."""
    calls = list(calls)
    errors = [c.turn for c in calls if c.erroneous]
    return {
        FIRST_ERROR_STEP: min(errors) if errors else -1,
        TOOL_CALLS: len(calls),
        TOOL_ERRORS: len(errors),
    }


def tool_error_fields(extra_fields: Iterable[Mapping[str, Any] | None]) -> dict[str, list[int]]:
    """Per-sample lists of the three fields from a batch's ``extra_fields`` dicts (v1's
    ``extra_fields`` field ``.tolist()``); a sample without them (another agent loop)
    raises, so a misrouted batch is not read as "no errors"."""
    out: dict[str, list[int]] = {name: [] for name in FIELDS}
    for i, fields in enumerate(extra_fields):
        fields = getattr(fields, "data", fields)  # a NonTensorData element
        if not isinstance(fields, Mapping) or FIRST_ERROR_STEP not in fields:
            raise KeyError(
                f"sample {i} has no {FIRST_ERROR_STEP!r}: it was not rolled out by "
                f"{AGENT_NAME!r} (check the rows' agent_name column)"
            )
        for name in FIELDS:
            out[name].append(int(fields[name]))
    return out


@register(AGENT_NAME)
class SodToolAgentLoop(ToolAgentLoop):
    """``ToolAgentLoop`` plus the tool-error fields (module docstring)."""

    async def run(self, sampling_params: dict[str, Any], **kwargs: Any) -> AgentLoopOutput:
        calls: list[CallNote] = []
        token = _calls.set(calls)
        try:
            output = await super().run(sampling_params, **kwargs)
        finally:
            _calls.reset(token)
        output.extra_fields.update(summarize(calls))
        return output

    async def _call_tool(
        self, tool_call: FunctionCall, tools_kwargs: dict[str, Any], agent_data: AgentData
    ) -> tuple[ToolResponse, float, dict]:
        result = await super()._call_tool(tool_call, tools_kwargs, agent_data)
        calls = _calls.get()
        if calls is not None:
            erroneous = self._is_erroneous(tool_call, result[2], agent_data)
            calls.append(CallNote(agent_data.assistant_turns - 1, erroneous))
        return result

    def _is_erroneous(self, tool_call: FunctionCall, metrics: Any, agent_data: AgentData) -> bool:
        if isinstance(metrics, Mapping) and "erroneous" in metrics:
            return bool(metrics["erroneous"])
        tool = getattr(agent_data, "_active_tools", self.tools).get(tool_call.name)
        if tool is None or isinstance(tool, CodeInterpreterTool):
            return True  # verl answered: unknown tool, or an exception inside our tool
        try:
            json.loads(tool_call.arguments)
        except (json.JSONDecodeError, TypeError):
            return True  # verl answered: the arguments are not JSON
        return False


def rollout_overrides(
    tool_cfg: Any, tool_config_path: str, *, max_assistant_turns: int | None = None
) -> dict[str, Any]:
    """verl config keys (relative to ``actor_rollout_ref.rollout``) for the tool loop.

    ``tool_cfg``: sodctl's ``tool`` section. Only ``on_invalid_call="released"`` can be
    honoured: verl's loop answers invalid calls its own way (``tool_agent_loop.py:455-470``;
    its texts differ from the released verl's, RELEASED-PROTOCOL.md B10).
    ``max_parallel_calls`` None runs every call: verl slices
    ``tool_calls[:max_parallel_calls]`` (L317, L419). ``max_tool_response_length`` leaves
    room for the tool's own cut marker, so verl never cuts an observation again.
    """
    on_invalid = getattr(tool_cfg, "on_invalid_call", "released")
    if str(getattr(on_invalid, "value", on_invalid)) != "released":
        raise ValueError(
            f"tool.on_invalid_call={on_invalid!r} cannot run on verl: its tool agent loop "
            "handles invalid calls itself; use 'released' or the local engine"
        )
    overrides: dict[str, Any] = {
        "agent.default_agent_loop": AGENT_NAME,
        "multi_turn.enable": True,
        "multi_turn.format": "hermes",
        "multi_turn.tool_config_path": str(tool_config_path),
        "multi_turn.max_parallel_calls": tool_cfg.max_parallel_calls,
        "multi_turn.max_tool_response_length": int(tool_cfg.max_observation_chars)
        + TOOL_RESPONSE_HEADROOM,
        "multi_turn.tool_response_truncate_side": "middle",
    }
    if max_assistant_turns is not None:
        overrides["multi_turn.max_assistant_turns"] = max_assistant_turns
    return overrides
