"""Code answers: extract the submitted program, run its tests on a tool executor, score.

The ground truth is a tests spec, as a JSON string or already decoded. Accepted shapes:

* ``{"inputs": [...], "outputs": [...], "fn_name": "name"}`` (LiveCodeBench / TACO /
  the RL set; ``fn_name`` optional). Without ``fn_name`` every case is a stdin/stdout
  test: the input is the program's stdin, the output its expected stdout. With it every
  case is functional: the input holds the arguments, one JSON value per line (or is
  already a list of them), the output is the JSON-encoded return value (or the value).
  ``inputs`` / ``outputs`` may themselves be JSON strings of those lists.
* ``[{"input": ..., "output": ..., "testtype": "stdin" | "functional"}, ...]`` (the
  LiveCodeBench release's test lists; ``testtype`` defaults to stdin). Functional cases
  need the function name: ``"fn_name"`` (or ``"func_name"``) in the case, or the list
  wrapped as ``{"tests": [...], "fn_name": "name"}``.

Anything else, or an empty list of cases, is a ``ValueError`` (a data error, not the
model's).

Decisions where the reference is silent:

- The submission is the *last* fenced block tagged ``python`` (also ``python3``/``py``,
  any case) in the text after the last ``</think>``, with tool calls and tool
  responses (``<tool_call>...</tool_call>``, ``<tool_response>...</tool_response>``) cut
  out first. The released code took the text after the *first* ``</think>`` (up to the
  second), which misses the final answer of a multi-turn trajectory with thinking in
  every turn, and accepted only the exact tag ``python``.
- No block, a program that does not compile, or (functional tests) neither a class
  ``Solution`` nor a top-level function of that name: score 0, ``pred`` None (as the
  released reward, which gave these -1 and ``pred`` None), ``detail`` says which.
- Every test is one executor call: the program plus the harness of ``_harness.py``, which
  puts the input on fd 0, captures fd 1, checks the answer inside the sandbox and prints
  only a verdict. ``exit()`` counts as a normal end (as in LiveCodeBench). The tests of a
  whole batch go to ``executor.execute_many`` together; nothing stops early.
- Per-test timeout 6 s by default (LiveCodeBench's); memory 2,048 MB (the paper's sandbox).
  The local executor caps files at 16 MB, so test inputs and outputs must stay below that.
- stdout comparison ``compare="lcb"`` (default) or ``"released"``, ``number_tol`` for the
  numbers: see ``_harness.py``. LiveCodeBench's own rule has no tolerance; the default
  ``number_tol=0`` reproduces it. Functional tests always compare the decoded values (the
  released reward compared the printed return value as text).
"""

from __future__ import annotations

import ast
import inspect
import json
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sodctl.rewards import _harness
from sodctl.rewards.result import GradeResult
from sodctl.tools.executors import Executor, get_executor
from sodctl.tools.result import ExecResult

Compare = Literal["lcb", "released"]
CODE_TIMEOUT_S = 6.0
CODE_MEMORY_MB = 2048
_HARNESS_SOURCE = inspect.getsource(_harness)
_FENCE = re.compile(r"```(?:python3|python|py)[ \t]*\r?\n(.*?)```", re.DOTALL | re.IGNORECASE)
_NOT_ANSWER = re.compile(
    r"<tool_call>.*?</tool_call>|<tool_response>.*?</tool_response>", re.DOTALL
)
_MAX_FAILURES_SHOWN = 3


@dataclass(frozen=True)
class CodeCase:
    input: Any  # stdin text; for functional tests JSON lines (str) or the argument list
    output: Any  # expected stdout text; for functional tests JSON text or the value
    functional: bool = False
    fn_name: str | None = None


def extract_code_block(response: str) -> str | None:
    """The last ```python block of the final answer (see the module docstring), or None."""
    answer = _NOT_ANSWER.sub("", response.rsplit("</think>", 1)[-1])
    blocks = _FENCE.findall(answer)
    return blocks[-1] if blocks else None


