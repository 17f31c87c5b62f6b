"""The code interpreter: executors (a local pool of warm sandboxes, SandboxFusion), the
``code_interpreter`` tool and Hermes tool-call parsing."""

from sodctl.tools.code_interpreter import (
    CODE_INTERPRETER_SCHEMA,
    CodeInterpreter,
    PrintMode,
    ToolOutcome,
    extract_code,
    format_observation,
    is_erroneous,
    prepare_code,
    released_argument_error,
    tool_schema,
)
from sodctl.tools.executors import Executor, close_executors, execute, get_executor
from sodctl.tools.local import LocalExecutor
from sodctl.tools.parsing import (
    InvalidCallPolicy,
    InvalidToolCall,
    ParsedTurn,
    PlannedCall,
    ToolCall,
    TurnPlan,
    invalid_call_observation,
    parse_tool_calls,
    plan_turn,
    render_tool_call,
)
from sodctl.tools.result import STATUSES, ExecResult, Status
from sodctl.tools.sandbox_fusion import SandboxFusionExecutor

__all__ = [
    "CODE_INTERPRETER_SCHEMA",
    "STATUSES",
    "CodeInterpreter",
    "ExecResult",
    "Executor",
    "InvalidCallPolicy",
    "InvalidToolCall",
    "LocalExecutor",
    "ParsedTurn",
    "PlannedCall",
    "PrintMode",
    "SandboxFusionExecutor",
    "Status",
    "ToolCall",
    "ToolOutcome",
    "TurnPlan",
    "close_executors",
    "execute",
    "extract_code",
    "format_observation",
    "get_executor",
    "invalid_call_observation",
    "is_erroneous",
    "parse_tool_calls",
    "plan_turn",
    "prepare_code",
    "released_argument_error",
    "render_tool_call",
    "tool_schema",
]
