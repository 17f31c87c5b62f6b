"""The sandbox side of one code test: run the solution, check its answer, print a verdict.

This module is self-contained (standard library only): ``code.py`` sends its source,
followed by one call of ``run_stdin_test`` or ``run_functional_test``, to an executor as
the code to run, and imports it in the grader process only to test the comparisons.
(LeetCode-shaped tests do without it: their verdict is the program's exit status.)
The output check runs inside the sandbox so that large outputs never pass through the
executor's output cap; the program's stdout goes to an in-memory file, not to the
executor, and the only line the harness prints is its verdict::

    <tag>{"passed": true|false, "reason": "..."}

``tag`` carries a nonce chosen per test by the grader. The harness keeps honest programs
from disturbing the verdict; it is no defence against code written to forge one (it runs
in the same process).

Comparisons (``outputs_match``), for stdin/stdout tests:

* ``released`` (the default): the released scorer's rule: equal after removing the
  trailing newlines of both, exactly (no other whitespace or number normalisation).
* ``lcb`` (LiveCodeBench's rule): strip the whole output, split it into lines, strip
  each line; the line counts must agree; each line must be equal as text, or else both
  lines must consist only of numbers (``Decimal`` tokens) with the same count, equal
  token by token. LiveCodeBench compares those numbers exactly (``Decimal('1.50') ==
  Decimal('1.5')``, no tolerance); ``number_tol > 0`` accepts
  ``|a - b| <= number_tol * max(1, |b|)`` instead (absolute-or-relative error).

Functional tests pass the JSON-decoded argument lines to the method and compare the
return value, after a JSON round trip (so tuples equal lists, at every depth), with the
JSON-decoded expected output.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
import traceback
from decimal import Decimal, InvalidOperation

# What LeetCode / competitive-programming solutions expect to exist without importing it.
PRELUDE = """\
import sys, os, io, re, math, json, string, random, heapq, bisect, itertools, functools
import collections, operator, statistics, copy, datetime
from typing import *
from collections import *
from itertools import *
from functools import *
from heapq import *
from bisect import *
from math import *
from operator import *
from string import *
from builtins import *  # undo the shadowing of pow, abs, ... by the star imports
inf = float('inf')
sys.setrecursionlimit(50000)
"""


def _short(text: str, n: int = 60) -> str:
    return text if len(text) <= n else text[: n // 2] + "..." + text[-n // 2 :]


def _decimals(line: str) -> list[Decimal] | None:
    try:
        return [Decimal(tok) for tok in line.split()]
    except (InvalidOperation, ValueError):
        return None


def _numbers_equal(a: Decimal, b: Decimal, tol: float) -> bool:
    if a == b:
        return True
    if tol <= 0 or not (a.is_finite() and b.is_finite()):
        return False
    return abs(a - b) <= Decimal(repr(tol)) * max(Decimal(1), abs(b))


def outputs_match(got: str, expected: str, compare: str = "released", number_tol: float = 0.0):
    """(equal?, why not) for a program's stdout against the expected output."""
    if compare == "released":
        if got.rstrip("\n") == expected.rstrip("\n"):
            return True, ""
        return False, f"output {_short(got.strip())!r} != expected {_short(expected.strip())!r}"
    got_lines = [line.strip() for line in got.strip().split("\n")]
    exp_lines = [line.strip() for line in expected.strip().split("\n")]
    if len(got_lines) != len(exp_lines):
        return False, f"{len(got_lines)} output lines, expected {len(exp_lines)}"
    for i, (g, e) in enumerate(zip(got_lines, exp_lines)):
        if g == e:
            continue
        gn, en = _decimals(g), _decimals(e)
        if (
            gn is None
            or en is None
            or len(gn) != len(en)
            or not all(_numbers_equal(a, b, number_tol) for a, b in zip(gn, en))
        ):
            return False, f"line {i + 1}: {_short(g)!r} != expected {_short(e)!r}"
    return True, ""


def values_match(value, expected_json: str):
    """(equal?, why not) for a functional test's return value against the JSON-encoded expected."""
    try:
        got = json.loads(json.dumps(value))
    except (TypeError, ValueError) as e:
        return False, f"return value is not JSON-serialisable: {e}"
    try:
        want = json.loads(expected_json)
    except ValueError:
        want = expected_json  # a bare string expected output
    if got == want:
        return True, ""
    return False, f"returned {_short(json.dumps(got))} != expected {_short(json.dumps(want))}"


def _memfile(name: str, data: bytes = b"") -> int:
    try:
        fd = os.memfd_create(name)
    except (AttributeError, OSError):  # no memfd: a file in the (fresh) working directory
        fd = os.open(f".{name}", os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        os.unlink(f".{name}")
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def _read_all(fd: int) -> str:
    os.lseek(fd, 0, os.SEEK_SET)
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", "replace")


def _describe(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip().rstrip(":")
    return "runtime error: " + _short(text, 200)


def _run(src: str, name: str, stdin: bytes, after):
    """Run ``src`` as module ``name`` with ``stdin`` on fd 0 and fd 1 captured; then call
    ``after(namespace)`` (still captured). Returns (captured stdout, error or None, result)."""
    in_fd = _memfile("stdin", stdin)
    os.dup2(in_fd, 0)
    os.close(in_fd)
    out_fd = _memfile("stdout")
    real_stdout = sys.stdout
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(out_fd, 1)
    error, result = None, None
    try:
        namespace = {"__name__": name, "__builtins__": __builtins__}
        exec(PRELUDE, namespace)
        exec(compile(src, "<solution>", "exec"), namespace)
        result = after(namespace)
        for t in threading.enumerate():  # what interpreter shutdown would wait for
            if t is not threading.current_thread() and not t.daemon:
                t.join()
    except SystemExit:
        pass  # LiveCodeBench ignores exit(): the output so far is the answer
    except BaseException as e:  # the program's failure is the verdict
        error = _describe(e)
        traceback.print_exc()
    finally:
        for stream in {id(s): s for s in (sys.stdout, real_stdout)}.values():
            with contextlib.suppress(Exception):  # a closed or replaced stream
                stream.flush()
        sys.stdout = real_stdout
        os.dup2(saved, 1)
        os.close(saved)
    return _read_all(out_fd), error, result


def _verdict(tag: str, passed: bool, reason: str) -> None:
    line = tag + json.dumps({"passed": bool(passed), "reason": reason}) + "\n"
    os.write(1, line.encode())


def run_stdin_test(
    src: str, stdin: str, expected: str, compare: str, number_tol: float, tag: str
) -> None:
    out, error, _ = _run(src, "__main__", stdin.encode(), lambda ns: None)
    if error is not None:
        _verdict(tag, False, error)
        return
    _verdict(tag, *outputs_match(out, expected, compare, number_tol))


def run_functional_test(src: str, fn_name: str, args_text, expected, tag: str) -> None:
    if isinstance(args_text, str):
        args = [json.loads(line) for line in args_text.split("\n") if line.strip()]
    else:
        args = list(args_text)

    def call(namespace):
        cls = namespace.get("Solution")
        if isinstance(cls, type) and hasattr(cls, fn_name):
            target = getattr(cls(), fn_name)
        elif callable(namespace.get(fn_name)):
            target = namespace[fn_name]
        else:
            raise LookupError(f"no Solution.{fn_name} and no function {fn_name}")
        return target(*args)

    _, error, value = _run(src, "solution", b"", call)
    if error is not None:
        _verdict(tag, False, error)
        return
    expected_json = expected if isinstance(expected, str) else json.dumps(expected)
    _verdict(tag, *values_match(value, expected_json))
