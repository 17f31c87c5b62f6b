"""The code grader against the released scorer: comparison default, limits, the unescape
option and LeetCode-shaped (``import_prefix`` / ``test_code`` / ``entry_point``) tests."""

from __future__ import annotations

import inspect
import json

import pytest
from test_rewards_code import _FakeExecutor

from sodctl.rewards import compute_score, grade, grade_many, outcome_reward, parse_tests
from sodctl.rewards.code import (
    CODE_MEMORY_MB,
    CODE_TIMEOUT_S,
    AssertCase,
    assert_test_program,
    grade_code_many,
    unescape_code,
)
from sodctl.tools import ExecResult
from sodctl.tools.executors import get_executor


def block(code: str) -> str:
    """A response whose final answer holds ``code``, which the grader extracts as
    ``code`` plus one newline."""
    return f"<think>plan</think>My answer:\n```python\n{code.rstrip(chr(10))}\n```\n"


# The prefix provides ``List`` (used by the annotations) and the helper ``pair``: a
# solution relying on them fails without it.
PREFIX = "from typing import *\n\ndef pair(i, j):\n    return [i, j]\n\n"
TEST_CODE = (
    "def check(candidate):\n"
    "    assert candidate(nums = [2,7,11,15], target = 9) == [0,1]\n"
    "\n"
    "    assert candidate(nums = [3,2,4], target = 6) == [1,2]\n"
    "    assert candidate(nums = [3,3], target = 6) == [0,1]\n"
)
TWO_SUM = {"import_prefix": PREFIX, "test_code": TEST_CODE, "entry_point": "Solution().twoSum"}
RIGHT = (
    "class Solution:\n"
    "    def twoSum(self, nums: List[int], target: int) -> List[int]:\n"
    "        seen = {}\n"
    "        for j, x in enumerate(nums):\n"
    "            if target - x in seen:\n"
    "                return pair(seen[target - x], j)\n"
    "            seen[x] = j\n"
)
FIRST_TWO = (  # right on tests 1 and 3 only
    "class Solution:\n    def twoSum(self, nums: List[int], target: int) -> List[int]:\n"
    "        return pair(0, 1)\n"
)
RAISES = "class Solution:\n    def twoSum(self, nums, target):\n        raise ValueError('boom')\n"


@pytest.fixture(scope="module")
def ex():
    return get_executor("local")


# --- comparison default and limits -------------------------------------------------------------


@pytest.mark.unit
def test_released_compare_and_limits_are_the_defaults():
    assert (CODE_TIMEOUT_S, CODE_MEMORY_MB) == (30.0, 1024)
    for fn in (grade, grade_many, grade_code_many):
        params = inspect.signature(fn).parameters
        assert params["compare"].default == "released", fn.__name__
        assert params["unescape"].default is False, fn.__name__


@pytest.mark.integration
def test_released_compare_is_exact_but_for_trailing_newlines(ex):
    programs_and_outputs = [
        ("print('3 ')", "3\n"),  # a trailing space
        ("print('1.50')", "1.5\n"),  # the same number, written differently
        ("print('3\\n\\n')", "3"),  # trailing newlines, on either side, never count
        ("import sys\nsys.stdout.write('3')", "3\n\n"),
    ]
    responses = [block(code) for code, _ in programs_and_outputs]
    specs = [{"inputs": [""], "outputs": [out]} for _, out in programs_and_outputs]
    default = grade_many(responses, specs, kind="code", executor=ex)
    lcb = grade_many(responses, specs, kind="code", executor=ex, compare="lcb")
    assert [r.correct for r in default] == [False, False, True, True]
    assert [r.correct for r in lcb] == [True, True, True, True]
    assert "output '3' != expected '3'" in default[0].detail  # stripped for display only
    assert "output '1.50' != expected '1.5'" in default[1].detail


