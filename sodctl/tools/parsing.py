"""Hermes-style tool calls: find them in a model turn, render them for SFT data.

A call is ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>`` (Qwen3's chat
template writes a newline after the opening and before the closing tag; any
whitespace is accepted). Decisions where the reference is silent:

- Calls are found anywhere in the turn, ``<think>...</think>`` included: the
  released loop searched the whole turn, and sodctl stays paper-faithful.
- Every block is reported, in order: valid ones as ``ToolCall``, the others as
  ``InvalidToolCall`` with a reason. What to do with the invalid ones is the
  agent loop's choice (``InvalidCallPolicy``): end the trajectory (the released
  behaviour: no parseable call means the turn is final) or answer with
  ``invalid_call_observation``.
- A block's JSON is decoded first and the closing tag looked for after it, so a
  ``</tool_call>`` inside the code string does not cut the block short.
- A missing closing tag makes the block invalid (``unclosed``), unless
  ``allow_unclosed=True``, which accepts a last block whose JSON is complete
  (a turn cut by a stop string placed on ``</tool_call>``).
- ``arguments`` may be an object or a JSON string holding one; a missing
  ``arguments`` key means ``{}`` (the tool then reports what is missing).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any, Literal

OPEN_TAG = "<tool_call>"
CLOSE_TAG = "</tool_call>"

InvalidCallPolicy = Literal["end", "error-observation"]
InvalidReason = Literal[
    "malformed_json", "missing_name", "unknown_tool", "arguments_not_object", "unclosed"
]


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: dict[str, Any]
    raw: str  # the whole block, tags included


@dataclass(frozen=True)
class InvalidToolCall:
    raw: str
    reason: InvalidReason
    detail: str = ""  # a human-readable explanation (the JSON error, the unknown name, ...)


@dataclass(frozen=True)
class ParsedTurn:
    calls: list[ToolCall] = field(default_factory=list)
    invalid: list[InvalidToolCall] = field(default_factory=list)

    @property
    def has_tool_call(self) -> bool:
        """Whether the turn holds any tool-call block at all, valid or not."""
        return bool(self.calls or self.invalid)


_decoder = json.JSONDecoder()


def _skip_ws(text: str, i: int) -> int:
    while i < len(text) and text[i].isspace():
        i += 1
    return i


def _check(obj: Any, raw: str, known_tools: Collection[str]) -> ToolCall | InvalidToolCall:
    if not isinstance(obj, dict):
        return InvalidToolCall(
            raw, "malformed_json", f"expected a JSON object, got {type(obj).__name__}"
        )
    name = obj.get("name")
    if not isinstance(name, str) or not name:
        return InvalidToolCall(raw, "missing_name", "the call has no 'name' string")
    if name not in known_tools:
        return InvalidToolCall(raw, "unknown_tool", f"unknown tool {name!r}")
    args = obj.get("arguments", {})
    if isinstance(args, str):
        with contextlib.suppress(ValueError):
            args = json.loads(args)
    if not isinstance(args, dict):
        return InvalidToolCall(raw, "arguments_not_object", "'arguments' must be a JSON object")
    return ToolCall(name, args, raw)


def parse_tool_calls(
    text: str,
    *,
    known_tools: Collection[str] = ("code_interpreter",),
    allow_unclosed: bool = False,
) -> ParsedTurn:
    """Every ``<tool_call>`` block of ``text``, in order (see the module docstring)."""
    calls: list[ToolCall] = []
    invalid: list[InvalidToolCall] = []
    pos = 0
    while (start := text.find(OPEN_TAG, pos)) != -1:
        body = _skip_ws(text, start + len(OPEN_TAG))
        try:
            obj, end = _decoder.raw_decode(text, body)
        except ValueError as e:
            obj, end, error = None, -1, str(e)
        if end != -1:
            after = _skip_ws(text, end)
            if text.startswith(CLOSE_TAG, after) or (allow_unclosed and after == len(text)):
                stop = min(after + len(CLOSE_TAG), len(text))
                item = _check(obj, text[start:stop], known_tools)
                if isinstance(item, ToolCall):
                    calls.append(item)
                else:
                    invalid.append(item)
                pos = stop
                continue
            error = f"unexpected text after the JSON: {text[after : after + 20]!r}"
        close = text.find(CLOSE_TAG, start + len(OPEN_TAG))
        following = text.find(OPEN_TAG, start + len(OPEN_TAG))
        if close == -1 or following != -1 and following < close:
            stop = len(text) if following == -1 else following
            invalid.append(InvalidToolCall(text[start:stop], "unclosed", f"no {CLOSE_TAG} tag"))
            pos = stop
            continue
        stop = close + len(CLOSE_TAG)
        invalid.append(InvalidToolCall(text[start:stop], "malformed_json", error))
        pos = stop
    return ParsedTurn(calls, invalid)


def render_tool_call(name: str, arguments: dict[str, Any]) -> str:
    """The canonical block, as Qwen3's chat template writes it."""
    payload = json.dumps({"name": name, "arguments": arguments}, ensure_ascii=False)
    return f"{OPEN_TAG}\n{payload}\n{CLOSE_TAG}"


_HINT = (
    'Call a tool as <tool_call>{"name": "code_interpreter", "arguments": {"code": "..."}}'
    "</tool_call>."
)
_REASON_TEXT: dict[str, str] = {
    "malformed_json": "the call is not valid JSON",
    "missing_name": "the call has no tool name",
    "unknown_tool": "no such tool",
    "arguments_not_object": "the arguments are not a JSON object",
    "unclosed": f"the call is missing its closing {CLOSE_TAG} tag",
}


def invalid_call_observation(invalid: InvalidToolCall) -> str:
    """The observation returned for an invalid call under ``on_invalid_call=error-observation``."""
    detail = f" ({invalid.detail})" if invalid.detail else ""
    return f"Error: invalid tool call: {_REASON_TEXT[invalid.reason]}{detail}. {_HINT}"
