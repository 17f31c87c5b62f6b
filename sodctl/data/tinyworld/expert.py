"""The scripted expert that writes the tiny world's SFT trajectories.

A trajectory is the paper's multi-turn tool use in miniature: the user prompt
(exactly as evaluation shows it), an assistant turn with a short plan and a
``code_interpreter`` call, the tool's observation, possibly more calls, and the
final answer (``\\boxed{}``, or a ```python block for code). Variants:

- ``direct``: one call that prints the key value, then the answer;
- ``two-calls``: the same, then a confirming call (``expr == value`` prints True;
  code runs the formula on a second test input);
- ``name-error``: a first call with a typo (``asn`` for ``ans``: NameError), then
  the corrected call;
- ``indent-trap``: a first call whose indented last line the paper print rule
  moves out of its block (IndentationError, REFERENCE §6), then a flat call;
- ``fault-retry``: the right call, which the environment fails (the tool's injected
  fault, run through a tool that always injects it), then the same call again. Only
  the teacher slots' SFT set shows it (``build.py``).

A share of trajectories (``PRIVILEGED_FRACTIONS``) shows the OPSD teacher's
prompt: the user turn ends with the reference solution or the hint
(``PRIVILEGED_LEADS``, exactly as the self-teacher reads it), and the opening
line uses it (``The reference gives 1234.``) before the same calls. A real model
can read what its prompt tells it; this teaches the tiny ones to.

Observations are never written by hand: every call runs through the real
``CodeInterpreter`` in paper print mode with the preset's limits. A trajectory
whose calls do not behave as scripted, or whose final answer the real grader
rejects, is dropped (and counted).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sodctl.data.prompting import PRIVILEGED_LEADS, privileged_messages
from sodctl.data.tinyworld.problems import TinyProblem, as_benchmark_problem
from sodctl.rewards import grade_many
from sodctl.tools.code_interpreter import TOOL_NAME, CodeInterpreter

Variant = Literal["direct", "two-calls", "name-error", "indent-trap", "fault-retry"]
RECOVERY_VARIANTS: tuple[Variant, ...] = ("name-error", "indent-trap")
Privileged = Literal["solution", "hint"] | None
PRIVILEGED_FRACTIONS: dict[str, float] = {"solution": 0.10, "hint": 0.05}

_OPENING = {
    "math": "Compute it.",
    "mcq": "Compute, then match.",
    "code": "Try the example.",
}


@dataclass(frozen=True)
class ScriptedCall:
    """One tool call: what the assistant says, the code, and the observation it must give
    (stripped), or None when the call must fail."""

    say: str
    code: str
    expect: str | None
    fault: bool = False  # run through a tool that injects its fault: the environment fails


def opening_line(p: TinyProblem, privileged: Privileged = None) -> str:
    """What the first assistant turn says before its call; it uses a privileged context."""
    if privileged == "solution":
        return "Use the reference." if p.kind == "code" else f"The reference gives {p.value}."
    if privileged == "hint":
        return "Use the hint."
    return _OPENING[p.kind]


def privileged_prompt(p: TinyProblem, prompt: str, privileged: Privileged) -> str:
    """The user turn as the OPSD self-teacher sees it (the prompt, then its lead)."""
    if privileged is None:
        return prompt
    text = p.solution if privileged == "solution" else p.hint
    user = [{"role": "user", "content": prompt}]
    return privileged_messages(user, text, PRIVILEGED_LEADS[privileged])[0]["content"]


def script(p: TinyProblem, variant: Variant, privileged: Privileged = None) -> list[ScriptedCall]:
    """The expert's tool calls for ``p`` in ``variant``."""
    opening = opening_line(p, privileged)
    answer = ScriptedCall(opening, p.tool_code(), p.value)
    if variant == "direct":
        return [answer]
    if variant == "two-calls":
        confirm = p.tests["outputs"][1].strip() if p.tests else "True"
        return [answer, ScriptedCall("Check it.", p.check, confirm)]
    if variant == "name-error":
        return [
            ScriptedCall(opening, p.tool_code(f"ans = {p.expr}\nasn"), None),
            ScriptedCall("Fix the typo.", p.tool_code(f"ans = {p.expr}\nans"), p.value),
        ]
    if variant == "indent-trap":
        return [
            ScriptedCall(opening, p.tool_code(f"if True:\n    {p.expr}"), None),
            ScriptedCall("Fix the indent.", p.tool_code(), p.value),
        ]
    if variant == "fault-retry":
        return [
            ScriptedCall(opening, p.tool_code(), None, fault=True),
            ScriptedCall("Run it again.", p.tool_code(), p.value),
        ]
    raise ValueError(f"unknown variant {variant!r}")


