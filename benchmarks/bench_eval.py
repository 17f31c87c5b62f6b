"""Evaluation benchmarks. Part 1: grading throughput of the strict and math-verify graders.

``bench_graders(n)`` grades ``n`` synthetic math responses (mixed right and wrong, in the
forms models produce: plain and leading-zero integers, fractions in LaTeX and as
decimals, spaces in the box, several boxes, ``\\boxed 5``, boxes outside the strict
window, no box, thinking blocks) with each grader, in one run, and returns answers/s and
accuracy per grader. math-verify runs three ways: in the main thread with its signal
timeouts (what ``grade`` does there), from worker threads through the process pool (what
``grade`` does off the main thread), and in one thread without timeouts (unsafe, not
offered: the floor the other two are measured against).

Run: ``python benchmarks/bench_eval.py [--n N]``.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import threading
import time
from collections.abc import Callable

from sodctl.rewards import GradeResult, grade_many
from sodctl.rewards.math_verify_grader import MathVerifyPool, verify_here

FILLER = (
    "Let me set up the equations carefully.",
    "Using the tool to verify the arithmetic gives the same value.",
    "We substitute back and simplify the expression.",
    "By symmetry the two cases contribute equally.",
    "The observation confirms the intermediate result.",
    "Now we count the remaining configurations.",
)


def _answer_forms(rng: random.Random) -> tuple[str, str]:
    """(ground truth, the final part of a response)."""
    kind = rng.random()
    if kind < 0.75:  # AIME-like integers
        gold = rng.randint(0, 999)
        right = rng.random() < 0.5
        value = gold if right else gold + rng.choice([-2, -1, 1, 7, 100])
        form = rng.choice(
            [
                "So the answer is $\\boxed{%s}$.",
                "Therefore the final answer is \\boxed{%s}",
                "\\boxed{0%s}",  # leading zero: strict fails, math-verify passes
                "\\boxed{ %s }",  # spaces: the same
                "\\boxed{%s.0}",
                "First \\boxed{12}, but correcting it: \\boxed{%s}",
                "The answer is \\boxed %s",  # no brace: strict fails
                "\\boxed{%s} " + "and that completes the check of every case we considered. " * 2,
                "The answer is %s.",  # no box at all
            ]
        )
        return str(gold), form.replace("%s", str(value))
    p, q = rng.randint(1, 40), rng.randint(41, 97)
    gold = f"\\frac{{{p}}}{{{q}}}"
    if rng.random() < 0.5:
        return gold, rng.choice(
            [
                f"\\boxed{{\\frac{{{p}}}{{{q}}}}}",
                f"\\boxed{{\\dfrac{{{p}}}{{{q}}}}}",
                f"\\boxed{{{p}/{q}}}",
            ]
        )
    return gold, f"\\boxed{{\\frac{{{p + 1}}}{{{q}}}}}"


def synthetic_math(n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    responses, golds = [], []
    for _ in range(n):
        gold, tail = _answer_forms(rng)
        body = " ".join(rng.choice(FILLER) for _ in range(rng.randint(5, 40)))
        think = f"<think>{body}</think>" if rng.random() < 0.5 else body
        responses.append(f"{think}\n{tail}")
        golds.append(gold)
    return responses, golds


ROWS = {
    "strict": "strict",
    "math-verify": "math-verify (main thread, signal timeouts)",
    "math-verify-threads": "math-verify (a thread per CPU -> worker processes)",
    "math-verify-unsafe": "math-verify (one thread, no timeouts; reference)",
}


def _timed(fn: Callable[[], list[GradeResult]]) -> tuple[float, list[GradeResult]]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def _pool_from_threads(responses: list[str], golds: list[str], threads: int) -> list[GradeResult]:
    pool = MathVerifyPool(threads)
    pool.start()  # worker start-up (about 1 s each) stays outside the timed part
    out: list[GradeResult | None] = [None] * len(responses)

    def work(k: int) -> None:
        for i in range(k, len(responses), threads):
            out[i] = pool.verify(responses[i], golds[i], 5)

    t0 = time.perf_counter()
    ts = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    elapsed = time.perf_counter() - t0
    pool.close()
    return elapsed, [r for r in out if r is not None]  # type: ignore[return-value]


def bench_graders(n: int = 10_000, threads: int | None = None) -> dict[str, dict[str, float]]:
    """{row: {answers_per_s, ms_per_answer, accuracy_pct}} on ``n`` synthetic math responses;
    the rows are the keys of ``ROWS``. ``threads`` (default: CPUs) for the pool row."""
    threads = threads or os.cpu_count() or 1
    responses, golds = synthetic_math(n)
    logging.disable(logging.WARNING)  # math-verify logs timeouts with the whole answer
    verify_here("\\boxed{1}", "1", 5)  # import math-verify outside the timed part
    rows: dict[str, tuple[float, list[GradeResult]]] = {
        "strict": _timed(lambda: grade_many(responses, golds, grader="strict")),
        "math-verify": _timed(lambda: grade_many(responses, golds, grader="math-verify")),
        "math-verify-threads": _pool_from_threads(responses, golds, threads),
        "math-verify-unsafe": _timed(
            lambda: [verify_here(r, g, None) for r, g in zip(responses, golds)]
        ),
    }
    logging.disable(logging.NOTSET)
    return {
        name: {
            "answers_per_s": n / elapsed,
            "ms_per_answer": elapsed / n * 1e3,
            "accuracy_pct": 100.0 * sum(r.correct for r in results) / n,
        }
        for name, (elapsed, results) in rows.items()
    }


def print_graders(results: dict[str, dict[str, float]], n: int) -> None:
    cpus = os.cpu_count()
    print(f"\n[1] grading throughput, {n:,} synthetic math responses, {cpus} CPUs")
    print(f"  {'grader':50s} {'answers/s':>10s} {'ms/answer':>10s} {'accuracy':>9s}")
    for key, row in results.items():
        print(
            f"  {ROWS[key]:50s} {row['answers_per_s']:10,.0f} {row['ms_per_answer']:10.3f} "
            f"{row['accuracy_pct']:8.1f}%"
        )
    strict, mv = results["strict"]["answers_per_s"], results["math-verify"]["answers_per_s"]
    pool = results["math-verify-threads"]["answers_per_s"]
    print(f"  strict is {strict / mv:,.0f}x faster than math-verify in the main thread;")
    print(f"  math-verify through the worker processes: {pool / mv:.2f}x the main thread's rate")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000, help="responses graded per grader")
    args = ap.parse_args()
    print_graders(bench_graders(args.n), args.n)


if __name__ == "__main__":
    main()