@pytest.mark.unit
def test_default_limits_reach_the_executor():
    fake = _FakeExecutor(ExecResult("ok"))
    stdin_spec = {"inputs": ["1\n"], "outputs": ["1\n"]}
    grade_many([block("print(1)")] * 2, [stdin_spec, TWO_SUM], kind="code", executor=fake)
    assert len(fake.batches) == 1 and len(fake.batches[0][0]) == 1 + 3  # one batch, all tests
    assert fake.batches[0][1] == {"timeout_s": 30.0, "memory_mb": 1024}
    grade(block("print(1)"), TWO_SUM, kind="code", executor=fake, timeout_s=3, memory_mb=256)
    assert fake.batches[1][1] == {"timeout_s": 3, "memory_mb": 256}
    grade_code_many([block("print(1)")], [TWO_SUM], executor=fake)
    assert fake.batches[2][1] == {"timeout_s": CODE_TIMEOUT_S, "memory_mb": CODE_MEMORY_MB}


# --- unescape ----------------------------------------------------------------------------------


@pytest.mark.unit
def test_unescape_code_rewrites_every_escape():
    assert unescape_code('x = 1\\nprint("a\\tb\\n")') == 'x = 1\nprint("a\tb\n")'
    assert unescape_code("no escapes\n") == "no escapes\n"


@pytest.mark.integration
def test_unescape_breaks_string_literals_and_mends_escaped_programs(ex):
    spec = {"inputs": ["1 2\n"], "outputs": ["a\nb\n"]}
    literal = block('print("a\\nb")')  # the program holds a backslash-n inside a string
    off = grade(literal, spec, kind="code", executor=ex)
    assert off.correct and off.pred == 'print("a\\nb")\n'
    on = grade(literal, spec, kind="code", executor=ex, unescape=True)
    assert (on.correct, on.score, on.pred) == (False, 0.0, None)
    assert "syntax error" in on.detail
    assert outcome_reward(on, "code") == -1.0 and outcome_reward(off, "code") == 1.0
    # a program whose own line breaks came out escaped: only unescape=True runs it
    escaped = block("a, b = input().split()\\nprint('a')\\nprint('b')")
    assert grade(escaped, spec, kind="code", executor=ex).pred is None
    mended = grade(escaped, spec, kind="code", executor=ex, unescape=True)
    assert mended.correct and mended.pred == "a, b = input().split()\nprint('a')\nprint('b')\n"


# --- LeetCode-shaped tests -----------------------------------------------------------------------


@pytest.mark.unit
def test_assert_test_program_is_the_released_construction():
    spec = {
        "import_prefix": "import math\n",
        "test_code": "def check(candidate):\n\n    assert candidate(4) == 2\n    assert candidate(9) == 3\n",
        "entry_point": "Solution().root",
    }
    cases = parse_tests(json.dumps(spec))
    assert cases == (
        AssertCase(
            "import math\n",
            "def check(candidate):",
            "    assert candidate(4) == 2",
            "Solution().root",
        ),
        AssertCase(
            "import math\n",
            "def check(candidate):",
            "    assert candidate(9) == 3",
            "Solution().root",
        ),
    )
    code = "class Solution:\n    def root(self, x):\n        return math.isqrt(x)\n"
    by_hand = (
        "import math\n"
        "class Solution:\n    def root(self, x):\n        return math.isqrt(x)\n"
        "\n"
        "def check(candidate):    assert candidate(9) == 3\n"
        "check(Solution().root)"
    )
    assert assert_test_program(code, cases[1]) == by_hand
    exec(compile(by_hand, "<test>", "exec"), {})  # a one-line check: valid, and it passes


@pytest.mark.unit
def test_leetcode_spec_variants_and_data_errors():
    assert parse_tests(TWO_SUM) == parse_tests(json.dumps(TWO_SUM))
    assert len(parse_tests(TWO_SUM)) == 3  # the empty line is no test
    absent = {k: v for k, v in TWO_SUM.items() if k != "import_prefix"}
    for spec in (absent, {**TWO_SUM, "import_prefix": None}):
        assert [c.import_prefix for c in parse_tests(spec)] == ["", "", ""]
    for bad, match in [
        ({"import_prefix": PREFIX, "entry_point": "Solution().f"}, "without 'test_code'"),
        ({**TWO_SUM, "entry_point": None}, "without 'entry_point'"),
        ({**TWO_SUM, "test_code": "def check(candidate):\n    pass\n"}, "no assert line"),
        ({**TWO_SUM, "test_code": ""}, "does not start with 'def check\\('"),
        ({**TWO_SUM, "test_code": "assert f(1) == 1\n"}, "does not start with 'def check\\('"),
        ({**TWO_SUM, "import_prefix": 3}, "'import_prefix' must be a string"),
    ]:
        with pytest.raises(ValueError, match=match):
            parse_tests(bad)
    fake = _FakeExecutor(ExecResult("ok"))
    with pytest.raises(ValueError, match="ground truth 1 of the batch: .*no assert line"):
        grade_many(
            [block(RIGHT)] * 2,
            [TWO_SUM, {**TWO_SUM, "test_code": "def check(candidate):\n"}],
            kind="code",
            executor=fake,
        )
    assert fake.batches == []  # the data error comes before anything runs


