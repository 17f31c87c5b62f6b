"""The structured result every executor returns."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

Status = Literal["ok", "error", "timeout", "memory", "sandbox_error"]
STATUSES: tuple[str, ...] = ("ok", "error", "timeout", "memory", "sandbox_error")


@dataclass(frozen=True)
class ExecResult:
    """Outcome of running one piece of code.

    status        ok (exit 0), error (exception or non-zero exit), timeout (wall clock or
                  CPU limit), memory (address-space limit hit), sandbox_error (the
                  executor itself failed; the code's fault is unknown).
    stdout/stderr captured text, each capped at the executor's output limit.
    exit_code     the process's exit status; negative for a signal; None if unknown.
    duration_s    wall-clock time of the run as the executor measured it.
    truncated     True when some output was dropped at the cap.
    network_isolated  True when the code ran in its own empty network namespace.
    """

    status: Status
    stdout: str = ""
    stderr: str = ""
    exit_code: int | None = None
    duration_s: float = 0.0
    truncated: bool = False
    network_isolated: bool = False

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict[str, object]:
        return asdict(self)
