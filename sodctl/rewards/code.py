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
* ``{"import_prefix": str, "test_code": str, "entry_point": str}`` (LeetCode-shaped:
  Skywork-OR1's ``train-code-leetcode-*`` rows, LeetCodeDataset). ``test_code`` is a
  ``def check(candidate):`` line followed by one ``assert`` line per test; ``entry_point``
  is what ``check`` is called with (``Solution().twoSum``); ``import_prefix`` may be
  absent or None (no prefix). Graded as the released scorer graded it, see below.

Anything else, an empty list of cases, or a LeetCode spec without ``test_code`` /
``entry_point`` or without an ``assert`` line is a ``ValueError`` (a data error, not the
model's).

Decisions where the reference is silent:

- The submission is the *last* fenced block tagged ``python`` (also ``python3``/``py``,
  any case) in the text after the last ``</think>``, with tool calls and tool
  responses (``<tool_call>...</tool_call>``, ``<tool_response>...</tool_response>``) cut
  out first. The released code took the text after the *first* ``</think>`` (up to the
  second), which misses the final answer of a multi-turn trajectory with thinking in
  every turn, and accepted only the exact tag ``python``.
- ``unescape=True`` reproduces a step of the released scorer: before the program is
  parsed it turns every two-character ``\\n`` into a newline and every ``\\t`` into a
  tab (meant for models that escape their line breaks). That also rewrites escapes
  inside string literals: ``print("a\\nb")`` then splits its literal across two lines,
  no longer parses, and scores as no runnable code. It is a bug, so the default is
  False; ``pred`` is the program as run (unescaped when asked).
- No block, a program that does not compile, or (functional tests) neither a class
  ``Solution`` nor a top-level function of that name: score 0, ``pred`` None (as the
  released reward, which gave these -1 and ``pred`` None), ``detail`` says which.
- stdin/stdout and functional tests: every test is one executor call, the program plus
  the harness of ``_harness.py``, which puts the input on fd 0, captures fd 1, checks the
  answer inside the sandbox and prints only a verdict. ``exit()`` counts as a normal end
  (as in LiveCodeBench).
- LeetCode-shaped tests: ``test_code`` is split on ``"\\n"`` and the empty lines dropped;
  every line after the first is one test, whose program is ``assert_test_program``'s
  (the prefix, the solution, the ``def check`` line and that line joined without a line
  break - a one-line function - and the call of ``check``). A test passes iff its program
  exits with status 0: a failed assert, an exception, a timeout all fail it. As released,
  a line after the first that is not a statement (a comment, half of a multi-line assert)
  is a test nobody passes, and an ``exit(0)`` in the solution passes everything. No
  harness and no prelude: the prefix is all the program gets. The entry-point check of
  the functional tests does not apply.
- The tests of a whole batch, of every shape, go to ``executor.execute_many`` together;
  nothing stops early.
- Per-test limits as the released scorer's sandbox calls: 30 s (``CODE_TIMEOUT_S``) and
  1,024 MB (``CODE_MEMORY_MB``). The local executor caps files at 16 MB, so test inputs
  and outputs must stay below that.
- stdout comparison ``compare="released"`` (default: equal after ``rstrip("\\n")`` of
  both, the released scorer's rule) or ``"lcb"`` (LiveCodeBench's), ``number_tol`` for
  the numbers of ``lcb`` (``ValueError`` with ``released``): see ``_harness.py``.
  LiveCodeBench's own rule has no tolerance; the default ``number_tol=0`` reproduces it.
  Functional tests always compare the decoded values (the released reward compared the
  printed return value as text).
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

Compare = Literal["released", "lcb"]
COMPARES: tuple[str, ...] = ("released", "lcb")
CODE_TIMEOUT_S = 30.0  # per test case, as the released scorer's sandbox calls
CODE_MEMORY_MB = 1024
_LEETCODE_KEYS = ("import_prefix", "test_code", "entry_point")
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


@dataclass(frozen=True)
class AssertCase:
    """One test of a LeetCode-shaped spec; its program is ``assert_test_program``'s."""

    import_prefix: str  # put before the solution ("" for none)
    check_line: str  # the first non-empty line of test_code: ``def check(candidate):``
    assert_line: str  # one later line, usually ``    assert candidate(...) == ...``
    entry_point: str  # the argument of ``check``, e.g. ``Solution().twoSum``


def extract_code_block(response: str) -> str | None:
    """The last ```python block of the final answer (see the module docstring), or None."""
    answer = _NOT_ANSWER.sub("", response.rsplit("</think>", 1)[-1])
    blocks = _FENCE.findall(answer)
    return blocks[-1] if blocks else None


def _maybe_json(value: Any) -> Any:
    if isinstance(value, str | bytes):
        return json.loads(value)
    return value


def unescape_code(code: str) -> str:
    """The released scorer's rewrite (``unescape=True``): each two-character ``\\n`` becomes
    a newline, then each ``\\t`` a tab, wherever they stand, string literals included."""
    return code.replace("\\n", "\n").replace("\\t", "\t")


def parse_tests(
    spec: str | Mapping[str, Any] | Sequence[Any],
) -> tuple[CodeCase | AssertCase, ...]:
    """The test cases of a tests spec (shapes in the module docstring)."""
    try:
        spec = _maybe_json(spec)
    except ValueError as e:
        raise ValueError(f"the code ground truth is not valid JSON: {e}") from e
    if (
        isinstance(spec, Mapping)
        and any(k in spec for k in _LEETCODE_KEYS)
        and not ("inputs" in spec or "tests" in spec)
    ):
        return _leetcode_cases(spec)
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
            "'fn_name'?}, a list of {'input', 'output', 'testtype'} cases or "
            "{'import_prefix', 'test_code', 'entry_point'}"
        )
    if not cases:
        raise ValueError("tests spec has no test cases")
    return cases


def _leetcode_cases(spec: Mapping[str, Any]) -> tuple[AssertCase, ...]:
    for key in ("test_code", "entry_point"):
        if spec.get(key) is None:
            raise ValueError(f"LeetCode tests spec without {key!r}: keys {sorted(spec)}")
        if not isinstance(spec[key], str):
            raise ValueError(f"LeetCode tests spec: {key!r} must be a string")
    prefix = spec.get("import_prefix")
    if prefix is not None and not isinstance(prefix, str):
        raise ValueError("LeetCode tests spec: 'import_prefix' must be a string or None")
    entry_point = spec["entry_point"].strip()
    if not entry_point:
        raise ValueError("LeetCode tests spec: 'entry_point' is empty")
    lines = [line for line in spec["test_code"].split("\n") if line != ""]
    if not lines or not lines[0].lstrip().startswith("def check("):
        raise ValueError("LeetCode tests spec: 'test_code' does not start with 'def check('")
    if not any(line.lstrip().startswith("assert") for line in lines[1:]):
        raise ValueError("LeetCode tests spec: 'test_code' has no assert line (no tests)")
    return tuple(AssertCase(prefix or "", lines[0], line, entry_point) for line in lines[1:])


def assert_test_program(code: str, case: AssertCase) -> str:
    """The program of one LeetCode-shaped test, as the released scorer built it: prefix and
    solution, a line break, the ``def check`` line and the test line with nothing between
    them, a line break and ``check(entry_point)`` (no final line break)."""
    check = case.check_line + case.assert_line
    return f"{case.import_prefix}{code}\n{check}\ncheck({case.entry_point})"


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


def _static_problem(code: str, cases: tuple[CodeCase | AssertCase, ...]) -> str | None:
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
    functional = {c.fn_name for c in cases if isinstance(c, CodeCase) and c.functional}
    for fn in sorted(fn for fn in functional if fn):
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


def _limit_failure(result: ExecResult, timeout_s: float) -> str | None:
    """Why a run failed when the executor ended it (limits, its own failure), or None."""
    if result.status == "timeout":
        return f"timeout (> {timeout_s:g} s)"
    if result.status == "memory":
        return "memory limit exceeded"
    if result.status == "sandbox_error":
        return "sandbox error: " + (result.stderr.strip().splitlines() or ["?"])[-1]
    return None


def _last_error_line(result: ExecResult) -> str:
    return (result.stderr.strip().splitlines() or [f"exit status {result.exit_code}"])[-1][:200]


def _verdict(result: ExecResult, tag: str, timeout_s: float) -> tuple[bool, str]:
    at = result.stdout.find(tag)
    if at >= 0:
        line = result.stdout[at + len(tag) :].split("\n", 1)[0]
        try:
            verdict = json.loads(line)
            return bool(verdict["passed"]), str(verdict.get("reason", ""))
        except (ValueError, KeyError, TypeError):
            return False, "unreadable verdict"
    why = _limit_failure(result, timeout_s)
    if why is not None:
        return False, why
    return False, f"crashed before its output was checked: {_last_error_line(result)}"


def _exit_verdict(result: ExecResult, timeout_s: float) -> tuple[bool, str]:
    """A LeetCode-shaped test: passed iff its program exited with status 0."""
    if result.status == "ok":
        return True, ""
    why = _limit_failure(result, timeout_s)
    return False, why if why is not None else f"failed: {_last_error_line(result)}"


def grade_code_many(
    responses: Sequence[str],
    ground_truths: Sequence[str | Mapping[str, Any] | Sequence[Any]],
    *,
    executor: Executor | None = None,
    timeout_s: float = CODE_TIMEOUT_S,
    memory_mb: int = CODE_MEMORY_MB,
    compare: Compare = "released",
    number_tol: float = 0.0,
    unescape: bool = False,
) -> list[GradeResult]:
    """Grade code answers; every test of every answer runs in one ``execute_many`` batch
    (options in the module docstring)."""
    if compare not in COMPARES:
        raise ValueError(f"unknown compare {compare!r}; choose {' or '.join(COMPARES)}")
    if number_tol and compare != "lcb":
        raise ValueError("number_tol applies to compare='lcb' only")
    if len(responses) != len(ground_truths):
        raise ValueError(f"{len(responses)} responses but {len(ground_truths)} ground truths")
    cases_per = []  # data errors before any run, naming the row
    for k, gt in enumerate(ground_truths):
        try:
            cases_per.append(parse_tests(gt))
        except ValueError as e:
            raise ValueError(f"code ground truth {k} of the batch: {e}") from e
    results: list[GradeResult | None] = [None] * len(responses)
    programs: list[str] = []
    owners: list[tuple[int, str | None]] = []  # (response index, tag or None) per program
    codes: list[str | None] = []
    for i, (response, cases) in enumerate(zip(responses, cases_per)):
        code = extract_code_block(response)
        if code is not None and unescape:
            code = unescape_code(code)
        codes.append(code)
        if code is None:
            results[i] = GradeResult(False, 0.0, None, "no ```python block in the final answer")
            continue
        problem = _static_problem(code, cases)
        if problem is not None:
            results[i] = GradeResult(False, 0.0, None, problem)
            continue
        for case in cases:
            if isinstance(case, AssertCase):
                programs.append(assert_test_program(code, case))
                owners.append((i, None))
                continue
            tag = f"@@sodctl-verdict-{secrets.token_hex(8)}@@"
            programs.append(_test_program(code, case, tag, compare, number_tol))
            owners.append((i, tag))
    if programs:
        runner = executor if executor is not None else get_executor("local")
        outcomes = runner.execute_many(programs, timeout_s=timeout_s, memory_mb=memory_mb)
        verdicts: dict[int, list[tuple[bool, str]]] = {}
        for (i, tag), outcome in zip(owners, outcomes):
            verdict = (
                _exit_verdict(outcome, timeout_s)
                if tag is None
                else _verdict(outcome, tag, timeout_s)
            )
            verdicts.setdefault(i, []).append(verdict)
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
