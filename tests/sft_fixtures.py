"""Tiny copies of the SFT source sets in their exact schemas (DATA-SOURCES §5), a scripted
teacher that plays tool trajectories for them, and a fake code interpreter.

The problems are synthetic; only the columns and their types follow the releases:
s1K-1.1 (parquet), ReTool-SFT-multi-turn (parquet; ``tool_calls[].function.arguments`` a
dict in one file, a JSON string in the other, as both shapes occur in the wild) and
LeetCodeDataset (JSON lines).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from rollout_fixtures import FakeOutcome

from sodctl.tools.parsing import render_tool_call

S1K_COLUMNS = (
    "solution", "question", "cot_type", "source_type", "metadata", "gemini_thinking_trajectory",
    "gemini_attempt", "deepseek_thinking_trajectory", "deepseek_attempt",
)  # fmt: skip


def write_s1k(path: Path) -> Path:
    """Three s1K-1.1 rows: a boxed answer (6*7), a short unboxed one (2+3), and a long
    unboxed proof (dropped: no_short_answer)."""
    rows = [
        ("We multiply: 6*7 = \\boxed{42}.", "Compute 6*7."),
        ("5", "Compute 2+3."),
        (
            "A long argument without any box. " * 5,
            "Prove that the square root of two is irrational.",
        ),
    ]
    frame = pd.DataFrame(
        [
            dict(
                zip(
                    S1K_COLUMNS,
                    (sol, q, "math", "synthetic", json.dumps({"n": i}), "t", "a", "t", "a"),
                )
            )
            for i, (sol, q) in enumerate(rows)
        ]
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path)
    return path


def _retool_messages(problem: str, answer_text: str, arguments) -> list[dict]:
    call = {"type": "function", "function": {"name": "code_interpreter", "arguments": arguments}}
    return [
        {
            "role": "user",
            "content": problem,
            "name": None,
            "tool_call_id": None,
            "tool_calls": None,
        },
        {
            "role": "assistant",
            "content": "Let me compute.",
            "name": None,
            "tool_call_id": None,
            "tool_calls": [call],
        },
        {
            "role": "tool",
            "content": "12",
            "name": "code_interpreter",
            "tool_call_id": "call_0",
            "tool_calls": None,
        },
        {
            "role": "assistant",
            "content": answer_text,
            "name": None,
            "tool_call_id": None,
            "tool_calls": None,
        },
    ]


RETOOL_TOOLS = json.dumps(
    [{"type": "function", "function": {"name": "code_interpreter", "description": "Run code.",
      "parameters": {"type": "object", "properties": {"code": {"type": "string"}}, "required": ["code"]}}}]
)  # fmt: skip


def write_retool(folder: Path) -> Path:
    """Two ReTool parquet files: ``part-a`` with dict arguments (3*4 answered in
    ``<answer>\\boxed{12}</answer>``; 10-3 answered ``<answer>7</answer>``), ``part-b``
    with JSON-string arguments (one with no final answer: dropped, no_final_answer)."""
    folder.mkdir(parents=True, exist_ok=True)
    a = [
        _retool_messages(
            "What is 3*4?", "The product is <answer>\\boxed{12}</answer>", {"code": "print(3*4)"}
        ),
        _retool_messages(
            "What is 10-3?", "So the result is <answer>7</answer>", {"code": "print(10-3)"}
        ),
    ]
    b = [
        _retool_messages(
            "Describe the number 12.", "It is a nice number.", json.dumps({"code": "print(12)"})
        )
    ]
    for name, rows in (("part-a", a), ("part-b", b)):
        pd.DataFrame([{"messages": m, "tools": RETOOL_TOOLS} for m in rows]).to_parquet(
            folder / f"{name}.parquet"
        )
    return folder


LEETCODE_PREFIX = "from typing import *\nfrom collections import *\n"


def _leetcode_row(task: str, description: str, method: str, test: str) -> dict:
    return {
        "task_id": task,
        "question_id": 1,
        "difficulty": "Easy",
        "tags": ["Math"],
        "problem_description": description,
        "starter_code": f"class Solution:\n    def {method}(self, a: int, b: int) -> int:\n        ",
        "estimated_date": "2015-08-07",
        "prompt": LEETCODE_PREFIX,
        "completion": "",
        "entry_point": f"Solution().{method}",
        "test": test,
        "input_output": [{"input": "a = 1, b = 2", "output": "3"}],
        "query": "",
        "response": "",
    }


def write_leetcode(path: Path) -> Path:
    """Two LeetCodeDataset rows (add-two, multiply-two) and one whose ``test`` has no
    assert (dropped: bad_tests)."""
    rows = [
        _leetcode_row(
            "add-two", "Return the sum of a and b.", "addTwo",
            "def check(candidate):\n    assert candidate(a = 1, b = 2) == 3\n    assert candidate(a = 5, b = 5) == 10\n",
        ),
        _leetcode_row(
            "multiply-two", "Return the product of a and b.", "multiplyTwo",
            "def check(candidate):\n    assert candidate(a = 2, b = 3) == 6\n",
        ),
        _leetcode_row("broken", "No tests here.", "broken", "def check(candidate):\n    pass\n"),
    ]  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def write_sources(root: Path) -> dict[str, str]:
    """All three sources under ``root``, as ``--source NAME=PATH`` values."""
    return {
        "s1k": str(write_s1k(root / "s1k" / "train.parquet")),
        "retool": str(write_retool(root / "retool")),
        "leetcode": str(write_leetcode(root / "leetcode" / "LeetCodeDataset-train.jsonl")),
    }


# --- a scripted teacher --------------------------------------------------------------------

END = "<|im_end|>"


def tool_turn(say: str, code: str) -> str:
    return f"{say}\n{render_tool_call('code_interpreter', {'code': code})}{END}"


def solution(method: str, op: str) -> str:
    return f"Done.\n```python\nclass Solution:\n    def {method}(self, a, b):\n        return a {op} b\n```{END}"


# problem text -> the turns the teacher plays (the tool answers the calls in between)
PLAYS: dict[str, list[str]] = {
    "Compute 6*7.": [
        tool_turn("Let me compute.", "print(6*7)"),
        f"So the answer is \\boxed{{42}}.{END}",
    ],
    "Compute 2+3.": [f"Surely \\boxed{{6}}.{END}"],  # wrong
    "What is 3*4?": [
        tool_turn("First a check.", "print(3*4)"),
        tool_turn("Again.", "print(4*3)"),
        f"\\boxed{{12}}{END}",
    ],
    "What is 10-3?": ["x" * 2000],  # runs out of tokens: length
    "Return the sum": [solution("addTwo", "+")],
    "Return the product": [solution("multiplyTwo", "-")],  # wrong
}


class ScriptedTeacher:
    """``script(prompt_text, turn)`` for ``ScriptedEngine``: the turns of ``PLAYS``; counts calls."""

    def __init__(self, plays: dict[str, list[str]] | None = None) -> None:
        self.plays = PLAYS if plays is None else plays
        self.calls = 0

    def __call__(self, prompt: str, turn: int) -> str:
        self.calls += 1
        user = prompt.split("<|im_start|>user\n", 1)[-1]
        for key, turns in self.plays.items():
            if key in user:
                return turns[min(turn, len(turns) - 1)]
        return f"I do not know.{END}"


class PrintTool:
    """A fake ``code_interpreter``: ``print(EXPR)`` of plain arithmetic, evaluated."""

    name = "code_interpreter"

    def run_many(self, arguments):
        out = []
        for args in arguments:
            code = str(args.get("code", "")) if isinstance(args, dict) else ""
            if code.startswith("print(") and code.endswith(")"):
                out.append(FakeOutcome(str(eval(code[6:-1], {"__builtins__": {}}))))
            else:
                out.append(FakeOutcome("Error", "error", True))
        return out
