"""A SandboxFusion client with the same interface as ``LocalExecutor``.

SandboxFusion is the HTTP code sandbox the authors ran the tool on (REFERENCE §6).
One call is one ``POST {url}/run_code`` with a JSON body
``{code, language, compile_timeout, run_timeout, memory_limit_MB, stdin}``; the
answer is ``{status: Success|Failed|SandboxError, message, compile_result,
run_result: {status: Finished|Error|TimeLimitExceeded, stdout, stderr,
return_code, execution_time}, ...}``.

How an answer becomes an ``ExecResult`` (``result_from_response``):

- ``Finished`` with return code 0: ``ok``; with another return code: ``error``,
  except that a run killed by SIGKILL (return code 137 or -9: the server's memory
  cgroup) or one whose traceback ends in ``MemoryError`` is ``memory``.
- ``TimeLimitExceeded``: ``timeout``.
- ``Error`` means *the sandbox* could not run the command (SandboxFusion raises
  it only when starting or waiting for the process failed, and then reports the
  whole call as ``SandboxError``), so it is ``sandbox_error``, not a fault of the code.
- A compile step (compiled languages only) that failed is ``error`` (or
  ``timeout``), with the compiler's output.

Retries: connection failures (refused, reset, dropped), HTTP 5xx and a
top-level ``SandboxError`` are retried ``retries`` times with exponential
backoff (``backoff_s * 2**attempt``); HTTP 4xx, an answer that is not the
expected JSON, and a request that outlived ``request_timeout_s`` are not (the
first two would fail again, the last would multiply a long wait). Whatever
still fails is ``sandbox_error`` with the reason in ``stderr``.

``url`` may be the server's root (``http://host:8080``) or the endpoint itself
(``http://host:8080/run_code``, as the config's example writes it).
Only the standard library is used (no connection pooling: a request per call).
"""

from __future__ import annotations

import http.client
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sodctl.tools.result import ExecResult

_SIGKILL_CODES = (137, -9)