def _maybe_json(value: Any) -> Any:
    if isinstance(value, str | bytes):
        return json.loads(value)
    return value


def parse_tests(spec: str | Mapping[str, Any] | Sequence[Any]) -> tuple[CodeCase, ...]:
    """The test cases of a tests spec (shapes in the module docstring)."""
    try:
        spec = _maybe_json(spec)
    except ValueError as e:
        raise ValueError(f"the code ground truth is not valid JSON: {e}") from e
    fn_name: str | None = None
    if isinstance(spec, Mapping) and "tests" in spec:
        fn_name = spec.get("fn_name") or spec.get("func_name") or None
        spec = spec["tests"]
    if isinstance(spec, Mapping) and "inputs" in spec and "outputs" in spec:
        inputs, outputs = _maybe_json(spec["inputs"]), _maybe_json(spec["outputs"])
        fn_name = spec.get("fn_name") or None
        if not isinstance(inputs, list) or not isinstance(outputs, list):
            raise ValueError("tests spec: 'inputs' and 'outputs' must be lists")
        if len(inputs) != len(outputs):
            raise ValueError(f"tests spec: {len(inputs)} inputs but {len(outputs)} outputs")
        cases = tuple(
            CodeCase(i, o, functional=fn_name is not None, fn_name=fn_name)
            for i, o in zip(inputs, outputs)
        )
    elif isinstance(spec, list) and all(isinstance(c, Mapping) for c in spec):
        cases = tuple(_list_case(c, fn_name) for c in spec)
    else:
        raise ValueError(
            "unrecognised tests spec: expected {'inputs': [...], 'outputs': [...], "
            "'fn_name'?} or a list of {'input', 'output', 'testtype'} cases"
        )
    if not cases:
        raise ValueError("tests spec has no test cases")
    return cases


def _list_case(case: Mapping[str, Any], fn_name: str | None) -> CodeCase:
    if "input" not in case or "output" not in case:
        raise ValueError(f"test case without 'input'/'output': keys {sorted(case)}")
    testtype = case.get("testtype", "stdin")
    if testtype not in ("stdin", "functional"):
        raise ValueError(f"unknown testtype {testtype!r} (stdin or functional)")
    name = case.get("fn_name") or case.get("func_name") or fn_name
    if testtype == "functional" and not name:
        raise ValueError(
            "functional test case without a function name: add 'fn_name' to the case or "
            "wrap the list as {'tests': [...], 'fn_name': ...}"
        )
    return CodeCase(case["input"], case["output"], testtype == "functional", name)


