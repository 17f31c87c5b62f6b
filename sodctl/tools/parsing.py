"""Hermes-style tool calls: find them in a model turn, render them for SFT data.

A call is ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>`` (Qwen3's chat
template writes a newline after the opening and before the closing tag; any
whitespace is accepted). Decisions where the reference is silent:

- Calls are found anywhere in the turn, ``<think>...</think>`` included: the
  released loop searched the whole turn, and sodctl stays paper-faithful.
- Every block is reported, in order: valid ones as ``ToolCall``, the others as
  ``InvalidToolCall`` with a reason (and the decoded JSON when there was one).
  What to do with them is the agent loop's choice (``InvalidCallPolicy``, see
  ``plan_turn``).
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

from sodctl.tools.code_interpreter import RELEASED_TOOL_ERROR

OPEN_TAG = "<tool_call>"
CLOSE_TAG = "</tool_call>"

InvalidCallPolicy = Literal["released", "end", "error-observation"]
InvalidReason = Literal[
    "malformed_json", "missing_name", "unknown_tool", "arguments_not_object", "unclosed"
]


_MISSING = object()


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: dict[str, Any]
    raw: str  # the whole block, tags included
    # ``arguments`` as the JSON gave it, before a JSON-string value was decoded; the
    # sentinel ``_MISSING`` when the key was absent (the released parser dropped such calls).
    raw_arguments: Any = field(default=_MISSING, compare=False, repr=False)

    @property
    def arguments_given(self) -> bool:
        return self.raw_arguments is not _MISSING


@dataclass(frozen=True)
class InvalidToolCall:
    raw: str
    reason: InvalidReason
    detail: str = ""  # a human-readable explanation (the JSON error, the unknown name, ...)
    obj: Any = field(default=None, compare=False, repr=False)  # the decoded JSON, if any


@dataclass(frozen=True)
class ParsedTurn:
    blocks: list[ToolCall | InvalidToolCall] = field(default_factory=list)  # in text order

    @property
    def calls(self) -> list[ToolCall]:
        return [b for b in self.blocks if isinstance(b, ToolCall)]

    @property
    def invalid(self) -> list[InvalidToolCall]:
        return [b for b in self.blocks if isinstance(b, InvalidToolCall)]

    @property
    def has_tool_call(self) -> bool:
        """Whether the turn holds any tool-call block at all, valid or not."""
        return bool(self.blocks)


_decoder = json.JSONDecoder()


def _skip_ws(text: str, i: int) -> int:
    while i < len(text) and text[i].isspace():
        i += 1
    return i


def _check(obj: Any, raw: str, known_tools: Collection[str]) -> ToolCall | InvalidToolCall:
    if not isinstance(obj, dict):
        return InvalidToolCall(
            raw, "malformed_json", f"expected a JSON object, got {type(obj).__name__}", obj
        )
    name = obj.get("name")
    if not isinstance(name, str) or not name:
        return InvalidToolCall(raw, "missing_name", "the call has no 'name' string", obj)
    if name not in known_tools:
        return InvalidToolCall(raw, "unknown_tool", f"unknown tool {name!r}", obj)
    raw_args = obj.get("arguments", _MISSING)
    args = {} if raw_args is _MISSING else raw_args
    if isinstance(args, str):
        with contextlib.suppress(ValueError):
            args = json.loads(args)
    if not isinstance(args, dict):
        return InvalidToolCall(
            raw, "arguments_not_object", "'arguments' must be a JSON object", obj
        )
    return ToolCall(name, args, raw, raw_args)


def parse_tool_calls(
    text: str,
    *,
    known_tools: Collection[str] = ("code_interpreter",),
    allow_unclosed: bool = False,
) -> ParsedTurn:
    """Every ``<tool_call>`` block of ``text``, in order (see the module docstring)."""
    blocks: list[ToolCall | InvalidToolCall] = []
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
                blocks.append(_check(obj, text[start:stop], known_tools))
                pos = stop
                continue
            error = f"unexpected text after the JSON: {text[after : after + 20]!r}"
        close = text.find(CLOSE_TAG, start + len(OPEN_TAG))
        following = text.find(OPEN_TAG, start + len(OPEN_TAG))
        if close == -1 or following != -1 and following < close:
            stop = len(text) if following == -1 else following
            blocks.append(InvalidToolCall(text[start:stop], "unclosed", f"no {CLOSE_TAG} tag"))
            pos = stop
            continue
        stop = close + len(CLOSE_TAG)
        blocks.append(InvalidToolCall(text[start:stop], "malformed_json", error))
        pos = stop
    return ParsedTurn(blocks)


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


# --- what a turn's blocks lead to, under each policy ----------------------------------------


@dataclass(frozen=True)
class PlannedCall:
    """One tool-call block of a turn and what the loop does with it, in block order.

    run=True: ``arguments`` go to the tool and its observation is shown. run=False: the
    block is not run; ``observation`` is shown when ``shown`` (else it is only recorded,
    as an erroneous call)."""

    name: str | None
    arguments: Any = None
    run: bool = False
    observation: str = ""
    shown: bool = False


@dataclass(frozen=True)
class TurnPlan:
    calls: list[PlannedCall]
    ends: bool  # the turn is final: nothing runs and nothing is shown
    dropped: int = 0  # callable blocks past max_parallel_calls (not run, not recorded)


def _released_callable(block: ToolCall | InvalidToolCall) -> bool:
    """Whether verl's hermes parser would have turned the block into a call: a JSON object
    with a string ``name`` and an ``arguments`` key."""
    if isinstance(block, ToolCall):
        return block.arguments_given
    obj = block.obj
    return isinstance(obj, dict) and isinstance(obj.get("name"), str) and "arguments" in obj


def plan_turn(
    turn: ParsedTurn,
    policy: InvalidCallPolicy = "released",
    *,
    known_tools: Collection[str] = ("code_interpreter",),
    max_parallel_calls: int | None = 1,
) -> TurnPlan:
    """What to run and show for a turn's tool-call blocks.

    ``released`` (verl's tool agent loop with the released tool): blocks the hermes
    parser could not read (no closing tag, bad JSON, no string name, no ``arguments``)
    are ignored; the first ``max_parallel_calls`` of the rest are called, in order: an
    unknown name is answered ``Error when executing tool: '<name>'``, arguments go to
    the tool as they are (it answers bad ones with its own error text); no callable
    block ends the trajectory. ``end``: valid calls run (the first
    ``max_parallel_calls``), invalid blocks are recorded as erroneous calls, and a turn
    with no valid call is final. ``error-observation``: as ``end``, but each invalid
    block is answered with ``invalid_call_observation`` and never ends the turn.
    """
    limit = max_parallel_calls if max_parallel_calls else None
    blocks = turn.blocks
    planned: list[PlannedCall] = []
    if policy == "released":
        callable_ = [b for b in blocks if _released_callable(b)]
        kept = {id(b) for b in callable_[:limit]}
        for b in blocks:
            if id(b) in kept:
                if isinstance(b, ToolCall):
                    planned.append(PlannedCall(b.name, b.raw_arguments, run=True))
                elif b.reason == "unknown_tool":
                    name = b.obj["name"]
                    text = f"{RELEASED_TOOL_ERROR}{KeyError(name)}"
                    planned.append(PlannedCall(name, b.obj["arguments"], observation=text, shown=True))
                else:  # arguments that are not an object: the tool reports them
                    planned.append(PlannedCall(b.obj["name"], b.obj["arguments"], run=True))
            elif not _released_callable(b):
                planned.append(PlannedCall(None))  # ignored by verl: recorded only
        return TurnPlan(planned, ends=not kept, dropped=len(callable_) - len(kept))
    if policy not in ("end", "error-observation"):
        raise ValueError(f"unknown invalid-call policy {policy!r}")
    valid = [b for b in blocks if isinstance(b, ToolCall)]
    kept_valid = {id(b) for b in valid[:limit]}
    shown = policy == "error-observation"
    for b in blocks:
        if isinstance(b, ToolCall):
            if id(b) in kept_valid:
                planned.append(PlannedCall(b.name, b.arguments, run=True))
        else:
            planned.append(PlannedCall(None, observation=invalid_call_observation(b), shown=shown))
    ends = not kept_valid and not shown
    return TurnPlan(planned, ends=ends, dropped=len(valid) - len(kept_valid))

