"""The local executor: results, limits, and code that attacks its sandbox."""

from __future__ import annotations

import os
import shutil
import tempfile
import textwrap

import pytest

from sodctl.tools import LocalExecutor

pytestmark = pytest.mark.integration

ROOT = os.geteuid() == 0


@pytest.fixture(scope="module")
def ex():
    with LocalExecutor(2) as executor:
        yield executor


def run(ex, code, **kw):
    kw.setdefault("timeout_s", 5)
    kw.setdefault("memory_mb", 1024)
    return ex.execute(textwrap.dedent(code), **kw)


def test_ok_error_exit_and_stdin(ex):
    r = run(ex, "print(6 * 7)")
    assert (r.status, r.stdout, r.exit_code) == ("ok", "42\n", 0)
    r = run(ex, "1/0")
    assert r.status == "error" and r.exit_code == 1 and "ZeroDivisionError" in r.stderr
    assert "sodctl" not in r.stderr  # the sandbox's own frames stay out of the traceback
    r = run(ex, "import sys; print('x'); sys.exit(3)")
    assert (r.status, r.exit_code, r.stdout) == ("error", 3, "x\n")
    r = run(ex, "a, b = map(int, input().split()); print(a + b)", stdin="2 40\n")
    assert r.stdout == "42\n"
    r = run(ex, "def f(:\n  pass")
    assert r.status == "error" and "SyntaxError" in r.stderr


def test_preloaded_modules_and_no_state_between_calls(ex):
    r = run(ex, "import sympy, numpy; print(sympy.factorint(360), int(numpy.arange(5).sum()))")
    assert r.stdout == "{2: 3, 3: 2, 5: 1} 10\n"
    run(ex, "import math; math.SECRET = 1; open('f.txt', 'w').write('x'); GLOBAL = 5")
    for _ in range(2):  # whichever worker serves it
        r = run(
            ex,
            "import math, os; print(hasattr(math, 'SECRET'), os.listdir('.'), 'GLOBAL' in globals())",
        )
        assert r.stdout == "False [] False\n"


def test_timeout_kills_the_process_group(ex):
    r = run(ex, "import time; time.sleep(30)", timeout_s=1)
    assert r.status == "timeout" and r.duration_s < 5
    r = run(ex, "while True: pass", timeout_s=1)
    assert r.status == "timeout"


def test_memory_limit(ex):
    r = run(ex, "x = bytearray(4 * 1024**3)", memory_mb=512)
    assert r.status == "memory"
    r = run(ex, "import numpy as np; x = np.ones((1024, 1024, 1024))", memory_mb=512)
    assert r.status == "memory"


def test_output_is_capped(ex):
    r = run(ex, "print('x' * 10_000_000)")
    assert r.truncated and len(r.stdout) <= 64 * 1024


def test_no_network(ex):
    r = run(
        ex,
        """
        import socket
        try:
            socket.create_connection(("127.0.0.1", 22), timeout=2)
            print("connected")
        except OSError as e:
            print("blocked", e.errno)
    """,
    )
    assert r.stdout.startswith("blocked")
    if ROOT:
        assert r.network_isolated


def test_fork_bomb_is_contained(ex):
    r = run(
        ex,
        """
        import os
        while True:
            try:
                os.fork()
            except OSError:
                pass
    """,
        timeout_s=2,
    )
    assert r.status in ("timeout", "error")
    assert run(ex, "print('alive')").stdout == "alive\n"


def test_escaped_daemon_is_killed(ex):
    # a grandchild that leaves the process group must not outlive the call
    r = run(
        ex,
        """
        import os, time
        if os.fork() == 0:
            os.setsid()
            time.sleep(60)
        print(os.getpid())
    """,
    )
    assert r.status == "ok"
    if ROOT:
        r2 = run(
            ex,
            """
            import os
            me = os.getuid()
            mine = []
            for p in os.listdir('/proc'):
                try:
                    if p.isdigit() and os.stat('/proc/' + p).st_uid == me:
                        mine.append(p)
                except FileNotFoundError:  # another process exited meanwhile
                    pass
            print(len(mine))
        """,
        )
        assert r2.stdout == "1\n"  # only the process asking