class _TokenBucket:
    """At most ``rate`` acquisitions per second on average, bursts of up to ``max(1, rate)``."""

    def __init__(
        self,
        rate: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError(f"rate_limit_per_s must be > 0, got {rate}")
        self.rate = rate
        self.capacity = max(1.0, rate)
        self._tokens = self.capacity
        self._clock, self._sleep = clock, sleep
        self._last = clock()
        self._lock = threading.Lock()

    def acquire(self) -> None:
        while True:
            with self._lock:
                now = self._clock()
                self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
                self._last = now
                if self._tokens >= 1.0:
                    self._tokens -= 1.0
                    return
                wait = (1.0 - self._tokens) / self.rate
            self._sleep(wait)


class _Retryable(Exception):
    """A failure worth another attempt: the connection failed or the server said 5xx."""


class _Fatal(Exception):
    """A failure that another attempt would repeat (4xx, not JSON) or that took too long."""


def _sandbox_error(message: str, duration_s: float = 0.0) -> ExecResult:
    return ExecResult("sandbox_error", stderr=f"SandboxFusion: {message}", duration_s=duration_s)


def _is_memory_kill(return_code: int | None, stderr: str) -> bool:
    if return_code in _SIGKILL_CODES:
        return True
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    return bool(lines) and lines[-1].startswith("MemoryError")


def _is_sandbox_side(payload: Any) -> bool:
    return isinstance(payload, dict) and payload.get("status") == "SandboxError"


def result_from_response(payload: Any, wall_s: float = 0.0) -> ExecResult:
    """Map one ``/run_code`` answer to an ``ExecResult`` (see the module docstring)."""
    if not isinstance(payload, dict) or "status" not in payload:
        return _sandbox_error(f"unexpected answer: {str(payload)[:200]}", wall_s)
    if payload["status"] == "SandboxError":
        return _sandbox_error(f"SandboxError: {str(payload.get('message') or '')[:500]}", wall_s)

    compile_result = payload.get("compile_result")
    if isinstance(compile_result, dict):
        c_status, c_code = compile_result.get("status"), compile_result.get("return_code")
        if c_status == "TimeLimitExceeded":
            return ExecResult("timeout", stderr="compilation timed out", duration_s=wall_s)
        if c_status == "Finished" and c_code not in (0, None):
            return ExecResult(
                "error",
                stdout=compile_result.get("stdout") or "",
                stderr=compile_result.get("stderr") or "",
                exit_code=c_code,
                duration_s=float(compile_result.get("execution_time") or wall_s),
            )
        if c_status not in ("Finished", None):
            return _sandbox_error(f"compile step status {c_status!r}", wall_s)

    run = payload.get("run_result")
    if not isinstance(run, dict):
        return _sandbox_error(f"answer without run_result (status {payload['status']!r})", wall_s)
    stdout, stderr = run.get("stdout") or "", run.get("stderr") or ""
    code = run.get("return_code")
    duration = float(run.get("execution_time") or wall_s)
    status = run.get("status")
    if status == "TimeLimitExceeded":
        return ExecResult("timeout", stdout, stderr, exit_code=code, duration_s=duration)
    if status == "Error":
        return _sandbox_error(f"the sandbox could not run the code: {stderr[:500]}", duration)
    if status != "Finished":
        return _sandbox_error(f"unknown run status {status!r}", duration)
    if code == 0 or (code is None and payload["status"] == "Success"):
        return ExecResult("ok", stdout, stderr, exit_code=code, duration_s=duration)
    kind = "memory" if _is_memory_kill(code, stderr) else "error"
    return ExecResult(kind, stdout, stderr, exit_code=code, duration_s=duration)


class SandboxFusionExecutor:
    """Runs code on a SandboxFusion server; ``execute``/``execute_many`` as ``LocalExecutor``.

    max_concurrency     requests in flight at once (a semaphore shared by all threads).
    rate_limit_per_s    optional token bucket on requests (retries included).
    retries, backoff_s  extra attempts after the first, sleeping ``backoff_s * 2**attempt``.
    request_timeout_s   HTTP timeout per attempt; default compile + run timeout + 30 s.
    compile_timeout_s   sent as ``compile_timeout`` (compiled languages only; 60 s as released).
    """

    def __init__(
        self,
        url: str,
        *,
        max_concurrency: int = 8,
        rate_limit_per_s: float | None = None,
        retries: int = 3,
        backoff_s: float = 0.5,
        request_timeout_s: float | None = None,
        language: str = "python",
        compile_timeout_s: float = 60.0,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"sandbox url must start with http:// or https://, got {url!r}")
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be >= 1, got {max_concurrency}")
        if retries < 0 or backoff_s < 0:
            raise ValueError("retries and backoff_s must be >= 0")
        base = url.rstrip("/")
        self.endpoint = base if base.endswith("/run_code") else base + "/run_code"
        self.max_concurrency = max_concurrency
        self.retries = retries
        self.backoff_s = backoff_s
        self.request_timeout_s = request_timeout_s
        self.language = language
        self.compile_timeout_s = compile_timeout_s
        self._slots = threading.BoundedSemaphore(max_concurrency)
        self._bucket = _TokenBucket(rate_limit_per_s) if rate_limit_per_s else None
        self._closed = False

    def _post(self, body: bytes, timeout: float) -> Any:
        """One HTTP attempt: the decoded JSON, or an exception saying what went wrong."""
        if self._bucket is not None:
            self._bucket.acquire()
        req = urllib.request.Request(
            self.endpoint, data=body, headers={"Content-Type": "application/json"}, method="POST"
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as e:
            detail = e.read()[:300].decode("utf-8", "replace")
            if e.code >= 500:
                raise _Retryable(f"HTTP {e.code}: {detail}") from e
            raise _Fatal(f"HTTP {e.code}: {detail}") from e
        except TimeoutError as e:
            raise _Fatal(f"no answer within {timeout:g} s") from e
        except urllib.error.URLError as e:
            if isinstance(e.reason, TimeoutError):
                raise _Fatal(f"no answer within {timeout:g} s") from e
            raise _Retryable(f"cannot reach {self.endpoint}: {e.reason}") from e
        except (ConnectionError, http.client.HTTPException, OSError) as e:
            raise _Retryable(f"connection to {self.endpoint} failed: {e!r}") from e
        try:
            return json.loads(raw)
        except ValueError as e:
            raise _Fatal(f"answer is not JSON: {raw[:200]!r}") from e

    def execute(
        self, code: str, *, stdin: str | None = None, timeout_s: float = 60.0, memory_mb: int = 2048
    ) -> ExecResult:
        """Run ``code`` on the server; never raises for server or network trouble."""
        if self._closed:
            raise RuntimeError("the executor is closed")
        body = json.dumps(
            {
                "code": code,
                "language": self.language,
                "compile_timeout": self.compile_timeout_s,
                "run_timeout": timeout_s,
                "memory_limit_MB": memory_mb,
                "stdin": stdin if stdin is not None else "",
            }
        ).encode()
        timeout = self.request_timeout_s or (self.compile_timeout_s + timeout_s + 30.0)
        t0 = time.monotonic()
        last = ""
        with self._slots:
            for attempt in range(self.retries + 1):
                if attempt:
                    time.sleep(self.backoff_s * 2 ** (attempt - 1))
                try:
                    payload = self._post(body, timeout)
                except _Retryable as e:
                    last = str(e)
                    continue
                except _Fatal as e:
                    return _sandbox_error(str(e), time.monotonic() - t0)
                result = result_from_response(payload, time.monotonic() - t0)
                if not _is_sandbox_side(payload):
                    return result
                last = result.stderr.removeprefix("SandboxFusion: ")
        attempts = self.retries + 1
        return _sandbox_error(
            f"{last} (after {attempts} attempt{'s' * (attempts > 1)})", time.monotonic() - t0
        )

    def execute_many(self, codes: Sequence[str], **kwargs: Any) -> list[ExecResult]:
        """Run many snippets concurrently (at most ``max_concurrency``); results in input order."""
        if not codes:
            return []
        with ThreadPoolExecutor(max_workers=min(self.max_concurrency, len(codes))) as pool:
            return list(pool.map(lambda c: self.execute(c, **kwargs), codes))

    def close(self) -> None:
        self._closed = True

    def __enter__(self) -> SandboxFusionExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
