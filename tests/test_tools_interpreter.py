"""The code_interpreter tool: code preparation, observations, faults, and the executor front door."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

import pytest
from omegaconf import OmegaConf

from sodctl.config.schema import ToolConfig
from sodctl.tools import (
    CODE_INTERPRETER_SCHEMA,
    CodeInterpreter,
    ExecResult,
    LocalExecutor,
    SandboxFusionExecutor,
    close_executors,
    execute,
    extract_code,
    format_observation,
    get_executor,
    is_erroneous,
    prepare_code,
)
from sodctl.tools.code_interpreter import (
    FAILURE_TEXT,
    INJECTED_FAULT_TEXT,
    NO_OUTPUT,
    RELEASED_NOT_FINISHED,
    TOOL_SCHEMAS,
    released_argument_error,
    tool_schema,
)


class RecordingExecutor:
    """Answers ``ok`` with the code echoed; records how it was called."""

    def __init__(self) -> None:
        self.single: list[str] = []
        self.batches: list[list[str]] = []
        self.kwargs: list[dict] = []

    def execute(self, code: str, **kw) -> ExecResult:
        self.single.append(code)
        self.kwargs.append(kw)
        return ExecResult("ok", stdout=code)

    def execute_many(self, codes: Sequence[str], **kw) -> list[ExecResult]:
        self.batches.append(list(codes))
        self.kwargs.append(kw)
        return [ExecResult("ok", stdout=c) for c in codes]

    def close(self) -> None:
        pass


# --- schema, extraction, print rules (pure) ---------------------------------------------


@pytest.mark.unit
@pytest.mark.parametrize("style", ["released", "sodctl"])
def test_schema_is_the_hermes_function_schema(style):
    schema = tool_schema(style)
    fn = schema["function"]
    assert schema["type"] == "function" and fn["name"] == "code_interpreter"
    assert fn["parameters"]["required"] == ["code"]
    assert fn["parameters"]["properties"]["code"]["type"] == "string"
    assert fn["description"] and fn["parameters"]["properties"]["code"]["description"]


@pytest.mark.unit
def test_the_default_schema_is_the_released_one_word_for_word():
    # B8: the system prompt of the released checkpoints' training and evaluation
    assert CODE_INTERPRETER_SCHEMA is TOOL_SCHEMAS["released"]
    fn = CODE_INTERPRETER_SCHEMA["function"]
    assert fn["description"] == "A tool for executing code."
    assert fn["parameters"]["properties"]["code"]["description"] == "The code to execute."
    assert CodeInterpreter(RecordingExecutor()).schema == CODE_INTERPRETER_SCHEMA
    assert CodeInterpreter(RecordingExecutor(), schema="sodctl").schema == TOOL_SCHEMAS["sodctl"]
    with pytest.raises(ValueError, match="tool schema"):
        tool_schema("long")


@pytest.mark.unit
@pytest.mark.parametrize(
    ("arg", "code"),
    [
        ("print(1)", "print(1)"),
        ("```python\nprint(1)\n```", "print(1)\n"),
        ("Here:\n```py\nx = 2\nprint(x)\n```\nthanks", "x = 2\nprint(x)\n"),
        ("```Python3\nprint(3)\n```", "print(3)\n"),
        ("```\nprint(4)\n```", "print(4)\n"),
        ("```python\nprint('first')\n```\n```python\nprint('second')\n```", "print('first')\n"),
        ("```python\nprint(1)", "```python\nprint(1)"),  # no closing fence: run as given
        ("```bash\nls\n```", "```bash\nls\n```"),  # not Python: run as given
    ],
    ids=["plain", "python", "py-with-text", "python3", "bare", "first-block", "unclosed", "bash"],
)
def test_extract_code(arg, code):
    assert extract_code(arg) == code == extract_code(arg, "repl")


@pytest.mark.unit
@pytest.mark.parametrize(
    ("arg", "code"),
    [
        ("print(1)", "print(1)"),
        ("```python\nprint(1)\n```", "print(1)"),  # the block, stripped
        ("Here:\n```py\nx = 2\n```", "Here:\n```py\nx = 2\n```"),  # only ```python
        ("```Python\nprint(3)\n```", "```Python\nprint(3)\n```"),  # case-sensitive
        ("```python3\nprint(3)\n```", "3\nprint(3)"),  # "python" matched, "3" kept
        ("```python print(5)```", "print(5)"),  # no newline needed
        ("```python\nprint('a')\n```\n```python\nprint('b')\n```", "print('a')"),
        ("  x = 1  ", "  x = 1  "),  # no block: as given
    ],
    ids=["plain", "python", "py", "Python", "python3", "one-line", "first-block", "no-block"],
)
def test_extract_code_paper_mode_is_the_released_regex(arg, code):
    assert extract_code(arg, "paper") == code


@pytest.mark.unit
@pytest.mark.parametrize(
    ("code", "prepared"),
    [
        ("2 + 3", "print(2 + 3)"),
        ("x = 2\nx * 3\n\n", "x = 2\nprint(x * 3)\n\n"),
        ("print(1)", "print(1)"),
        ("printx = 1", "printx = 1"),  # starts with "print": left alone, as released
        ("x = 5", "print(x = 5)"),
        ("for i in range(3):\n    s = i", "for i in range(3):\nprint(    s = i)"),
        ("if ok:\n    print(f'{n}')", "if ok:\nprint(    print(f'{n}'))"),
        ("", ""),
        ("\n  \n", "\nprint(  )\n"),  # only "" is skipped: a line of spaces is wrapped
    ],
)
def test_paper_mode_wraps_the_raw_last_line(code, prepared):
    assert prepare_code(code, "paper") == prepared


@pytest.mark.unit
@pytest.mark.parametrize(
    "code",
    ["x = 5", "print(2 + 3)", "for i in range(3):\n    i", "def f(:\n  pass", "import math", ""],
    ids=["assign", "print-call", "expr-in-block", "syntax-error", "import", "empty"],
)
def test_repl_mode_leaves_non_expressions_alone(code):
    assert prepare_code(code, "repl") == code


@pytest.mark.unit
def test_repl_mode_keeps_line_numbers_and_the_rest_of_the_line():
    code = "x = 'é'; y = 2\n(x *\n y)  # note"
    prepared = prepare_code(code, "repl")
    assert prepared.count("\n") == code.count("\n")
    assert prepared.startswith("x = 'é'; y = 2\n") and prepared.endswith("  # note")


@pytest.mark.unit
def test_unknown_print_mode():
    with pytest.raises(ValueError, match="print_mode"):
        prepare_code("x", "jupyter")  # type: ignore[arg-type]


# --- observations -----------------------------------------------------------------------


@pytest.mark.unit
@pytest.mark.parametrize(
    ("result", "text"),
    [
        (ExecResult("ok", stdout="5\n"), "5\n"),
        (ExecResult("ok", stdout="", stderr="warn\n"), "warn\n"),
        (ExecResult("error", stdout="a", stderr="Trace\n", exit_code=1), "aTrace\n"),  # no separator
        (ExecResult("ok"), ""),
        (ExecResult("error", exit_code=3), ""),
        (ExecResult("memory", stderr="MemoryError\n", exit_code=1), "MemoryError\n"),  # it finished
        (ExecResult("timeout", stdout="partial"), RELEASED_NOT_FINISHED),
        (ExecResult("sandbox_error", stderr="HTTP 500"), RELEASED_NOT_FINISHED),
    ],
)
def test_released_observation_text(result, text):
    # B9: verl's SandboxFusion tool: stdout + stderr of a finished run, else "no stdout here"
    assert format_observation(result) == text == format_observation(result, style="released")
    assert RELEASED_NOT_FINISHED == "no stdout here"


@pytest.mark.unit
@pytest.mark.parametrize(
    ("result", "text"),
    [
        (ExecResult("ok", stdout="5\n"), "5\n"),
        (ExecResult("ok", stdout="", stderr="warn\n"), "warn\n"),
        (ExecResult("error", stdout="a\n", stderr="Trace\n", exit_code=1), "a\nTrace\n"),
        (ExecResult("error", stdout="a", stderr="Trace\n", exit_code=1), "a\nTrace\n"),
        (ExecResult("ok"), NO_OUTPUT),
        (ExecResult("error", exit_code=3), "The code exited with status 3 and printed nothing."),
        (ExecResult("timeout", stdout="partial"), FAILURE_TEXT["timeout"]),
        (ExecResult("memory", stderr="MemoryError"), FAILURE_TEXT["memory"]),
        (ExecResult("sandbox_error", stderr="HTTP 500"), FAILURE_TEXT["sandbox_error"]),
    ],
)
def test_sodctl_observation_text(result, text):
    assert format_observation(result, style="sodctl") == text


@pytest.mark.unit
def test_truncation_boundaries():
    exact = "".join(chr(ord("a") + i % 26) for i in range(256))
    for style in ("released", "sodctl"):
        assert format_observation(ExecResult("ok", stdout=exact), style=style) == exact
    longer = exact + "!"
    cut = format_observation(ExecResult("ok", stdout=longer), style="sodctl")
    assert cut == longer[:128] + "\n...[truncated 1 chars]...\n" + longer[-128:]
    # the released marker (verl's agent loop, max_tool_response_length 256)
    assert format_observation(ExecResult("ok", stdout=longer)) == (
        longer[:128] + "...(truncated)..." + longer[-128:]
    )
    big = "x" * 100 + "y" * 10_000 + "z" * 100
    cut = format_observation(ExecResult("ok", stdout=big), max_chars=200, style="sodctl")
    assert cut == "x" * 100 + "\n...[truncated 10000 chars]...\n" + "z" * 100
    assert format_observation(ExecResult("ok", stdout=big), max_chars=None) == big


@pytest.mark.unit
def test_is_erroneous_uses_the_status():
    assert not is_erroneous(ExecResult("ok", stderr="Traceback: just a warning"))
    for status in ("error", "timeout", "memory", "sandbox_error"):
        assert is_erroneous(ExecResult(status))  # type: ignore[arg-type]


# --- the tool over a fake executor -----------------------------------------------------


@pytest.mark.unit
@pytest.mark.parametrize(
    ("arguments", "needle"),
    [({}, "no 'code'"), ({"code": 3}, "of type int"), ({"cmd": "x"}, "no 'code'"), ("x", "no")],
)
def test_invalid_calls_do_not_execute(arguments, needle):
    ex = RecordingExecutor()
    outcome = CodeInterpreter(ex, observations="sodctl").run(arguments)
    assert (outcome.status, outcome.erroneous, outcome.result, outcome.code) == (
        "invalid_call",
        True,
        None,
        None,
    )
    assert "'code'" in outcome.observation and needle in outcome.observation
    assert ex.single == [] and ex.batches == []


@pytest.mark.unit
@pytest.mark.parametrize(
    ("arguments", "text"),
    [
        ({}, "Error when executing tool: 'code'"),
        ({"cmd": "x"}, "Error when executing tool: 'code'"),
        ("x", "Error when executing tool: string indices must be integers, not 'str'"),
        ([1], "Error when executing tool: list indices must be integers or slices, not str"),
        (None, "Error when executing tool: 'NoneType' object is not subscriptable"),
        ({"code": 3}, "Error when executing tool: expected string or bytes-like object, got 'int'"),
    ],
)
def test_invalid_arguments_get_the_released_error_text(arguments, text):
    # the exception the released tool raised inside verl's tool call, as verl showed it
    ex = RecordingExecutor()
    outcome = CodeInterpreter(ex).run(arguments)
    assert released_argument_error(arguments) == outcome.observation == text
    assert (outcome.status, outcome.erroneous) == ("invalid_call", True) and ex.single == []
    assert released_argument_error({"code": "print(1)"}) is None


@pytest.mark.unit
def test_run_prepares_the_code_and_passes_the_limits():
    ex = RecordingExecutor()
    tool = CodeInterpreter(ex, timeout_s=5, memory_mb=256, print_mode="paper")
    outcome = tool.run({"code": "```python\nx = 2\nx + 1\n```"})
    assert ex.single == ["x = 2\nprint(x + 1)"]
    assert ex.kwargs == [{"timeout_s": 5, "memory_mb": 256}]
    assert (outcome.status, outcome.erroneous, outcome.code) == ("ok", False, ex.single[0])
    assert outcome.result == ExecResult("ok", stdout=ex.single[0])
    assert outcome.latency_s >= 0.0


@pytest.mark.unit
def test_run_many_is_one_batch_in_order():
    ex = RecordingExecutor()
    tool = CodeInterpreter(ex, print_mode="repl")
    outcomes = tool.run_many([{"code": "print(1)"}, {}, {"code": "print(2)"}, {"code": 5}])
    assert ex.batches == [["print(1)", "print(2)"]] and ex.single == []
    assert [o.status for o in outcomes] == ["ok", "invalid_call", "ok", "invalid_call"]
    assert [o.observation for o in outcomes[::2]] == ["print(1)", "print(2)"]
    assert tool.run_many([{}]) and ex.batches == [["print(1)", "print(2)"]]  # nothing to run


@pytest.mark.unit
def test_fault_injection_rate_is_reproducible():
    def faults(seed: int) -> list[bool]:
        tool = CodeInterpreter(RecordingExecutor(), fault_rate=0.3, fault_seed=seed)
        return [o.status == "injected_fault" for o in tool.run_many([{"code": "1"}] * 1000)]

    a, b, c = faults(7), faults(7), faults(8)
    assert a == b and a != c
    assert 0.25 <= sum(a) / len(a) <= 0.35


@pytest.mark.unit
def test_injected_fault_looks_like_the_openblas_failure():
    ex = RecordingExecutor()
    outcome = CodeInterpreter(ex, fault_rate=1.0, fault_seed=0).run({"code": "import numpy"})
    assert (outcome.status, outcome.erroneous, outcome.result) == ("injected_fault", True, None)
    assert "pthread_create failed" in outcome.observation
    assert "Resource temporarily unavailable" in outcome.observation
    assert len(INJECTED_FAULT_TEXT) > 256 and len(outcome.observation) < 300  # truncated as usual
    assert ex.single == []


@pytest.mark.unit
def test_from_config_reads_the_tool_section():
    cfg = OmegaConf.structured(
        ToolConfig(run_timeout_s=9, memory_mb=512, print_mode="repl", max_observation_chars=64)
    )
    ex = RecordingExecutor()
    tool = CodeInterpreter.from_config(cfg, executor=ex, fault_seed=1)
    assert (tool.executor, tool.timeout_s, tool.memory_mb) == (ex, 9, 512)
    assert (tool.print_mode, tool.max_observation_chars, tool.fault_rate) == ("repl", 64, 0.0)
    sf = CodeInterpreter.from_config(
        ToolConfig(backend="sandbox-fusion", sandbox_url="http://sf:8080", compile_timeout_s=30)
    )
    try:
        assert isinstance(sf.executor, SandboxFusionExecutor)
        assert sf.executor.compile_timeout_s == 30
    finally:
        close_executors()


@pytest.mark.unit
@pytest.mark.parametrize(
    "kw",
    [{"print_mode": "x"}, {"fault_rate": 1.5}, {"timeout_s": 0}, {"max_observation_chars": 0}],
)
def test_bad_tool_arguments(kw):
    with pytest.raises(ValueError):
        CodeInterpreter(RecordingExecutor(), **kw)


# --- the executor front door ------------------------------------------------------------


@pytest.mark.unit
def test_get_executor_errors_name_the_fix():
    with pytest.raises(ValueError, match="choose one of local, sandbox-fusion"):
        get_executor("docker")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="sandbox_url"):
        get_executor("sandbox-fusion")


@pytest.mark.unit
def test_sandbox_fusion_executors_are_shared_per_url():
    try:
        a = get_executor("sandbox-fusion", sandbox_url="http://a:8080")
        assert get_executor("sandbox-fusion", sandbox_url="http://a:8080") is a
        assert get_executor("sandbox-fusion", sandbox_url="http://b:8080") is not a
        assert isinstance(a, SandboxFusionExecutor) and a.endpoint == "http://a:8080/run_code"
        with pytest.raises(ValueError, match="close_executors"):
            get_executor("sandbox-fusion", sandbox_url="http://a:8080", compile_timeout_s=5)
        close_executors()
        assert get_executor("sandbox-fusion", sandbox_url="http://a:8080") is not a
    finally:
        close_executors()


@pytest.mark.integration
def test_local_pools_are_shared_per_preload_and_a_tool_gets_its_own():
    probe = "import sys; print(sorted({'numpy', 'sympy', 'fractions'} & set(sys.modules)))"
    try:
        lean = get_executor("local", n_workers=1, preload=["fractions"])
        assert get_executor("local") is lean  # the code grader: whichever pool exists
        assert get_executor("local", preload=("fractions",)) is lean
        assert lean.execute(probe, timeout_s=5).stdout == "['fractions']\n"
        cfg = ToolConfig()  # the default preload: a pool of its own
        tool = CodeInterpreter.from_config(cfg)
        own = get_executor("local", preload=cfg.preload)
        assert tool.executor is own and own is not lean
        assert own.execute(probe, timeout_s=5).stdout == "['fractions', 'numpy', 'sympy']\n"
        # what a call imports itself runs the same in either pool
        code = "import statistics; print(statistics.median([3, 1, 2]))"
        assert lean.execute(code, timeout_s=30).stdout == own.execute(code, timeout_s=30).stdout
        with pytest.raises(ValueError, match="close_executors"):
            get_executor("local", n_workers=3, preload=["fractions"])
    finally:
        close_executors()


# --- real execution ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def ex():
    with LocalExecutor(2) as executor:
        yield executor


@pytest.mark.integration
def test_the_local_executor_is_shared():
    try:
        shared = get_executor("local", n_workers=2)
        assert isinstance(shared, LocalExecutor) and shared.n_workers == 2
        assert get_executor("local") is shared and get_executor("local", n_workers=2) is shared
        with pytest.raises(ValueError, match="n_workers=2"):
            get_executor("local", n_workers=3)
        r = execute("print(input() * 2)", stdin="ab\n", timeout_s=5)
        assert (r.status, r.stdout) == ("ok", "abab\n")
    finally:
        close_executors()


def observe(ex, code: str, mode: str = "paper", **kw):
    kw.setdefault("timeout_s", 5)
    return CodeInterpreter(ex, print_mode=mode, **kw).run({"code": textwrap.dedent(code)})


@pytest.mark.integration
def test_paper_mode_failures_really_happen(ex):
    o = observe(ex, "total = 0\nfor i in range(3):\n    total += i")
    assert o.status == "error" and o.erroneous
    assert "IndentationError: expected an indented block after 'for'" in o.observation
    o = observe(ex, "n = 3\nif n > 2:\n    print(f'{n} is big')")
    assert "print(    print(f'{n} is big'))" in o.observation and "IndentationError" in o.observation
    o = observe(ex, "x = 5")  # print(x = 5): a keyword argument, so a TypeError at run time
    assert "TypeError: 'x' is an invalid keyword argument for print()" in o.observation
    o = observe(ex, "x = 1\nx += 1")
    assert "SyntaxError: invalid syntax" in o.observation and "print(x += 1)" in o.observation
    # the error text comes with no separator after whatever was printed first
    o = observe(ex, "print('before', end='')\n1 / 0\nprint('never')")
    assert o.observation.startswith("beforeTraceback (most recent call last):")
    assert observe(ex, "import math\nmath.factorial(5)").observation == "120\n"
    assert observe(
        ex, "```python\nfor i in range(2):\n    print(i)\nprint('end')\n```"
    ).observation == ("0\n1\nend\n")


@pytest.mark.integration
def test_repl_mode_prints_a_trailing_value(ex):
    assert observe(ex, "2+3", "repl").observation == "5\n"
    assert observe(ex, "x = 2; x * 3", "repl").observation == "6\n"
    assert observe(ex, "'abc'", "repl").observation == "'abc'\n"
    assert observe(ex, "(1,\n 2)", "repl").observation == "(1, 2)\n"
    assert observe(ex, "None", "repl").observation == ""  # released observations: nothing printed
    assert observe(ex, "x = 5", "repl", observations="sodctl").observation == NO_OUTPUT
    assert observe(ex, "print('hi')", "repl").observation == "hi\n"
    o = observe(ex, "total = 0\nfor i in range(3):\n    total += i\ntotal", "repl")
    assert o.observation == "3\n" and not o.erroneous
    o = observe(ex, "def f(:\n    pass", "repl")
    assert o.status == "error" and "SyntaxError" in o.observation


@pytest.mark.integration
def test_failures_and_truncation_end_to_end(ex):
    o = observe(ex, "import time\ntime.sleep(10)", timeout_s=0.5)
    assert (o.status, o.observation, o.erroneous) == ("timeout", "no stdout here", True)
    o = observe(ex, "import time\ntime.sleep(10)", timeout_s=0.5, observations="sodctl")
    assert (o.status, o.observation, o.erroneous) == ("timeout", FAILURE_TEXT["timeout"], True)
    o = observe(ex, "print('a' * 200 + 'b' * 200)", observations="sodctl")
    assert o.observation.startswith("a" * 128 + "\n...[truncated 145 chars]...\n")
    assert o.observation.endswith("b" * 127 + "\n")
    o = observe(ex, "print('a' * 200 + 'b' * 200)")
    assert o.observation == "a" * 128 + "...(truncated)..." + "b" * 127 + "\n"


@pytest.mark.integration
def test_run_many_with_real_execution(ex):
    tool = CodeInterpreter(ex, timeout_s=5)
    calls = [{"code": f"{i} * {i}"} for i in range(6)] + [{"code": None}, {"code": "1/0"}]
    outcomes = tool.run_many(calls)
    assert [o.observation for o in outcomes[:6]] == [f"{i * i}\n" for i in range(6)]
    assert outcomes[6].status == "invalid_call"
    assert outcomes[7].status == "error" and "ZeroDivisionError" in outcomes[7].observation
