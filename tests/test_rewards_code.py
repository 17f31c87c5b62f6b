"""Code grading: extraction, test specs, output comparison, and real runs on a local executor."""

from __future__ import annotations

import json

import pytest

from sodctl.rewards import (
    compute_score,
    extract_code_block,
    grade,
    grade_many,
    parse_tests,
    training_reward,
)
from sodctl.rewards._harness import outputs_match, values_match
from sodctl.tools import ExecResult, LocalExecutor

ADD = json.dumps({"inputs": ["1 2\n", "3 4\n", "10 -5\n"], "outputs": ["3\n", "7\n", "5\n"]})
FUNC = json.dumps(  # the second input ends in a newline: blank lines are not arguments
    {"inputs": ["[1, 2, 3]\n2", "[5]\n0\n"], "outputs": ["[3, 4, 5]", "[5]"], "fn_name": "addAll"}
)


def block(code: str) -> str:
    return f"<think>let me think</think>Here is my solution:\n```python\n{code}\n```\n"


RIGHT = block("a, b = map(int, input().split())\nprint(a + b)")
HALF = block("a, b = map(int, input().split())\nprint(a + b if a < 5 else 0)")


@pytest.fixture(scope="module")
def ex():
    with LocalExecutor(2) as executor:
        yield executor


# --- pure parts (no executor) ----------------------------------------------------------------


@pytest.mark.unit
def test_extract_code_block():
    assert extract_code_block(block("print(1)")) == "print(1)\n"
    two = "```python\nprint(1)\n```\nbetter:\n```python\nprint(2)\n```"
    assert extract_code_block(two) == "print(2)\n"  # the last block
    # after the last </think>; tool calls and tool responses are not the answer
    text = (
        "<think>```python\nprint(0)\n```</think><tool_call>{}</tool_call>"
        "<tool_response>```python\nprint(9)\n```</tool_response><think>ok</think>"
        "final:\n```py\nprint(3)\n```"
    )
    assert extract_code_block(text) == "print(3)\n"
    assert extract_code_block("<think>```python\nprint(0)\n```</think> no code") is None
    assert extract_code_block("```python\nprint(1)") is None  # never closed
    assert extract_code_block("```\nprint(1)\n```") is None  # not tagged python


@pytest.mark.unit
def test_parse_tests_shapes():
    cases = parse_tests(ADD)
    assert len(cases) == 3 and not cases[0].functional and cases[0].input == "1 2\n"
    cases = parse_tests(FUNC)
    assert all(c.functional and c.fn_name == "addAll" for c in cases)
    as_strings = {"inputs": json.dumps(["1 2\n"]), "outputs": json.dumps(["3\n"])}
    assert parse_tests(as_strings)[0].output == "3\n"
    listed = [
        {"input": "1 2\n", "output": "3\n", "testtype": "stdin"},
        {"input": "[1]\n1", "output": "[2]", "testtype": "functional", "fn_name": "addAll"},
    ]
    cases = parse_tests(json.dumps(listed))
    assert [c.functional for c in cases] == [False, True]
    wrapped = {"tests": [{"input": "[1]\n1", "output": "[2]", "testtype": "functional"}]}
    assert parse_tests({**wrapped, "fn_name": "addAll"})[0].fn_name == "addAll"
    for bad, match in [
        ("not json", "not valid JSON"),
        ({"inputs": ["1"], "outputs": []}, "1 inputs but 0 outputs"),
        ({"inputs": [], "outputs": []}, "no test cases"),
        ({"import_prefix": "x"}, "without 'test_code'"),
        ({"cases": []}, "unrecognised"),
        (wrapped, "function name"),
    ]:
        with pytest.raises(ValueError, match=match):
            parse_tests(bad)