@pytest.mark.integration
def test_leetcode_tests_on_real_runs(ex):
    no_prefix = {k: v for k, v in TWO_SUM.items() if k != "import_prefix"}
    rs = grade_many(
        [
            block(RIGHT),
            block(RIGHT),
            block(FIRST_TWO),
            block(RAISES),
            block(RIGHT),
            block("def f(:"),
        ],
        [TWO_SUM, json.dumps(TWO_SUM), TWO_SUM, TWO_SUM, no_prefix, TWO_SUM],
        kind="code",
        executor=ex,
    )
    assert [(r.correct, round(r.score, 3)) for r in rs] == [
        (True, 1.0),
        (True, 1.0),  # the ground truth as a JSON string
        (False, 0.667),
        (False, 0.0),
        (False, 0.0),  # List and pair come from the prefix
        (False, 0.0),
    ]
    assert rs[0].pred == RIGHT and rs[0].detail == "3/3 tests passed"
    assert rs[2].detail == "2/3 tests passed; test 2: failed: AssertionError"
    assert "ValueError: boom" in rs[3].detail
    assert "NameError" in rs[4].detail
    assert rs[5].pred is None and "syntax error" in rs[5].detail
    assert outcome_reward(rs[5], "code") == -1.0 and outcome_reward(rs[3], "code") == 0.0


@pytest.mark.integration
def test_leetcode_exit_status_is_the_verdict(ex):
    one = {
        **TWO_SUM,
        "test_code": "def check(candidate):\n    assert candidate([3,3], 6) == [0,1]\n",
    }
    slow = "class Solution:\n    def twoSum(self, nums, target):\n        while True:\n            pass\n"
    # no entry-point check for this shape: the program decides; an exit(0) passes (as released)
    quits = "import sys\nsys.exit(0)\n"
    missing = "def other():\n    return 1\n"
    rs = grade_many(
        [block(slow), block(quits), block(missing)],
        [one] * 3,
        kind="code",
        executor=ex,
        timeout_s=1,
    )
    assert [r.correct for r in rs] == [False, True, False]
    assert "timeout (> 1 s)" in rs[0].detail
    assert rs[2].pred == missing and "NameError" in rs[2].detail


@pytest.mark.unit
def test_leetcode_programs_join_the_batch_and_failures_are_reported():
    fake = _FakeExecutor(ExecResult("error", stderr="Traceback ...\nAssertionError", exit_code=1))
    rs = grade_many([block(RIGHT)], [TWO_SUM], kind="code", executor=fake)
    programs = fake.batches[0][0]
    assert programs == [assert_test_program(RIGHT, c) for c in parse_tests(TWO_SUM)]
    assert "@@sodctl-verdict" not in programs[0]  # no harness: the exit status decides
    assert rs[0].detail.startswith("0/3 tests passed; test 1: failed: AssertionError; test 2")
    fake = _FakeExecutor(ExecResult("memory"))
    assert (
        "memory limit exceeded" in grade(block(RIGHT), TWO_SUM, kind="code", executor=fake).detail
    )


@pytest.mark.integration
def test_leetcode_row_through_verl_hook():
    out = compute_score(
        "train-code-leetcode-Easy", block(RIGHT), json.dumps(TWO_SUM), {"num_turns": 2}
    )
    assert (out["score"], out["acc"], out["pred"]) == (1.0, True, RIGHT)
