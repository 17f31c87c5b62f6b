"""The ``code_interpreter`` tool as a verl ``BaseTool``, over sodctl's executors.

verl 0.9.1 ships no code tool (built-in tools were removed), so sodctl brings its own.
It is a thin adapter: every observation is computed by sodctl's ``CodeInterpreter``
(``sodctl.tools.code_interpreter``) for the same arguments, on the same executors (the
shared local pool or SandboxFusion, ``sodctl.tools.executors.get_executor``), so the
model sees in verl exactly what it sees in sodctl's own loop.

The verl interfaces it relies on (paths in ``verl/``):

- ``tools/base_tool.py:24-93`` ``BaseTool``: ``__init__(config, tool_schema)`` (a None
  schema is replaced by ``get_openai_tool_schema()``), ``async create(instance_id=None,
  **kw) -> (id, ToolResponse)``, ``async execute(instance_id, parameters, **kw) ->
  (ToolResponse, reward, metrics)``, ``async calc_reward``, ``async release``.
- ``tools/schemas.py:52-56,98-127`` ``OpenAIFunctionToolSchema``, ``ToolResponse``.
- ``tools/tool_registry.py:55-80`` ``initialize_tools_from_config``: the YAML is
  ``tools: [{class_name, config: {type: native, ...}, tool_schema?}]``; the tool gets
  ``config`` as a plain dict (``type`` included) and the schema validated by pydantic.
  ``write_tool_config`` writes that file; ``rollout.multi_turn.tool_config_path`` names it.
- ``experimental/agent_loop/tool_agent_loop.py:443-518`` ``_call_tool``: per call
  ``create(create_kwargs=...)``, ``execute(id, args, agent_data=...)``, ``release(id)``;
  ``args`` is ``json.loads`` of the model's arguments (any JSON value); the returned text
  is cut again when longer than ``multi_turn.max_tool_response_length`` (L498-506), and
  ``metrics`` is handed back to the caller (the stock loop drops it, L325;
  ``SodToolAgentLoop`` reads ``metrics["erroneous"]``).

The tool's ``config`` keys are the fields of sodctl's ``tool`` section (``ToolConfig``:
``backend``, ``sandbox_url``, ``compile_timeout_s``, ``run_timeout_s``, ``memory_mb``,
``max_observation_chars``, ``print_mode``, ``fault_rate``, ``observations``, ``schema``),
plus ``type`` (verl's), ``fault_seed`` and ``n_workers`` (local pool size; default one
worker per CPU). ``max_parallel_calls`` and ``on_invalid_call`` are accepted and ignored:
they belong to the agent loop (``agent_loop.rollout_overrides``). Any other key is an
error. The executor is created on the first call, not when verl builds the tool.

``execute`` returns the observation as ``ToolResponse.text``, reward 0.0, and metrics
``{"status", "erroneous", "latency_s"}`` (``ToolOutcome``'s fields); the executor call runs
in a thread (``asyncio.to_thread``), never on the event loop.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping, Sequence
from enum import Enum
from pathlib import Path
from typing import Any
from uuid import uuid4

from omegaconf import OmegaConf
from verl.tools.base_tool import BaseTool
from verl.tools.schemas import OpenAIFunctionToolSchema, ToolResponse
from verl.utils.rollout_trace import rollout_trace_op

from sodctl.config.schema import ToolConfig
from sodctl.tools.code_interpreter import CodeInterpreter, ToolOutcome, tool_schema
from sodctl.tools.executors import BACKENDS, Executor, get_executor
from sodctl.tools.result import ExecResult

CLASS_NAME = "sodctl.engines.verl.tool.CodeInterpreterTool"
TOOL_KEYS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(ToolConfig))
LOOP_KEYS = frozenset({"max_parallel_calls", "on_invalid_call"})  # the agent loop's
EXTRA_KEYS = frozenset({"type", "fault_seed", "n_workers"})


class _SharedExecutor:
    """The shared executor of a backend, fetched on first use (``get_executor`` caches it)."""

    def __init__(self, cfg: ToolConfig, n_workers: int | None) -> None:
        if cfg.backend not in BACKENDS:
            raise ValueError(f"unknown tool backend {cfg.backend!r}; choose one of {BACKENDS}")
        if cfg.backend == "sandbox-fusion" and not cfg.sandbox_url:
            raise ValueError("tool backend 'sandbox-fusion' needs a sandbox_url")
        self._cfg, self._n_workers = cfg, n_workers

    def _get(self) -> Executor:
        if self._cfg.backend == "sandbox-fusion":
            return get_executor(
                "sandbox-fusion",
                sandbox_url=self._cfg.sandbox_url,
                compile_timeout_s=self._cfg.compile_timeout_s,
            )
        return get_executor("local", n_workers=self._n_workers, preload=self._cfg.preload)

    def execute(self, code: str, **kwargs: Any) -> ExecResult:
        return self._get().execute(code, **kwargs)

    def execute_many(self, codes: Sequence[str], **kwargs: Any) -> list[ExecResult]:
        return self._get().execute_many(codes, **kwargs)

    def close(self) -> None:
        """Shared executors are closed by ``close_executors`` (at exit), not by one tool."""


def tool_config(config: Mapping[str, Any]) -> ToolConfig:
    """sodctl's ``ToolConfig`` from a verl tool ``config`` dict (keys: module docstring)."""
    unknown = sorted(set(config) - set(TOOL_KEYS) - EXTRA_KEYS)
    if unknown:
        raise ValueError(
            f"{CLASS_NAME} got unknown config keys {unknown}; it takes the fields of sodctl's "
            f"tool section ({', '.join(TOOL_KEYS)}) and {', '.join(sorted(EXTRA_KEYS))}"
        )
    if config.get("type", "native") != "native":
        raise ValueError(f"{CLASS_NAME} is a native verl tool (type: native)")
    return ToolConfig(**{k: v for k, v in config.items() if k in TOOL_KEYS and k not in LOOP_KEYS})


