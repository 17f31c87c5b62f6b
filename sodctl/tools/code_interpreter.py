"""The ``code_interpreter`` tool (REFERENCE §6): from a call's arguments to an observation.

The pipeline per call: validate the arguments, maybe inject a fault, take the
fenced block out of the code (``extract_code``), apply the print rule
(``prepare_code``), run it on an executor, and turn the result into the
observation the model sees (``format_observation``).

Two families of behaviour; the released one is the default (it produced the
paper's numbers, RELEASED-PROTOCOL.md B8, B9):

- ``print_mode="paper"`` is the released tool exactly: the code of the *first*
  block fenced as exactly ```python (``.strip()``-ed), else the argument as it
  is; then the last line that is not empty (``""``; a line of spaces counts) is
  replaced by ``print(<that line>)`` unless it starts with ``print``. So an
  indented last line leaves its block (IndentationError when it was the block's
  only line), an indented ``print(...)`` becomes ``print(print(...))`` (the
  paper's case study B), ``x += 1`` a SyntaxError and ``x = 5`` ``print(x = 5)``,
  a TypeError at run time.
- ``print_mode="repl"`` (sodctl's option): the first block fenced ```python,
  ```py, ```python3 or bare; if the last top-level statement is an expression
  other than a ``print(...)`` call, its value is printed as ``repr`` unless it
  is None (what a REPL shows); nothing else changes, line numbers included;
  code that does not parse is left as it is.
- ``observations="released"``: stdout then stderr with nothing between them for a
  run that finished (whatever its exit status, a memory kill included), ``""``
  when it printed nothing, ``no stdout here`` for a run that did not finish
  (timeout, sandbox failure); a text longer than ``max_chars`` keeps its first
  and last ``max_chars // 2`` characters around ``...(truncated)...``.
- ``observations="sodctl"``: stdout, then stderr on a new line; one sentence
  for timeouts, memory kills and sandbox failures, ``NO_OUTPUT`` for a silent
  success; the cut marker ``\n...[truncated N chars]...\n`` names the number
  of characters dropped.
- ``schema="released"``: the released tool schema ("A tool for executing code.",
  parameter ``code``: "The code to execute."); ``"sodctl"``: a longer description.

Also:

- ``ToolOutcome.code`` is the code sent to the executor (after extraction and
  the print rule); ``latency_s`` of a ``run_many`` outcome is the whole batch's
  wall time (what the caller waited), 0 when nothing was executed.
- Arguments that are not a string ``code``: the released tool raised inside
  verl's tool call, which turned the exception into the observation ``Error when
  executing tool: <exception>``; ``released_argument_error`` computes that text
  with the very Python operations that failed there. The ``sodctl`` observation
  style answers with its own sentence instead.
- The released tool also honoured ``timeout`` and ``language`` arguments chosen
  by the model; sodctl does not (the limits are the run's, not the model's).
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
ObservationStyle = Literal["released", "sodctl"]
SchemaStyle = Literal["released", "sodctl"]
OutcomeStatus = Literal[
    "ok", "error", "timeout", "memory", "sandbox_error", "invalid_call", "injected_fault"
]

TOOL_NAME = "code_interpreter"


def _schema(description: str, code_description: str) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": TOOL_NAME,
            "description": description,
            "parameters": {
                "type": "object",
                "properties": {"code": {"type": "string", "description": code_description}},
                "required": ["code"],
            },
        },
    }


TOOL_SCHEMAS: dict[str, dict[str, Any]] = {
    # The released tool config's schema, word for word: the system prompt the released
    # checkpoints were trained and evaluated with.
    "released": _schema("A tool for executing code.", "The code to execute."),
    "sodctl": _schema(
        "Run Python 3 code in a fresh sandbox and return what it printed (stdout and "
        "stderr, shortened when long). Nothing persists between calls; print the "
        "values you need to see.",
        "The Python code to run.",
    ),
}
CODE_INTERPRETER_SCHEMA = TOOL_SCHEMAS["released"]


def tool_schema(style: SchemaStyle | str = "released") -> dict[str, Any]:
    """The tool schema rendered into the system prompt (``tool.schema``)."""
    if style not in TOOL_SCHEMAS:
        raise ValueError(f"unknown tool schema {style!r}; choose released or sodctl")
    return TOOL_SCHEMAS[str(style)]


# Observation texts of the released tool and agent loop (verl), as the model saw them.
RELEASED_NOT_FINISHED = "no stdout here"
RELEASED_CUT_MARKER = "...(truncated)..."
RELEASED_TOOL_ERROR = "Error when executing tool: "

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
_RELEASED_FENCE = re.compile(r"```python(.*?)```", re.DOTALL)


def extract_code(code: str, print_mode: PrintMode = "repl") -> str:
    """The code to run: the first fenced block of ``code`` (see the module docstring for
    which fences each mode accepts), or ``code`` itself when it has none."""
    if print_mode == "paper":
        m = _RELEASED_FENCE.search(code)
        return m.group(1).strip() if m else code
    m = _FENCE.search(code)
    return m.group(1) if m else code


def _paper_print(code: str) -> str:
    lines = code.split("\n")
    last = next((i for i in range(len(lines) - 1, -1, -1) if lines[i] != ""), None)
    if last is None or lines[last].startswith("print"):
        return code
    lines[last] = f"print({lines[last]})"
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


def truncate_middle(
    text: str, max_chars: int | None = 256, style: ObservationStyle = "sodctl"
) -> str:
    """Keep the first and last ``max_chars // 2`` characters of a longer text, around the
    style's marker."""
    if max_chars is None or len(text) <= max_chars:
        return text
    half = max_chars // 2
    tail = text[-half:] if half else ""
    if style == "released":
        return f"{text[:half]}{RELEASED_CUT_MARKER}{tail}"
    dropped = len(text) - 2 * half
    return f"{text[:half]}\n...[truncated {dropped} chars]...\n{tail}"


