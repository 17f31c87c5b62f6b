"""The SandboxFusion client against a small local server that speaks its JSON."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from sodctl.tools import ExecResult, LocalExecutor, SandboxFusionExecutor
from sodctl.tools.sandbox_fusion import _TokenBucket, result_from_response

Reply = tuple[int, bytes]


def answer(
    run_status: str = "Finished",
    return_code: int | None = 0,
    stdout: str = "",
    stderr: str = "",
    status: str | None = None,
    execution_time: float = 0.01,
) -> dict:
    if status is None:
        ok = run_status == "Finished" and return_code == 0
        status = {"Error": "SandboxError"}.get(run_status, "Success" if ok else "Failed")
    return {
        "status": status,
        "message": "",
        "compile_result": None,
        "run_result": {
            "status": run_status,
            "execution_time": execution_time,
            "return_code": return_code,
            "stdout": stdout,
            "stderr": stderr,
        },
        "executor_pod_name": None,
        "files": {},
    }


def ok_json(payload: object) -> Reply:
    return 200, json.dumps(payload).encode()


class FakeSandbox:
    """A ``/run_code`` endpoint whose answers come from ``respond(request, attempt)``."""

    def __init__(self) -> None:
        self.respond: Callable[[dict, int], Reply] = lambda req, n: ok_json(answer(stdout="hi\n"))
        self.requests: list[dict] = []
        self.paths: list[str] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with fake.lock:
                    fake.requests.append(body)
                    fake.paths.append(self.path)
                    attempt = len(fake.requests)
                    fake.in_flight += 1
                    fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
                try:
                    code, data = fake.respond(body, attempt)
                finally:
                    with fake.lock:
                        fake.in_flight -= 1
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def sandbox() -> Iterator[FakeSandbox]:
    fake = FakeSandbox()
    yield fake
    fake.close()


def client(url: str, **kw) -> SandboxFusionExecutor:
    kw.setdefault("backoff_s", 0.0)
    return SandboxFusionExecutor(url, **kw)


@pytest.mark.unit
def test_ok_and_the_request_it_sends(sandbox):
    sandbox.respond = lambda req, n: ok_json(answer(stdout="42\n", execution_time=0.25))
    r = client(sandbox.url).execute("print(42)", stdin="1 2\n", timeout_s=7, memory_mb=512)
    assert r == ExecResult("ok", "42\n", "", exit_code=0, duration_s=0.25)
    assert sandbox.paths == ["/run_code"]
    assert sandbox.requests == [
        {
            "code": "print(42)",
            "language": "python",
            "compile_timeout": 60.0,
            "run_timeout": 7,
            "memory_limit_MB": 512,
            "stdin": "1 2\n",
        }
    ]


@pytest.mark.unit
@pytest.mark.parametrize("url_suffix", ["", "/", "/run_code", "/run_code/"])
def test_url_may_name_the_endpoint(sandbox, url_suffix):
    assert client(sandbox.url + url_suffix).execute("x").ok
    assert sandbox.paths == ["/run_code"]


@pytest.mark.unit
@pytest.mark.parametrize(
    ("reply", "status", "exit_code"),
    [
        (
            answer(return_code=1, stderr="Traceback ...\nZeroDivisionError: division by zero\n"),
            "error",
            1,
        ),
        (answer(return_code=3, stdout="partial\n"), "error", 3),
        (answer("TimeLimitExceeded", return_code=None, stdout="tick\n"), "timeout", None),
        (answer(return_code=1, stderr="Traceback ...\nMemoryError\n"), "memory", 1),
        (answer(return_code=137), "memory", 137),
    ],
    ids=["exception", "exit-3", "timeout", "MemoryError", "sigkill-137"],
)
def test_failed_runs_map_to_statuses(sandbox, reply, status, exit_code):
    sandbox.respond = lambda req, n: ok_json(reply)
    r = client(sandbox.url).execute("code")
    assert (r.status, r.exit_code) == (status, exit_code)
    assert (r.stdout, r.stderr) == (reply["run_result"]["stdout"], reply["run_result"]["stderr"])
    assert len(sandbox.requests) == 1  # the code's failures are never retried


@pytest.mark.unit
def test_500_then_success_is_retried(sandbox):
    sandbox.respond = lambda req, n: (500, b"busy") if n == 1 else ok_json(answer(stdout="ok\n"))
    r = client(sandbox.url, retries=3).execute("print('ok')")
    assert (r.status, r.stdout) == ("ok", "ok\n")
    assert len(sandbox.requests) == 2


@pytest.mark.unit
def test_persistent_500_is_a_sandbox_error_after_the_retries(sandbox):
    sandbox.respond = lambda req, n: (503, b"overloaded")
    r = client(sandbox.url, retries=2).execute("print(1)")
    assert r.status == "sandbox_error"
    assert "HTTP 503" in r.stderr and "overloaded" in r.stderr and "3 attempts" in r.stderr
    assert len(sandbox.requests) == 3


@pytest.mark.unit
def test_sandbox_error_answers_are_retried(sandbox):
    # SandboxFusion reports run_result Error (it could not start the process) as SandboxError.
    sandbox.respond = lambda req, n: ok_json(
        answer("Error", return_code=None, stderr="spawn failed")
        if n < 3
        else answer(stdout="fine\n")
    )
    r = client(sandbox.url, retries=3).execute("print('fine')")
    assert (r.status, r.stdout, len(sandbox.requests)) == ("ok", "fine\n", 3)

    sandbox.requests.clear()
    sandbox.respond = lambda req, n: ok_json(answer("Error", return_code=None, stderr="x"))
    r = client(sandbox.url, retries=1).execute("print(1)")
    assert r.status == "sandbox_error" and "SandboxError" in r.stderr
    assert len(sandbox.requests) == 2


@pytest.mark.unit
def test_4xx_is_not_retried(sandbox):
    sandbox.respond = lambda req, n: (422, b'{"detail": "bad language"}')
    r = client(sandbox.url, retries=3).execute("x")
    assert r.status == "sandbox_error" and "HTTP 422" in r.stderr and "bad language" in r.stderr
    assert len(sandbox.requests) == 1


@pytest.mark.unit
@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b"<html>gateway</html>", "not JSON"),
        (b'{"status": "Success"', "not JSON"),
        (b"[1, 2]", "unexpected answer"),
        (b'{"status": "Success", "message": ""}', "without run_result"),
        (json.dumps(answer("Exploded")).encode(), "unknown run status"),
    ],
    ids=["html", "truncated", "list", "no-run-result", "unknown-status"],
)
def test_malformed_answers_are_sandbox_errors(sandbox, body, needle):
    sandbox.respond = lambda req, n: (200, body)
    r = client(sandbox.url, retries=3).execute("x")
    assert r.status == "sandbox_error" and needle in r.stderr
    assert len(sandbox.requests) == 1


@pytest.mark.unit
def test_connection_refused_is_a_sandbox_error():
    with socket.socket() as s:  # a port that nothing listens on once closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = client(f"http://127.0.0.1:{port}", retries=2).execute("print(1)")
    assert r.status == "sandbox_error"
    assert "cannot reach" in r.stderr and "3 attempts" in r.stderr


@pytest.mark.unit
def test_a_request_that_outlives_its_timeout_is_not_retried(sandbox):
    def slow(req: dict, n: int) -> Reply:
        time.sleep(0.5)
        return ok_json(answer())

    sandbox.respond = slow
    r = client(sandbox.url, retries=3, request_timeout_s=0.1).execute("x")
    assert r.status == "sandbox_error" and "no answer within" in r.stderr
    assert len(sandbox.requests) == 1


@pytest.mark.unit
def test_concurrency_limit_is_respected(sandbox):
    limit = 3
    barrier = threading.Barrier(limit, timeout=5)  # proves `limit` requests do run together

    def meet(req: dict, n: int) -> Reply:
        barrier.wait()
        time.sleep(0.02)
        return ok_json(answer(stdout=req["code"]))

    sandbox.respond = meet
    with client(sandbox.url, max_concurrency=limit) as ex:
        codes = [f"c{i}" for i in range(4 * limit)]
        results = ex.execute_many(codes, timeout_s=5)
    assert [r.stdout for r in results] == codes  # input order
    assert sandbox.max_in_flight == limit


@pytest.mark.unit
def test_closed_executor_refuses_work(sandbox):
    ex = client(sandbox.url)
    ex.close()
    with pytest.raises(RuntimeError, match="closed"):
        ex.execute("x")


@pytest.mark.unit
def test_bad_arguments():
    with pytest.raises(ValueError, match="http"):
        SandboxFusionExecutor("localhost:8080")
    with pytest.raises(ValueError, match="max_concurrency"):
        SandboxFusionExecutor("http://h", max_concurrency=0)


@pytest.mark.unit
def test_compile_step_results():
    base = answer()
    failed = {**base, "status": "Failed", "run_result": None}
    r = result_from_response(
        {**failed, "compile_result": {"status": "Finished", "return_code": 1, "stderr": "e"}}
    )
    assert (r.status, r.stderr, r.exit_code) == ("error", "e", 1)
    r = result_from_response({**failed, "compile_result": {"status": "TimeLimitExceeded"}})
    assert r.status == "timeout"
    ok = {**base, "compile_result": {"status": "Finished", "return_code": 0}}
    assert result_from_response(ok).status == "ok"


@pytest.mark.unit
def test_token_bucket_spaces_requests_at_the_rate():
    now = [0.0]
    sleeps: list[float] = []

    def sleep(s: float) -> None:
        sleeps.append(s)
        now[0] += s

    bucket = _TokenBucket(2.0, clock=lambda: now[0], sleep=sleep)
    for _ in range(6):
        bucket.acquire()
    # a burst of 2 (one second's worth), then one every 0.5 s
    assert now[0] == pytest.approx(2.0)
    assert sleeps == pytest.approx([0.5, 0.5, 0.5, 0.5])
    with pytest.raises(ValueError):
        _TokenBucket(0)


@pytest.mark.integration
def test_against_a_server_that_really_runs_the_code(sandbox):
    """The server runs each request on a LocalExecutor and answers as SandboxFusion would."""
    sf_status = {"ok": "Finished", "error": "Finished", "memory": "Finished"}

    with LocalExecutor(2) as local:

        def run(req: dict, n: int) -> Reply:
            r = local.execute(
                req["code"],
                stdin=req["stdin"],
                timeout_s=req["run_timeout"],
                memory_mb=req["memory_limit_MB"],
            )
            status = sf_status.get(r.status, "TimeLimitExceeded")
            code = r.exit_code if status == "Finished" else None
            return ok_json(answer(status, code, r.stdout, r.stderr, execution_time=r.duration_s))

        sandbox.respond = run
        with client(sandbox.url, max_concurrency=2) as ex:
            results = ex.execute_many(
                ["print(6 * 7)", "1/0", "import time; time.sleep(5)", "print(input()[::-1])"],
                timeout_s=0.5,
                memory_mb=512,
                stdin="abc\n",
            )
    assert [r.status for r in results] == ["ok", "error", "timeout", "ok"]
    assert results[0].stdout == "42\n" and "ZeroDivisionError" in results[1].stderr
    assert results[3].stdout == "cba\n"