def outcome_metrics(outcome: ToolOutcome) -> dict[str, Any]:
    """The metrics ``execute`` returns for one outcome (what ``SodToolAgentLoop`` reads)."""
    return {
        "status": outcome.status,
        "erroneous": outcome.erroneous,
        "latency_s": outcome.latency_s,
    }


class CodeInterpreterTool(BaseTool):
    """sodctl's ``code_interpreter`` behind verl's ``BaseTool`` interface (module docstring)."""

    def __init__(self, config: dict, tool_schema: OpenAIFunctionToolSchema | None = None):
        self.tool_cfg = tool_config(config)
        executor = _SharedExecutor(self.tool_cfg, config.get("n_workers"))
        self.interpreter = CodeInterpreter.from_config(
            self.tool_cfg, executor, fault_seed=config.get("fault_seed")
        )
        self._instances: set[str] = set()
        super().__init__(config, tool_schema)

    def get_openai_tool_schema(self) -> OpenAIFunctionToolSchema:
        current = getattr(self, "tool_schema", None)
        if current is not None:
            return current
        return OpenAIFunctionToolSchema.model_validate(tool_schema(self.tool_cfg.schema))

    async def create(
        self, instance_id: str | None = None, **kwargs: Any
    ) -> tuple[str, ToolResponse]:
        instance_id = instance_id or str(uuid4())
        self._instances.add(instance_id)
        return instance_id, ToolResponse()

    @rollout_trace_op
    async def execute(
        self, instance_id: str, parameters: dict[str, Any], **kwargs: Any
    ) -> tuple[ToolResponse, float, dict[str, Any]]:
        outcome = await asyncio.to_thread(self.interpreter.run, parameters)
        return ToolResponse(text=outcome.observation), 0.0, outcome_metrics(outcome)

    async def calc_reward(self, instance_id: str, **kwargs: Any) -> float:
        return 0.0

    async def release(self, instance_id: str, **kwargs: Any) -> None:
        self._instances.discard(instance_id)


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value


def tool_entry(tool_cfg: Any, **extra: Any) -> dict[str, Any]:
    """One ``tools:`` entry of verl's tool YAML for sodctl's ``tool`` section (a
    ``ToolConfig``, a DictConfig or a mapping); ``extra``: ``fault_seed``, ``n_workers``."""
    if dataclasses.is_dataclass(tool_cfg) and not isinstance(tool_cfg, type):
        raw = {f.name: getattr(tool_cfg, f.name) for f in dataclasses.fields(tool_cfg)}
    elif OmegaConf.is_config(tool_cfg):
        raw = OmegaConf.to_container(tool_cfg, resolve=True, enum_to_str=True)
    else:
        raw = dict(tool_cfg)
    bad = sorted(set(extra) - (EXTRA_KEYS - {"type"}))
    if bad:
        raise ValueError(f"unknown extra tool keys {bad}")
    cfg = tool_config({**raw, **extra})  # validates the keys
    config = {"type": "native"}
    config.update({k: _plain(getattr(cfg, k)) for k in TOOL_KEYS if k not in LOOP_KEYS})
    config.update({k: v for k, v in extra.items() if v is not None})
    return {"class_name": CLASS_NAME, "config": config, "tool_schema": tool_schema(cfg.schema)}


def write_tool_config(path: str | Path, tool_cfg: Any, **extra: Any) -> Path:
    """Write verl's tool YAML (``rollout.multi_turn.tool_config_path``) with the one
    ``code_interpreter`` tool; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(OmegaConf.create({"tools": [tool_entry(tool_cfg, **extra)]}), path)
    return path