@pytest.mark.unit
@pytest.mark.parametrize(
    ("got", "expected", "tol", "ok"),
    [
        ("3\n", "3", 0.0, True),
        ("  3  \n\n", "3\n", 0.0, True),  # whitespace around lines and the whole output
        ("1 2\n3 4\n", "1 2\n3 4", 0.0, True),
        ("1.50 2", "1.5 2.0", 0.0, True),  # numbers compare as numbers (LiveCodeBench's Decimal)
        ("1e3", "1000", 0.0, True),
        ("0.3333333", "0.33333333", 0.0, False),  # LiveCodeBench: no tolerance
        ("0.3333333", "0.33333333", 1e-6, True),  # an explicit tolerance accepts it
        ("1000001", "1000000", 1e-6, True),  # relative: |a - b| <= tol * max(1, |b|)
        ("1000003", "1000000", 1e-6, False),
        ("3 4", "3", 0.0, False),  # token counts differ
        ("Yes  5", "Yes 5", 0.0, False),  # not all numbers: text must match exactly
        ("3\n4", "3", 0.0, False),  # line counts differ
        ("nan", "1", 1e-6, False),  # not finite: no tolerance
    ],
)
def test_lcb_output_comparison(got, expected, tol, ok):
    assert outputs_match(got, expected, "lcb", tol)[0] is ok


@pytest.mark.unit
def test_released_output_comparison_and_values():
    assert outputs_match("3\n\n", "3", "released")[0]
    assert not outputs_match(" 3\n", "3", "released")[0]  # only trailing newlines go
    assert not outputs_match("1.50", "1.5", "released")[0]
    assert values_match((1, (2, 3)), "[1, [2, 3]]")[0]  # tuples are lists, at every depth
    assert values_match(2.0, "2")[0]
    ok, why = values_match({1, 2}, "[1, 2]")
    assert not ok and "JSON" in why


# --- real runs ---------------------------------------------------------------------------------


@pytest.mark.integration
def test_right_wrong_crash_and_missing_code(ex):
    responses = [
        RIGHT,
        HALF,
        block("a, b = map(int, input().split())\nprint(a * b)"),
        block("raise ValueError('boom')"),
        "I cannot write the code.",
        block("def f(:\n    pass"),
        block("import sys\na, b = map(int, open(0).read().split())\nprint(a + b)\nsys.exit(0)"),
    ]
    rs = grade_many(responses, [ADD] * len(responses), kind="code", executor=ex)
    assert [(r.correct, round(r.score, 3)) for r in rs] == [
        (True, 1.0),
        (False, 0.667),
        (False, 0.0),
        (False, 0.0),
        (False, 0.0),
        (False, 0.0),
        (True, 1.0),  # open(0) reads the test input; exit() ends the program normally
    ]
    assert rs[0].pred == "a, b = map(int, input().split())\nprint(a + b)\n"
    assert rs[1].detail.startswith("2/3 tests passed; test 3: output '0' != expected '5'")
    assert "runtime error: ValueError: boom" in rs[3].detail
    assert rs[4].pred is None and "no ```python block" in rs[4].detail
    assert rs[5].pred is None and "syntax error" in rs[5].detail


@pytest.mark.integration
def test_timeout_and_large_output(ex):
    r = grade(block("while True:\n    pass"), ADD, kind="code", executor=ex, timeout_s=1)
    assert (r.correct, r.score) == (False, 0.0) and "timeout (> 1 s)" in r.detail
    # 1.3 MB of output: beyond the executor's output cap, checked inside the sandbox
    n = 200_000
    spec = {"inputs": [f"{n}\n"], "outputs": ["\n".join(map(str, range(n)))]}
    r = grade(
        block("print('\\n'.join(map(str, range(int(input())))))"), spec, kind="code", executor=ex
    )
    assert r.correct, r.detail


@pytest.mark.integration
def test_functional_tests(ex):
    method = block(
        "class Solution:\n"
        "    def addAll(self, nums: List[int], k: int) -> List[int]:\n"
        "        print('debugging output is ignored')\n"
        "        return tuple(x + k for x in nums)"
    )
    plain = block("def addAll(nums, k):\n    return [x + k for x in nums]")
    wrong = block("class Solution:\n    def addAll(self, nums, k):\n        return nums")
    missing = block("def other(nums, k):\n    return nums")
    rs = grade_many([method, plain, wrong, missing], [FUNC] * 4, kind="code", executor=ex)
    assert [(r.correct, r.score) for r in rs] == [
        (True, 1.0),
        (True, 1.0),
        (False, 0.5),
        (False, 0.0),
    ]
    assert "returned [1, 2, 3] != expected [3, 4, 5]" in rs[2].detail
    assert rs[3].pred is None and "no class Solution" in rs[3].detail