def format_observation(
    result: ExecResult, max_chars: int | None = 256, style: ObservationStyle = "released"
) -> str:
    """The text the model sees for one run (see the module docstring)."""
    if style == "released":
        finished = result.status in ("ok", "error", "memory")
        text = result.stdout + result.stderr if finished else RELEASED_NOT_FINISHED
        return truncate_middle(text, max_chars, "released")
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
    return truncate_middle(text, max_chars, "sodctl")


def released_argument_error(arguments: Any) -> str | None:
    """The observation the released tool gave for call arguments it could not take, or
    None when they hold a string ``code``.

    The released tool read ``arguments["code"]`` and searched it for a fence; whatever
    exception that raised became ``Error when executing tool: <exception>``. The same
    two operations run here, so the texts are Python's own (``'code'`` for a missing
    key, ``string indices must be integers, not 'str'``, ...)."""
    try:
        _RELEASED_FENCE.findall(arguments["code"])
    except Exception as e:  # noqa: BLE001 - any exception is the observation
        return f"{RELEASED_TOOL_ERROR}{e}"
    return None


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
        observations: ObservationStyle = "released",
        schema: SchemaStyle = "released",
    ) -> None:
        if print_mode not in ("paper", "repl"):
            raise ValueError(f"print_mode must be 'paper' or 'repl', got {print_mode!r}")
        if observations not in ("released", "sodctl"):
            raise ValueError(f"observations must be 'released' or 'sodctl', got {observations!r}")
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
        self.observations: ObservationStyle = observations
        self.schema = tool_schema(schema)  # what the system prompt shows

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
                preload = getattr(tool_cfg, "preload", None)
                executor = get_executor(tool_cfg.backend, preload=preload)
        return cls(
            executor,
            timeout_s=tool_cfg.run_timeout_s,
            memory_mb=tool_cfg.memory_mb,
            print_mode=tool_cfg.print_mode,
            max_observation_chars=tool_cfg.max_observation_chars,
            fault_rate=tool_cfg.fault_rate,
            fault_seed=fault_seed,
            observations=tool_cfg.observations,
            schema=tool_cfg.schema,
        )

    def _screen(self, arguments: Any) -> ToolOutcome | str:
        """An outcome decided without running anything, or the code to run."""
        code = arguments.get("code") if isinstance(arguments, dict) else None
        if not isinstance(code, str):
            text = released_argument_error(arguments) if self.observations == "released" else None
            if text is None:
                got = (
                    "no 'code' argument" if code is None else f"'code' of type {type(code).__name__}"
                )
                text = (
                    f"Error: {TOOL_NAME} needs a string argument 'code' (the Python code to "
                    f"run); got {got}."
                )
            return ToolOutcome(text, "invalid_call", True, 0.0, None, None)
        prepared = prepare_code(extract_code(code, self.print_mode), self.print_mode)
        if self.fault_rate > 0.0 and self._fault_rng.random() < self.fault_rate:
            text = truncate_middle(INJECTED_FAULT_TEXT, self.max_observation_chars, self.observations)
            return ToolOutcome(text, "injected_fault", True, 0.0, prepared, None)
        return prepared

    def _outcome(self, code: str, result: ExecResult, latency_s: float) -> ToolOutcome:
        observation = format_observation(result, self.max_observation_chars, self.observations)
        return ToolOutcome(
            observation, result.status, is_erroneous(result), latency_s, code, result
        )

    def run(self, arguments: Any) -> ToolOutcome:
        """Run one call's ``arguments`` (``{"code": ...}``; anything else is an invalid call)."""
        screened = self._screen(arguments)
        if isinstance(screened, ToolOutcome):
            return screened
        t0 = time.monotonic()
        result = self.executor.execute(screened, timeout_s=self.timeout_s, memory_mb=self.memory_mb)
        return self._outcome(screened, result, time.monotonic() - t0)

    def run_many(self, calls: Sequence[Any]) -> list[ToolOutcome]:
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
