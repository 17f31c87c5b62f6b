"""The ``code_interpreter`` tool (REFERENCE §6): from a call's arguments to an observation.

The pipeline per call: validate the arguments, maybe inject a fault, take the
fenced block out of the code (``extract_code``), apply the print rule
(``prepare_code``), run it on an executor, and turn the result into the
observation the model sees (``format_observation``).

Decisions where the reference is silent:

- ``extract_code``: the *first* fenced block (```python, ```py, ```python3 or a
  bare ```) whose closing fence exists; otherwise the argument runs as it is.
  "Run that block" names one block, and the first is what a plain search finds.
- ``prepare_code(print_mode="paper")`` reproduces the released wrapper, bugs
  included: it checks whether the *raw* last non-empty line starts with
  ``print`` and, if not, replaces it with ``print(<the line, stripped>)`` at
  column 0. So an indented last line leaves its block (IndentationError when it
  was the block's only line, SyntaxError or a silent move out of the loop
  otherwise), an indented ``print(...)`` becomes ``print(print(...))`` (the
  paper's case study B), ``x += 1`` becomes a SyntaxError and ``x = 5`` becomes
  ``print(x = 5)``, a TypeError at run time. The checks on the raw line and the
  lost indentation are inferred from case study B, where an ``IndentationError``
  and ``print(print(f"..."))`` appear together.
- ``prepare_code(print_mode="repl")``: if the last top-level statement is an
  expression other than a ``print(...)`` call, its value is printed as
  ``repr`` unless it is None (what a REPL or a notebook cell shows); nothing else
  changes, line numbers included; code that does not parse is left as it is.
- ``format_observation``: stdout, then stderr (a newline between them if stdout
  lacks one) for finished runs; one fixed sentence for timeouts, memory kills
  and sandbox failures; ``NO_OUTPUT`` when a successful run printed nothing.
  Texts longer than ``max_chars`` keep exactly the first and the last
  ``max_chars // 2`` characters around ``\\n...[truncated N chars]...\\n``, N being
  the number of characters dropped.
- ``ToolOutcome.code`` is the code sent to the executor (after extraction and
  the print rule); ``latency_s`` of a ``run_many`` outcome is the whole batch's
  wall time (what the caller waited), 0 when nothing was executed.
- Fault injection draws one number per valid call, in call order, from its own
  seeded RNG: a fixed sequence of calls gets the same faults on every run.
"""

from __future__ import annotations

import ast
import random
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sodctl.tools.executors import Executor, get_executor
from sodctl.tools.result import ExecResult

PrintMode = Literal["paper", "repl"]
OutcomeStatus = Literal[
    "ok", "error", "timeout", "memory", "sandbox_error", "invalid_call", "injected_fault"
]

TOOL_NAME = "code_interpreter"

CODE_INTERPRETER_SCHEMA: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": TOOL_NAME,
        "description": (
            "Run Python 3 code in a fresh sandbox and return what it printed (stdout and "
            "stderr, shortened when long). Nothing persists between calls; print the "
            "values you need to see."
        ),
        "parameters": {
            "type": "object",
            "properties": {
                "code": {"type": "string", "description": "The Python code to run."},
            },
            "required": ["code"],
        },
    },
}

NO_OUTPUT = "The code ran successfully and printed nothing."
FAILURE_TEXT: dict[str, str] = {
    "timeout": "Error: the code did not finish within the time limit.",
    "memory": "Error: the code ran out of memory.",
    "sandbox_error": "Error: the sandbox failed to run the code (an environment problem).",
}
# An environment failure in the style of the paper's case study A (numpy cannot
# start its BLAS threads because the sandbox is out of processes).
INJECTED_FAULT_TEXT = (
    "OpenBLAS blas_thread_init: pthread_create failed for thread 1 of 2: "
    "Resource temporarily unavailable\n"
    "OpenBLAS blas_thread_init: RLIMIT_NPROC 64 current, 64 max\n"
    "Traceback (most recent call last):\n"
    '  File "<string>", line 1, in <module>\n'
    "ImportError: numpy failed to start; if you are inside the numpy source tree, "
    "please exit the numpy source tree and relaunch your interpreter.\n"
)