@pytest.mark.integration
def test_numeric_tolerance_and_released_comparison_on_real_runs(ex):
    spec = {"inputs": [""], "outputs": ["0.33333333\n"]}
    code = block("print(round(1 / 3, 7))")
    assert not grade(code, spec, kind="code", executor=ex, compare="lcb").correct
    assert grade(code, spec, kind="code", executor=ex, compare="lcb", number_tol=1e-6).correct
    with pytest.raises(ValueError, match="number_tol"):  # no numbers in the released rule
        grade(code, spec, kind="code", executor=ex, number_tol=1e-6)
    spec = {"inputs": [""], "outputs": ["1.5 2\n"]}
    assert grade(block("print('1.50 2')"), spec, kind="code", executor=ex, compare="lcb").correct
    assert not grade(block("print('1.50 2')"), spec, kind="code", executor=ex).correct


class _FakeExecutor:
    """Records what a grader sends; answers every call with one fixed result."""

    def __init__(self, result: ExecResult) -> None:
        self.result, self.batches = result, []

    def execute(self, code, **kw):  # pragma: no cover - the graders use execute_many
        raise AssertionError("graders batch through execute_many")

    def execute_many(self, codes, **kw):
        self.batches.append((list(codes), kw))
        return [self.result] * len(codes)

    def close(self):
        pass


@pytest.mark.unit
def test_one_batch_for_all_tests_and_executor_failures():
    fake = _FakeExecutor(ExecResult("sandbox_error", stderr="worker died"))
    rs = grade_many([RIGHT, RIGHT], [ADD, FUNC.replace("addAll", "f")], kind="code", executor=fake)
    assert len(fake.batches) == 1 and len(fake.batches[0][0]) == 3  # 3 tests; 2nd: no f
    assert fake.batches[0][1] == {"timeout_s": 30.0, "memory_mb": 1024}  # the defaults
    assert rs[0].score == 0.0 and "sandbox error: worker died" in rs[0].detail
    fake = _FakeExecutor(ExecResult("ok", stdout="forged verdict without the nonce"))
    assert (
        "crashed before its output was checked"
        in grade(RIGHT, ADD, kind="code", executor=fake).detail
    )


@pytest.mark.integration
def test_code_training_reward_and_compute_score(ex):
    def reward(response, turns=4):
        r = training_reward(
            response, ADD, kind="code", num_turns=turns, response_tokens=10, executor=ex,
            tool_shaping="num-turns",
        )  # fmt: skip
        return r.reward

    assert reward(RIGHT) == 1.0
    assert reward(HALF) == pytest.approx(2 / 3)  # fractions are kept, never shaped
    assert reward(block("print(0)")) == 0.0  # runs, fails every test: 0, not -1
    assert reward("no code") == pytest.approx(-0.9)  # -1, then the tool-turn shaping
    assert reward(block("def f(:")) == pytest.approx(-0.9)
    binary = training_reward(
        HALF, ADD, kind="code", num_turns=4, response_tokens=10, executor=ex, code_reward="binary",
        tool_shaping="num-turns",
    )  # fmt: skip
    assert binary.reward == pytest.approx(-0.9) and binary.score == pytest.approx(2 / 3)
    # the released shaping: no code at all is -1.1 whatever the turns
    assert training_reward(
        "no code", ADD, kind="code", num_turns=8, response_tokens=10, executor=ex
    ).reward == pytest.approx(-1.1)
    # verl: LiveCodeBench rows carry their tests (already decoded) and maybe the function name
    listed = [{"input": "[1, 2, 3]\n2", "output": "[3, 4, 5]", "testtype": "functional"}]
    plain = block("def addAll(nums, k):\n    return [x + k for x in nums]")
    out = compute_score("LiveCodeBench_v6", plain, listed, {"num_turns": 2, "fn_name": "addAll"})
    assert (out["score"], out["acc"]) == (1.0, True) and out["pred"].startswith("def addAll")
