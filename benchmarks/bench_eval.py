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


class _Timed:
    """Wraps an engine or a tool and adds up the wall time spent inside it."""

    def __init__(self, inner, method: str) -> None:
        self.inner, self.method, self.seconds = inner, method, 0.0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def call(self, *args, **kwargs):
        t0 = time.perf_counter()
        try:
            return getattr(self.inner, self.method)(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - t0


def bench_eval_loop(n_problems: int = 64, k: int = 8) -> dict[str, float]:
    """The eval loop's own cost per sample: wall time minus generation and tool time.

    A scripted model (one tool call, then an answer) and the real sandboxed code
    interpreter; what remains is prompt rendering, tool-call parsing, observation
    templating, grading (strict and math-verify) and writing the records.
    """
    import tempfile
    from pathlib import Path

    from sodctl.data.tiny import load_tiny_arith
    from sodctl.eval.runner import EvalLabel, evaluate_bench
    from sodctl.models.tiny import build_tokenizer
    from sodctl.rewards import grade
    from sodctl.rollout.agent import AgentLoopConfig
    from sodctl.rollout.engine import SamplingParams
    from sodctl.rollout.scripted import ScriptedEngine
    from sodctl.tools import LocalExecutor
    from sodctl.tools.code_interpreter import CodeInterpreter
    from sodctl.tools.parsing import render_tool_call

    tok = build_tokenizer()

    def script(prompt: str, turn: int) -> str:
        expr = prompt.split("Compute ")[1].split(".")[0]
        if turn == 0:
            return (
                "Let me compute it.\n"
                + render_tool_call("code_interpreter", {"code": f"print({expr})"})
                + "<|im_end|>"
            )
        return f"The result is \\boxed{{{eval(expr)}}}.<|im_end|>"

    problems = (load_tiny_arith() * (n_problems // 30 + 1))[:n_problems]
    problems = [
        type(p)(p.bench, str(i), p.kind, p.prompt, p.ground_truth) for i, p in enumerate(problems)
    ]
    with LocalExecutor() as ex, tempfile.TemporaryDirectory() as tmp:
        engine = _Timed(ScriptedEngine(tok, script), "generate")
        engine.generate = engine.call
        tool = _Timed(CodeInterpreter(ex, timeout_s=10), "run_many")
        tool.run_many = tool.call
        t0 = time.perf_counter()
        res = evaluate_bench(
            "tiny-arith", problems, engine=engine, tokenizer=tok, tool=tool, grade_fn=grade, k=k,
            graders=("strict", "math-verify"), params=SamplingParams(max_new_tokens=200),
            loop=AgentLoopConfig(max_response_tokens=600), out_dir=Path(tmp), label=EvalLabel("bench", "x", "y", 0),
            model="scripted", config={}, run={}, batch_size=64,
        )  # fmt: skip
        wall = time.perf_counter() - t0
    n = n_problems * k
    assert res.summary["graders"]["strict"]["avg_at_k"] == 100.0, (
        "the scripted answers are all right"
    )
    return {"samples": n, "wall_s": wall, "gen_s": engine.seconds, "tool_s": tool.seconds,
            "overhead_ms_per_sample": 1e3 * (wall - engine.seconds - tool.seconds) / n}  # fmt: skip


def print_eval_loop(r: dict[str, float]) -> None:
    print(
        f"\n[2] eval loop overhead, {int(r['samples'])} samples (scripted model, real sandboxed tool, both graders)"
    )
    print(
        f"  wall {r['wall_s']:.2f} s = generation {r['gen_s']:.2f} s + tool {r['tool_s']:.2f} s + loop {r['wall_s'] - r['gen_s'] - r['tool_s']:.2f} s"
    )
    print(
        f"  overhead beyond generation and tool time: {r['overhead_ms_per_sample']:.2f} ms per sample"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000, help="responses graded per grader")
    ap.add_argument("--samples", type=int, default=64, help="problems for part 2 (x 8 samples)")
    args = ap.parse_args()
    print_graders(bench_graders(args.n), args.n)
    print_eval_loop(bench_eval_loop(args.samples))


if __name__ == "__main__":
    main()
