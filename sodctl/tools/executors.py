"""One front door to the executors: ``get_executor`` and ``execute``.

``get_executor(backend, sandbox_url=...)`` returns a process-wide executor shared by
every caller that asks for the same ``(backend, sandbox_url)``: a warm local pool
is costly to start (one interpreter per CPU with numpy and sympy imported), so the
agent loop, the reward's code grader and evaluation share one. It is created on
first use and closed at exit (or by ``close_executors``). Creation options
(``n_workers``, ``compile_timeout_s``) apply when the executor is created; asking
again with a different value is an error rather than a silent second pool.

Local pools are told apart by what their workers import (``preload``, the ``tool``
config's ``preload``): a caller that names a preload gets the pool with it, and one
that does not (the code grader) gets the first local pool made, else the default.
"""

from __future__ import annotations

import atexit
import threading
from collections.abc import Sequence
from typing import Any, Literal, Protocol, get_args, runtime_checkable

from sodctl.tools.local import DEFAULT_PRELOAD, LocalExecutor
from sodctl.tools.result import ExecResult
from sodctl.tools.sandbox_fusion import SandboxFusionExecutor

Backend = Literal["local", "sandbox-fusion"]
BACKENDS: tuple[str, ...] = get_args(Backend)


@runtime_checkable
class Executor(Protocol):
    """What the tool and the graders need from an executor."""

    def execute(
        self, code: str, *, stdin: str | None = None, timeout_s: float = 60.0, memory_mb: int = 2048
    ) -> ExecResult: ...

    def execute_many(self, codes: Sequence[str], **kwargs: Any) -> list[ExecResult]: ...

    def close(self) -> None: ...


_lock = threading.Lock()
# (backend, sandbox URL, the local workers' preload) -> (executor, creation options)
_Key = tuple[str, str | None, tuple[str, ...] | None]
_shared: dict[_Key, tuple[Executor, dict[str, object]]] = {}


def _check_args(backend: str, sandbox_url: str | None) -> None:
    if backend not in BACKENDS:
        raise ValueError(
            f"unknown executor backend {backend!r}; choose one of {', '.join(BACKENDS)}"
        )
    if backend == "sandbox-fusion" and not sandbox_url:
        raise ValueError(
            "backend 'sandbox-fusion' needs a sandbox_url "
            "(e.g. tool.sandbox_url=http://host:8080/run_code)"
        )


def get_executor(
    backend: Backend = "local",
    *,
    sandbox_url: str | None = None,
    n_workers: int | None = None,
    compile_timeout_s: float | None = None,
    preload: Sequence[str] | None = None,
) -> Executor:
    """The shared executor for ``(backend, sandbox_url)``, created on first use.

    ``n_workers`` sizes a local pool (default: one worker per CPU);
    ``compile_timeout_s`` is sent to SandboxFusion (default 60 s). Each applies to its
    own backend only; the URL is ignored for the local backend. ``preload`` (local only):
    the modules every warm worker imports, the pool with exactly those (created if need
    be); None: the first local pool made, else one with ``DEFAULT_PRELOAD``.
    """
    _check_args(backend, sandbox_url)
    url = sandbox_url if backend == "sandbox-fusion" else None
    modules = tuple(preload) if preload is not None and backend == "local" else None
    # Each backend has one creation option; the other one does not apply to it.
    wanted = (
        {"n_workers": n_workers} if backend == "local" else {"compile_timeout_s": compile_timeout_s}
    )
    with _lock:
        found = next(
            (
                entry
                for key, entry in _shared.items()
                if key[:2] == (backend, url) and modules in (None, key[2])
            ),
            None,
        )
        if found is not None:
            executor, options = found
            for name, value in wanted.items():
                if value is not None and value != options[name]:
                    raise ValueError(
                        f"the shared {backend} executor already exists with {name}="
                        f"{options[name]}; omit {name}, pass the same value, or call "
                        "close_executors() first"
                    )
            return executor
        if backend == "local":
            pool = LocalExecutor(n_workers, preload=DEFAULT_PRELOAD if modules is None else modules)
            executor, options, modules = pool, {"n_workers": pool.n_workers}, pool.preload
        else:
            assert url is not None
            sf = SandboxFusionExecutor(url, compile_timeout_s=compile_timeout_s or 60.0)
            executor, options = sf, {"compile_timeout_s": sf.compile_timeout_s}
        _shared[backend, url, modules] = (executor, options)
        return executor


def close_executors() -> None:
    """Close every shared executor (a later ``get_executor`` creates a fresh one)."""
    with _lock:
        executors = [e for e, _ in _shared.values()]
        _shared.clear()
    for executor in executors:
        executor.close()


atexit.register(close_executors)


def execute(
    code: str,
    *,
    stdin: str | None = None,
    timeout_s: float = 60.0,
    memory_mb: int = 2048,
    backend: Backend = "local",
    sandbox_url: str | None = None,
) -> ExecResult:
    """Run ``code`` once on the shared executor of ``backend``."""
    executor = get_executor(backend, sandbox_url=sandbox_url)
    return executor.execute(code, stdin=stdin, timeout_s=timeout_s, memory_mb=memory_mb)