def _static_problem(code: str, cases: tuple[CodeCase, ...]) -> str | None:
    """Why ``code`` cannot be run against ``cases`` at all, or None."""
    try:
        tree = ast.parse(code)
        compile(tree, "<solution>", "exec", dont_inherit=True)
    except SyntaxError as e:
        return f"syntax error: {e.msg} (line {e.lineno})"
    except (ValueError, RecursionError, MemoryError) as e:
        return f"the code does not compile: {type(e).__name__}: {e}"
    names = {n.name for n in tree.body if isinstance(n, ast.ClassDef)}
    names |= {n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
    names |= {
        t.id
        for n in tree.body
        if isinstance(n, ast.Assign)
        for t in n.targets
        if isinstance(t, ast.Name)
    }
    for fn in sorted({c.fn_name for c in cases if c.functional and c.fn_name}):
        if "Solution" not in names and fn not in names:
            return f"no class Solution and no function {fn!r} for the functional tests"
    return None


def _test_program(code: str, case: CodeCase, tag: str, compare: Compare, number_tol: float) -> str:
    if case.functional:
        call = f"run_functional_test({code!r}, {case.fn_name!r}, {case.input!r}, {case.output!r}, {tag!r})"
    else:
        stdin = case.input if isinstance(case.input, str) else "\n".join(map(str, case.input))
        expected = case.output if isinstance(case.output, str) else str(case.output)
        call = f"run_stdin_test({code!r}, {stdin!r}, {expected!r}, {compare!r}, {number_tol!r}, {tag!r})"
    return f"{_HARNESS_SOURCE}\n{call}\n"


def _verdict(result: ExecResult, tag: str, timeout_s: float) -> tuple[bool, str]:
    at = result.stdout.find(tag)
    if at >= 0:
        line = result.stdout[at + len(tag) :].split("\n", 1)[0]
        try:
            verdict = json.loads(line)
            return bool(verdict["passed"]), str(verdict.get("reason", ""))
        except (ValueError, KeyError, TypeError):
            return False, "unreadable verdict"
    if result.status == "timeout":
        return False, f"timeout (> {timeout_s:g} s)"
    if result.status == "memory":
        return False, "memory limit exceeded"
    if result.status == "sandbox_error":
        return False, "sandbox error: " + (result.stderr.strip().splitlines() or ["?"])[-1]
    last = (result.stderr.strip().splitlines() or [f"exit status {result.exit_code}"])[-1]
    return False, f"crashed before its output was checked: {last[:200]}"


def grade_code_many(
    responses: Sequence[str],
    ground_truths: Sequence[str | Mapping[str, Any] | Sequence[Any]],
    *,
    executor: Executor | None = None,
    timeout_s: float = CODE_TIMEOUT_S,
    memory_mb: int = CODE_MEMORY_MB,
    compare: Compare = "lcb",
    number_tol: float = 0.0,
) -> list[GradeResult]:
    """Grade code answers; every test of every answer runs in one ``execute_many`` batch."""
    if compare not in ("lcb", "released"):
        raise ValueError(f"unknown compare {compare!r}; choose lcb or released")
    if len(responses) != len(ground_truths):
        raise ValueError(f"{len(responses)} responses but {len(ground_truths)} ground truths")
    cases_per = [parse_tests(gt) for gt in ground_truths]  # data errors before any run
    results: list[GradeResult | None] = [None] * len(responses)
    programs: list[str] = []
    owners: list[tuple[int, str]] = []  # (response index, tag) per program
    codes: list[str | None] = []
    for i, (response, cases) in enumerate(zip(responses, cases_per)):
        code = extract_code_block(response)
        codes.append(code)
        if code is None:
            results[i] = GradeResult(False, 0.0, None, "no ```python block in the final answer")
            continue
        problem = _static_problem(code, cases)
        if problem is not None:
            results[i] = GradeResult(False, 0.0, None, problem)
            continue
        for case in cases:
            tag = f"@@sodctl-verdict-{secrets.token_hex(8)}@@"
            programs.append(_test_program(code, case, tag, compare, number_tol))
            owners.append((i, tag))
    if programs:
        runner = executor if executor is not None else get_executor("local")
        outcomes = runner.execute_many(programs, timeout_s=timeout_s, memory_mb=memory_mb)
        verdicts: dict[int, list[tuple[bool, str]]] = {}
        for (i, tag), outcome in zip(owners, outcomes):
            verdicts.setdefault(i, []).append(_verdict(outcome, tag, timeout_s))
        for i, per_test in verdicts.items():
            results[i] = _summarise(codes[i], per_test)
    return [r for r in results if r is not None]


def _summarise(code: str | None, per_test: list[tuple[bool, str]]) -> GradeResult:
    passed = sum(ok for ok, _ in per_test)
    n = len(per_test)
    failures = [f"test {k + 1}: {why}" for k, (ok, why) in enumerate(per_test) if not ok]
    detail = f"{passed}/{n} tests passed"
    if failures:
        shown = "; ".join(failures[:_MAX_FAILURES_SHOWN])
        more = len(failures) - _MAX_FAILURES_SHOWN
        detail += f"; {shown}" + (f"; and {more} more" if more > 0 else "")
    return GradeResult(passed == n, passed / n, code, detail)
