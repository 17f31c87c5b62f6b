"""The engines' schemas for the files the builders write (REFERENCE §9, DATA-SOURCES §6).

RL rows (``rl_row``), as verl's RL dataset and sodctl's local engine read them::

    data_source   str            the release's name: math_dapo, train-math-*, train-code-*, mega-science
    agent_name    str            "tool_agent" (verl's agent loop)
    prompt        [{role, content}]   one user turn, NOT wrapped: the engines wrap it at load
                                 (``data.prompt_wrapping``), as the released loader did
    ability       str            MATH / math / code / science
    reward_model  {ground_truth: str, style: str}
                                 math: the answer as the graders read it; code: the JSON tests
                                 spec (``{inputs, outputs, fn_name?}`` or the LeetCode harness)
    extra_info    {index, split, source, source_id, need_tools_kwargs,
                   tools_kwargs: {code_interpreter: {create_kwargs: {ground_truth}}},
                   answers, solution, hint, raw}
                                 ``answers``: every accepted answer when the source listed
                                 several; ``solution`` / ``hint``: the OPSD privileged texts
                                 (``sodctl data hints``); ``raw``: the source's own extra_info
                                 as JSON, kept whole

SFT rows: ``messages`` (``{role, content, tool_calls?, name?, tool_call_id?}``; tool calls
as ``{type: "function", function: {name, arguments}}`` with ``arguments`` a JSON string)
and ``tools`` (the JSON list of tool schemas).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

AGENT_NAME = "tool_agent"
TOOL_NAME = "code_interpreter"


def rl_schema() -> Any:
    import pyarrow as pa

    create = pa.struct([("ground_truth", pa.string())])
    tools_kwargs = pa.struct([(TOOL_NAME, pa.struct([("create_kwargs", create)]))])
    extra = pa.struct(
        [
            ("index", pa.int64()),
            ("split", pa.string()),
            ("source", pa.string()),
            ("source_id", pa.string()),
            ("need_tools_kwargs", pa.bool_()),
            ("tools_kwargs", tools_kwargs),
            ("answers", pa.list_(pa.string())),
            ("solution", pa.string()),
            ("hint", pa.string()),
            ("raw", pa.string()),
        ]
    )
    return pa.schema(
        [
            ("data_source", pa.string()),
            ("agent_name", pa.string()),
            ("prompt", pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))),
            ("ability", pa.string()),
            ("reward_model", pa.struct([("ground_truth", pa.string()), ("style", pa.string())])),
            ("extra_info", extra),
        ]
    )


def rl_row(
    *,
    data_source: str,
    content: str,
    ability: str,
    ground_truth: str,
    style: str = "rule",
    source: str,
    source_id: str,
    index: int = 0,
    split: str = "train",
    answers: Sequence[str] | None = None,
    solution: str | None = None,
    hint: str | None = None,
    raw: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One RL row in the engines' schema (module docstring). The code interpreter's
    ``create_kwargs`` carry the ground truth, as the released preprocessing wrote it."""
    return {
        "data_source": data_source,
        "agent_name": AGENT_NAME,
        "prompt": [{"role": "user", "content": content}],
        "ability": ability,
        "reward_model": {"ground_truth": ground_truth, "style": style},
        "extra_info": {
            "index": index,
            "split": split,
            "source": source,
            "source_id": source_id,
            "need_tools_kwargs": True,
            "tools_kwargs": {TOOL_NAME: {"create_kwargs": {"ground_truth": ground_truth}}},
            "answers": list(answers) if answers else None,
            "solution": solution,
            "hint": hint,
            "raw": json.dumps(raw, default=str, sort_keys=True) if raw else None,
        },
    }


def sft_schema() -> Any:
    import pyarrow as pa

    call = pa.struct(
        [
            ("type", pa.string()),
            ("function", pa.struct([("name", pa.string()), ("arguments", pa.string())])),
        ]
    )
    message = pa.struct(
        [
            ("role", pa.string()),
            ("content", pa.string()),
            ("tool_calls", pa.list_(call)),
        ]
    )
    return pa.schema([("messages", pa.list_(message)), ("tools", pa.string())])


def sft_message(
    role: str, content: str, tool_calls: Sequence[Mapping[str, Any]] | None = None
) -> dict[str, Any]:
    """A message of the SFT schema; tool-call arguments become a JSON string (the release
    stores them as a dict or a string; a string keeps the parquet column one type)."""
    calls = None
    if tool_calls:
        calls = []
        for c in tool_calls:
            fn = c.get("function", c)
            args = fn.get("arguments", {})
            calls.append(
                {
                    "type": "function",
                    "function": {
                        "name": str(fn.get("name")),
                        "arguments": args if isinstance(args, str) else json.dumps(args),
                    },
                }
            )
    return {"role": role, "content": content, "tool_calls": calls}