@pytest.mark.skipif(
    not ROOT, reason="file-system and signal containment need root (uid switch, mount namespace)"
)
def test_writes_outside_its_directory_and_parent_kill_are_contained(ex):
    r = run(
        ex,
        """
        import os
        for path in ("/etc/sodctl-evil", "/root/sodctl-evil", os.path.expanduser("~") + "/../sodctl-evil"):
            try:
                open(path, "w").write("x")
                print("wrote", path)
            except OSError as e:
                print("denied", e.errno)
        open("/tmp/sodctl-evil", "w").write("x")  # private tmpfs: gone after the call
    """,
    )
    assert "wrote /etc" not in r.stdout and "wrote /root" not in r.stdout
    assert not os.path.exists("/tmp/sodctl-evil")
    r = run(ex, "import os, signal; os.kill(os.getppid(), signal.SIGKILL)")
    assert r.status == "error" and "PermissionError" in r.stderr
    assert run(ex, "print('still serving')").stdout == "still serving\n"


def test_environment_is_scrubbed(ex):
    os.environ["SODCTL_TEST_SECRET"] = "hunter2"
    try:
        with LocalExecutor(1) as fresh:
            r = fresh.execute(
                textwrap.dedent("""
                import os
                print("SODCTL_TEST_SECRET" in os.environ)
                try:
                    print("hunter2" in open(f"/proc/{os.getppid()}/environ").read())
                except OSError:
                    print("unreadable")
            """),
                timeout_s=5,
            )
    finally:
        del os.environ["SODCTL_TEST_SECRET"]
    assert r.stdout.splitlines()[0] == "False"
    assert r.stdout.splitlines()[1] in ("False", "unreadable")


def test_concurrent_calls(ex):
    results = ex.execute_many([f"print({i} ** 2)" for i in range(8)], timeout_s=5)
    assert [r.stdout for r in results] == [f"{i**2}\n" for i in range(8)]


def test_worker_death_is_reported_and_the_pool_recovers():
    with LocalExecutor(1) as one:
        w = one._idle.queue[0]
        w.proc.kill()
        w.proc.wait()
        r = one.execute("print(1)", timeout_s=5)
        assert r.status == "sandbox_error"
        assert one.execute("print(2)", timeout_s=5).stdout == "2\n"


def test_two_executors_never_share_a_sandbox_uid(ex):
    # a second pool's clean-up (which kills whatever of its uid survives a call) must not
    # touch the first pool's running code
    with LocalExecutor(1) as other:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(1) as pool:
            slow = pool.submit(
                run, ex, "import os, time; time.sleep(1.5); print(os.getuid())", timeout_s=10
            )
            uids = {run(other, "import os; print(os.getuid())").stdout for _ in range(10)}
            r = slow.result()
    assert r.status == "ok", r.stderr
    if ROOT:
        assert r.stdout not in uids


def test_a_call_imports_what_lives_under_the_private_tmp(monkeypatch, tmp_path):
    # a virtualenv in /tmp: the call's private /tmp must not hide the packages it holds,
    # and must still hide the rest of /tmp
    site = tempfile.mkdtemp(prefix="sodctl-site-", dir="/tmp")
    try:
        os.chmod(site, 0o755)
        module = os.path.join(site, "sodctl_probe_site.py")
        with open(module, "w") as f:
            f.write("VALUE = 42\n")
        os.chmod(module, 0o644)
        monkeypatch.syspath_prepend(site)  # what a worker's PYTHONPATH is made of
        with LocalExecutor(n_workers=1, preload=["fractions"]) as lean:
            r = run(lean, "import sodctl_probe_site as m; print(m.VALUE)")
            assert (r.status, r.stdout) == ("ok", "42\n"), r.stderr
            r = run(lean, f"import os; print(os.path.exists({str(tmp_path)!r}))")
            assert r.stdout == ("False\n" if r.network_isolated else "True\n")
    finally:
        shutil.rmtree(site)