_FENCE = re.compile(r"```(?:python3|python|py)?[ \t]*\r?\n(.*?)```", re.DOTALL | re.IGNORECASE)


def extract_code(code: str) -> str:
    """The first fenced code block of ``code``, or ``code`` itself when it has none."""
    m = _FENCE.search(code)
    return m.group(1) if m else code


def _paper_print(code: str) -> str:
    lines = code.split("\n")
    last = next((i for i in range(len(lines) - 1, -1, -1) if lines[i].strip()), None)
    if last is None or lines[last].startswith("print"):
        return code
    lines[last] = f"print({lines[last].strip()})"
    return "\n".join(lines)


def _repl_print(code: str) -> str:
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return code  # the executor reports the error
    if not tree.body or not isinstance(tree.body[-1], ast.Expr):
        return code
    stmt = tree.body[-1]
    value = stmt.value
    if (
        isinstance(value, ast.Call)
        and isinstance(value.func, ast.Name)
        and value.func.id == "print"
    ):
        return code
    assert stmt.end_lineno is not None and stmt.end_col_offset is not None
    # ast offsets are UTF-8 byte offsets within a line.
    src = code.encode()
    starts = [0] + [i + 1 for i, b in enumerate(src) if b == ord("\n")]
    begin = starts[stmt.lineno - 1] + stmt.col_offset
    end = starts[stmt.end_lineno - 1] + stmt.end_col_offset
    show = b"(lambda _v: None if _v is None else print(repr(_v)))(("
    return (src[:begin] + show + src[begin:end] + b"))" + src[end:]).decode()


def prepare_code(code: str, print_mode: PrintMode = "paper") -> str:
    """Apply the print rule of ``print_mode`` (see the module docstring)."""
    if print_mode == "paper":
        return _paper_print(code)
    if print_mode == "repl":
        return _repl_print(code)
    raise ValueError(f"print_mode must be 'paper' or 'repl', got {print_mode!r}")


def truncate_middle(text: str, max_chars: int | None = 256) -> str:
    """Keep the first and last ``max_chars // 2`` characters of a longer text."""
    if max_chars is None or len(text) <= max_chars:
        return text
    half = max_chars // 2
    dropped = len(text) - 2 * half
    tail = text[-half:] if half else ""
    return f"{text[:half]}\n...[truncated {dropped} chars]...\n{tail}"


def format_observation(result: ExecResult, max_chars: int | None = 256) -> str:
    """The text the model sees for one run (see the module docstring)."""
    if result.status in FAILURE_TEXT:
        text = FAILURE_TEXT[result.status]
    else:
        out, err = result.stdout, result.stderr
        sep = "\n" if out and err and not out.endswith("\n") else ""
        text = out + sep + err
        if not text:
            text = (
                NO_OUTPUT
                if result.ok
                else f"The code exited with status {result.exit_code} and printed nothing."
            )
    return truncate_middle(text, max_chars)


def is_erroneous(result: ExecResult) -> bool:
    """Whether a run counts as an erroneous tool call: any status but ``ok``."""
    return result.status != "ok"


@dataclass(frozen=True)
class ToolOutcome:
    """One tool call's result as the agent loop records it."""

    observation: str
    status: OutcomeStatus
    erroneous: bool
    latency_s: float
    code: str | None
    result: ExecResult | None