def final_answer(p: TinyProblem) -> str:
    """The last assistant turn: the boxed number, the boxed letter, or the program."""
    if p.kind == "code":
        return f"```python\n{p.program}\n```"
    if p.kind == "mcq":
        return f"Option ({p.answer}). \\boxed{{{p.answer}}}"
    return f"\\boxed{{{p.value}}}"


def tool_call(code: str) -> dict[str, Any]:
    """An OpenAI-format tool call, as the Open-AgentRL SFT set stores them."""
    return {"type": "function", "function": {"name": TOOL_NAME, "arguments": {"code": code}}}


@dataclass
class ExpertReport:
    rows: list[list[dict[str, Any]]]  # one message list per kept trajectory
    variants: Counter[str]  # of the kept ones
    dropped: Counter[str]  # reason -> count
    privileged: Counter[str] = field(default_factory=Counter)  # of the kept: solution/hint/none


def _run_calls(
    calls: Sequence[ScriptedCall], tool: CodeInterpreter, faulty: CodeInterpreter | None
) -> list:
    """Every call's outcome, in order: one concurrent batch per tool."""
    if any(c.fault for c in calls) and faulty is None:
        raise ValueError("a fault-retry script needs the faulty tool")
    by_tool = {False: tool, True: faulty}
    outcomes: list = [None] * len(calls)
    for fault, runner in by_tool.items():
        at = [i for i, c in enumerate(calls) if c.fault is fault]
        if at:
            for i, out in zip(at, runner.run_many([{"code": calls[i].code} for i in at])):
                outcomes[i] = out
    return outcomes


def write_trajectories(
    items: Sequence[tuple[TinyProblem, Variant, Privileged]],
    prompts: dict[str, str],
    tool: CodeInterpreter,
    faulty: CodeInterpreter | None = None,
) -> ExpertReport:
    """Run every scripted call (one concurrent batch per tool: ``faulty`` runs the calls the
    environment fails), check, grade; keep the good ones."""
    scripts = [script(p, v, priv) for p, v, priv in items]
    flat = [call for calls in scripts for call in calls]
    outcomes = iter(_run_calls(flat, tool, faulty))
    report = ExpertReport([], Counter(), Counter())
    candidates: list[tuple[int, list[dict[str, Any]], str]] = []
    for i, ((p, _variant, priv), calls) in enumerate(zip(items, scripts)):
        bench_problem = as_benchmark_problem(p, prompts)
        user = privileged_prompt(p, bench_problem.prompt, priv)
        messages: list[dict[str, Any]] = [{"role": "user", "content": user}]
        ok = True
        for call in calls:
            out = next(outcomes)
            seen = out.observation.strip()
            if (call.expect is None) != out.erroneous or (call.expect not in (None, seen)):
                ok = False
            messages.append(
                {"role": "assistant", "content": call.say, "tool_calls": [tool_call(call.code)]}
            )
            messages.append({"role": "tool", "content": out.observation})
        if not ok:
            report.dropped["tool output not as scripted"] += 1
            continue
        messages.append({"role": "assistant", "content": final_answer(p)})
        candidates.append((i, messages, bench_problem.ground_truth))
    grades = grade_many(
        [m[-1]["content"] for _, m, _ in candidates],
        [gt for _, _, gt in candidates],
        kind=[items[i][0].kind for i, _, _ in candidates],
        grader="strict",
        executor=tool.executor,
    )
    for (i, messages, _), g in zip(candidates, grades):
        if not g.correct:
            report.dropped["final answer graded wrong"] += 1
            continue
        report.rows.append(messages)
        report.variants[items[i][1]] += 1
        report.privileged[items[i][2] or "none"] += 1
    return report


def tools_column() -> str:
    """The SFT set's ``tools`` cell: the JSON list of tool schemas."""
    from sodctl.tools.code_interpreter import CODE_INTERPRETER_SCHEMA

    return json.dumps([CODE_INTERPRETER_SCHEMA])
