"""The local executor: a pool of warm sandbox workers (see ``_worker.py`` for the isolation).

Each worker is a separate Python process that has imported the common modules
once; every call runs in a fresh child forked from one, so a call costs a fork,
not an interpreter start and a sympy import. Calls from many threads run
concurrently, one per worker. A worker that dies (or stops answering) is
replaced, and that call reports ``sandbox_error``.
"""

from __future__ import annotations

import atexit
import os
import queue
import select
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from sodctl.tools._worker import SCRUBBED_ENV, read_msg, write_msg
from sodctl.tools.result import ExecResult

DEFAULT_PRELOAD = (
    "math",
    "cmath",
    "fractions",
    "decimal",
    "itertools",
    "functools",
    "collections",
    "heapq",
    "bisect",
    "re",
    "random",
    "statistics",
    "string",
    "json",
    "numpy",
    "sympy",
)


class _Worker:
    def __init__(self, slot: int, preload: Sequence[str]) -> None:
        self.slot = slot
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sodctl.tools._worker", str(slot), ",".join(preload)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env={**SCRUBBED_ENV, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)},
            start_new_session=True,
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.w, self.r = self.proc.stdin.fileno(), self.proc.stdout.fileno()
        hello = read_msg(self.r)
        if not hello or not hello.get("ready"):
            raise RuntimeError("sandbox worker failed to start")

    def call(self, req: dict, wait_s: float) -> dict | None:
        """Send one request; None if the worker died or did not answer within ``wait_s``."""
        try:
            write_msg(self.w, req)
            ready, _, _ = select.select([self.r], [], [], wait_s)
            return read_msg(self.r) if ready else None
        except OSError:
            return None

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout):
            if f:
                f.close()


class LocalExecutor:
    """A pool of ``n_workers`` warm sandbox workers (default: the number of CPUs)."""

    def __init__(
        self,
        n_workers: int | None = None,
        *,
        preload: Sequence[str] = DEFAULT_PRELOAD,
        max_output_bytes: int = 64 * 1024,
        max_procs: int = 64,
    ) -> None:
        self.n_workers = n_workers or os.cpu_count() or 1
        self.preload = tuple(preload)
        self.max_output_bytes = max_output_bytes
        self.max_procs = max_procs
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._all: list[_Worker] = []
        self._lock = threading.Lock()
        self._closed = False
        for slot in range(self.n_workers):
            self._spawn(slot)
        atexit.register(self.close)

    def _spawn(self, slot: int) -> None:
        w = _Worker(slot, self.preload)
        with self._lock:
            self._all.append(w)
        self._idle.put(w)

    def _retire(self, w: _Worker) -> None:
        with self._lock:
            if w in self._all:
                self._all.remove(w)
        w.close()

    def execute(
        self, code: str, *, stdin: str | None = None, timeout_s: float = 60.0, memory_mb: int = 2048
    ) -> ExecResult:
        """Run ``code`` in a fresh sandboxed child of a warm worker."""
        if self._closed:
            raise RuntimeError("the executor is closed")
        w = self._idle.get()
        req = {
            "code": code,
            "stdin": stdin,
            "timeout_s": timeout_s,
            "memory_mb": memory_mb,
            "max_output_bytes": self.max_output_bytes,
            "max_procs": self.max_procs,
        }
        t0 = time.monotonic()
        reply = w.call(req, wait_s=timeout_s + 10.0)
        if reply is None:  # the worker died or hung: replace it
            self._retire(w)
            self._spawn(w.slot)
            return ExecResult(
                "sandbox_error",
                stderr="sandbox worker died during the call; it was replaced",
                duration_s=time.monotonic() - t0,
            )
        self._idle.put(w)
        return ExecResult(
            status=reply["status"],
            stdout=reply.get("stdout", ""),
            stderr=reply.get("stderr", ""),
            exit_code=reply.get("exit_code"),
            duration_s=float(reply.get("duration_s", time.monotonic() - t0)),
            truncated=bool(reply.get("truncated", False)),
            network_isolated=bool(reply.get("network_isolated", False)),
        )

    def execute_many(self, codes: Sequence[str], **kwargs) -> list[ExecResult]:
        """Run many snippets concurrently, one per worker; results in input order."""
        with ThreadPoolExecutor(max_workers=self.n_workers) as pool:
            return list(pool.map(lambda c: self.execute(c, **kwargs), codes))

    def close(self) -> None:
        self._closed = True
        with self._lock:
            workers, self._all = self._all, []
        for w in workers:
            w.close()

    def __enter__(self) -> LocalExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