class CodeInterpreter:
    """The ``code_interpreter`` tool over an executor (``LocalExecutor``, SandboxFusion, ...)."""

    name = TOOL_NAME
    schema = CODE_INTERPRETER_SCHEMA

    def __init__(
        self,
        executor: Executor,
        *,
        timeout_s: float = 60.0,
        memory_mb: int = 2048,
        print_mode: PrintMode = "paper",
        max_observation_chars: int = 256,
        fault_rate: float = 0.0,
        fault_seed: int | None = None,
    ) -> None:
        if print_mode not in ("paper", "repl"):
            raise ValueError(f"print_mode must be 'paper' or 'repl', got {print_mode!r}")
        if not 0.0 <= fault_rate <= 1.0:
            raise ValueError(f"fault_rate must be a probability in [0, 1], got {fault_rate}")
        if timeout_s <= 0 or memory_mb <= 0 or max_observation_chars <= 0:
            raise ValueError("timeout_s, memory_mb and max_observation_chars must be positive")
        self.executor = executor
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb
        self.print_mode: PrintMode = print_mode
        self.max_observation_chars = max_observation_chars
        self.fault_rate = fault_rate
        self._fault_rng = random.Random(fault_seed)

    @classmethod
    def from_config(
        cls, tool_cfg: Any, executor: Executor | None = None, *, fault_seed: int | None = None
    ) -> CodeInterpreter:
        """Build the tool from the ``tool`` config section (``ToolConfig``).

        Without ``executor`` it uses the shared one of ``tool_cfg.backend``.
        """
        if executor is None:
            if tool_cfg.backend == "sandbox-fusion":
                executor = get_executor(
                    "sandbox-fusion",
                    sandbox_url=tool_cfg.sandbox_url,
                    compile_timeout_s=tool_cfg.compile_timeout_s,
                )
            else:
                executor = get_executor(tool_cfg.backend)
        return cls(
            executor,
            timeout_s=tool_cfg.run_timeout_s,
            memory_mb=tool_cfg.memory_mb,
            print_mode=tool_cfg.print_mode,
            max_observation_chars=tool_cfg.max_observation_chars,
            fault_rate=tool_cfg.fault_rate,
            fault_seed=fault_seed,
        )

    def _screen(self, arguments: Any) -> ToolOutcome | str:
        """An outcome decided without running anything, or the code to run."""
        code = arguments.get("code") if isinstance(arguments, dict) else None
        if not isinstance(code, str):
            got = "no 'code' argument" if code is None else f"'code' of type {type(code).__name__}"
            text = (
                f"Error: {TOOL_NAME} needs a string argument 'code' (the Python code to run); "
                f"got {got}."
            )
            return ToolOutcome(text, "invalid_call", True, 0.0, None, None)
        prepared = prepare_code(extract_code(code), self.print_mode)
        if self.fault_rate > 0.0 and self._fault_rng.random() < self.fault_rate:
            text = truncate_middle(INJECTED_FAULT_TEXT, self.max_observation_chars)
            return ToolOutcome(text, "injected_fault", True, 0.0, prepared, None)
        return prepared

    def _outcome(self, code: str, result: ExecResult, latency_s: float) -> ToolOutcome:
        observation = format_observation(result, self.max_observation_chars)
        return ToolOutcome(
            observation, result.status, is_erroneous(result), latency_s, code, result
        )

    def run(self, arguments: dict[str, Any]) -> ToolOutcome:
        """Run one call's ``arguments`` (``{"code": ...}``)."""
        screened = self._screen(arguments)
        if isinstance(screened, ToolOutcome):
            return screened
        t0 = time.monotonic()
        result = self.executor.execute(screened, timeout_s=self.timeout_s, memory_mb=self.memory_mb)
        return self._outcome(screened, result, time.monotonic() - t0)

    def run_many(self, calls: Sequence[dict[str, Any]]) -> list[ToolOutcome]:
        """Run many calls concurrently through ``executor.execute_many``; outcomes in order."""
        screened = [self._screen(arguments) for arguments in calls]
        pending = [(i, s) for i, s in enumerate(screened) if isinstance(s, str)]
        outcomes: list[ToolOutcome | str] = list(screened)
        if pending:
            t0 = time.monotonic()
            results = self.executor.execute_many(
                [code for _, code in pending], timeout_s=self.timeout_s, memory_mb=self.memory_mb
            )
            latency = time.monotonic() - t0
            for (i, code), result in zip(pending, results, strict=True):
                outcomes[i] = self._outcome(code, result, latency)
        return [o for o in outcomes if isinstance(o, ToolOutcome)]
