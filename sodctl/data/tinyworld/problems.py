"""The tiny world's problem families, drawn deterministically from a seed.

Four families stand in for the paper's four benchmark columns. Each is easy with
the tool and hard without it for a ~1M-parameter character-level model: the
answer is a number the tool prints, to be copied (math, code) or matched against
the options (mcq).

==========  =========  =========================================================
family      column     example
==========  =========  =========================================================
math-a      AIME24     ``Compute 47 * 83 + 19.``                    -> 3920
math-b      AIME25     ``Compute (731 - 86) * 7.`` or ``What is 1234 mod 37?``
mcq         GPQA       ``Which option equals 37 * 12? (A) 444 (B) 434 ...`` -> A (the tool matches)
code        LCB        ``Read a and b from stdin; print a * b + 7.``
==========  =========  =========================================================

Every problem has a ``key`` naming its underlying computation; no two problems of
a world share one (math-a and mcq share the product namespace), so the eval, RL,
SFT and pretraining splits never hold the same computation twice.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from sodctl.data.loaders import ROW_MAPPERS, Problem

Family = Literal["math-a", "math-b", "mcq", "code"]
FAMILIES: tuple[Family, ...] = ("math-a", "math-b", "mcq", "code")
BENCH_OF: dict[Family, str] = {"math-a": "aime24", "math-b": "aime25", "mcq": "gpqa", "code": "lcb"}
KIND_OF: dict[Family, str] = {"math-a": "math", "math-b": "math", "mcq": "mcq", "code": "code"}
ABILITY_OF: dict[Family, str] = {
    "math-a": "math",
    "math-b": "math",
    "mcq": "science",
    "code": "code",
}
MCQ_DOMAIN = "Arithmetic"
LETTERS = "ABCD"
N_CODE_TESTS = 4


@dataclass(frozen=True)
class TinyProblem:
    """One problem, with everything the expert, the graders and OPSD need.

    setup/expr  the expert's tool code is ``setup`` lines then ``expr``, whose value the
                paper print rule shows (``value``); for code, ``setup`` binds the
                first example's ``a, b`` and ``value`` is its expected output.
    check       a second, confirming tool call (prints ``True``, or the second test's output).
    answer      the ground truth: the number, the option letter, or the tests spec (JSON).
    """

    family: Family
    key: tuple[Any, ...]
    text: str
    answer: str
    setup: str
    expr: str
    value: str
    check: str
    solution: str
    hint: str
    program: str | None = None
    tests: dict[str, list[str]] | None = None
    public: tuple[dict[str, str], ...] = ()

    @property
    def kind(self) -> str:
        return KIND_OF[self.family]

    def tool_code(self, expr: str | None = None) -> str:
        """``setup`` then ``expr`` (default: the problem's own expression)."""
        body = self.expr if expr is None else expr
        return f"{self.setup}\n{body}" if self.setup else body


def _product_key(a: int, b: int) -> tuple[Any, ...]:
    return ("mul", min(a, b), max(a, b))


def math_a(rng: random.Random) -> TinyProblem:
    a, b, c = rng.randint(11, 99), rng.randint(11, 99), rng.randint(1, 99)
    v = a * b + c
    expr = f"{a} * {b} + {c}"
    return TinyProblem(
        "math-a",
        _product_key(a, b),
        f"Compute {expr}.",
        str(v),
        "",
        expr,
        str(v),
        f"{expr} == {v}",
        f"{a} * {b} = {a * b}; {a * b} + {c} = {v}. The answer is {v}.",
        f"First compute {a} * {b}, then add {c}.",
    )


def math_b(rng: random.Random) -> TinyProblem:
    if rng.random() < 0.5:
        a, b, c = rng.randint(100, 999), rng.randint(10, 99), rng.randint(2, 9)
        v, expr = (a - b) * c, f"({a} - {b}) * {c}"
        text, key = f"Compute {expr}.", ("sub", a, b)
        solution = f"{a} - {b} = {a - b}; {a - b} * {c} = {v}. The answer is {v}."
        hint = f"Subtract {b} from {a} first, then multiply by {c}."
    else:
        n, m = rng.randint(1000, 9999), rng.randint(11, 99)
        v, expr = n % m, f"{n} % {m}"
        text, key = f"What is {n} mod {m}?", ("mod", n, m)
        solution = f"{n} = {m} * {n // m} + {v}. The answer is {v}."
        hint = f"Find the remainder of {n} divided by {m}."
    return TinyProblem(
        "math-b", key, text, str(v), "", expr, str(v), f"{expr} == {v}", solution, hint
    )


_MCQ_OFFSETS = (-20, -10, -2, -1, 1, 2, 10, 20)


def mcq(rng: random.Random) -> TinyProblem:
    a, b = rng.randint(11, 99), rng.randint(11, 99)
    v = a * b
    options = [v + d for d in rng.sample(_MCQ_OFFSETS, 3)]
    at = rng.randrange(len(LETTERS))
    options.insert(at, v)
    letter = LETTERS[at]
    listed = " ".join(f"({L}) {o}" for L, o in zip(LETTERS, options))
    product = f"{a} * {b}"
    # The tool does the matching, as an agent checks the options in code: the options are
    # copied in order and the call prints the letter. Matching a 3-4 digit number against
    # four near misses by attention alone is more than a tiny model learns (every model,
    # the teacher included, stayed at chance on this family while the tool only computed
    # the product); copying is what SFT teaches them reliably.
    expr = f"{LETTERS!r}[[{', '.join(str(o) for o in options)}].index({product})]"
    return TinyProblem(
        "mcq",
        _product_key(a, b),
        f"Which option equals {product}? {listed}",
        letter,
        "",
        expr,
        letter,
        f"{product} == {v}",
        f"{product} = {v}, which is option ({letter}). The answer is {letter}.",
        f"Compute {product} and find it among the options.",
    )


# Formulas of the code family, in a and b; {k} and {m} are drawn constants.
_CODE_FORMULAS = (
    "a * b + {k}",
    "(a - b) * {k}",
    "a * {k} + b * {m}",
    "(a + b) % {k}",
    "a * b - {k}",
)


def _evaluate(formula: str, a: int, b: int) -> int:
    return eval(formula, {"__builtins__": {}}, {"a": a, "b": b})  # our own formulas only


def code(rng: random.Random) -> TinyProblem:
    formula = rng.choice(_CODE_FORMULAS).format(k=rng.randint(2, 99), m=rng.randint(2, 99))
    pairs: list[tuple[int, int]] = []
    while len(pairs) < N_CODE_TESTS:
        pair = (rng.randint(1, 50), rng.randint(1, 50))
        if pair not in pairs:
            pairs.append(pair)
    outputs = [str(_evaluate(formula, a, b)) for a, b in pairs]
    tests = {
        "inputs": [f"{a} {b}\n" for a, b in pairs],
        "outputs": [f"{o}\n" for o in outputs],
    }
    (a0, b0), (a1, b1) = pairs[0], pairs[1]
    program = f"a, b = map(int, input().split())\nprint({formula})"
    return TinyProblem(
        "code",
        ("code", formula),
        f"Read a and b from stdin; print {formula}.",
        json.dumps(tests),
        f"a, b = {a0}, {b0}",
        formula,
        outputs[0],
        f"a, b = {a1}, {b1}\n{formula}",
        f"Read a and b, then print {formula}:\n```python\n{program}\n```",
        "Parse a and b with map(int, input().split()).",
        program=program,
        tests=tests,
        public=({"input": f"{a0} {b0}", "output": outputs[0]},),
    )


GENERATORS: dict[Family, Callable[[random.Random], TinyProblem]] = {
    "math-a": math_a,
    "math-b": math_b,
    "mcq": mcq,
    "code": code,
}


def hint_is_clean(p: TinyProblem) -> bool:
    """Whether the OPSD hint leaves the final answer out (not even as one of its numbers)."""
    if p.kind == "code":
        return p.program is not None and p.program not in p.hint
    if p.kind == "mcq":
        return f"({p.answer})" not in p.hint
    return p.answer not in re.findall(r"-?\d+", p.hint)


def draw_problems(seed: int, counts: dict[str, int]) -> dict[str, dict[Family, list[TinyProblem]]]:
    """``counts[split]`` problems per family for each split, in the order given.

    One RNG per family (seeded from ``seed`` and the family name); problems are drawn
    until the keys are new across the whole world, then cut into the splits in order.
    """
    taken: set[tuple[Any, ...]] = set()
    out: dict[str, dict[Family, list[TinyProblem]]] = {split: {} for split in counts}
    total = sum(counts.values())
    for family in FAMILIES:
        rng = random.Random(f"sodctl-tinyworld:{seed}:{family}")
        drawn: list[TinyProblem] = []
        attempts = 0
        while len(drawn) < total:
            attempts += 1
            if attempts > 100 * total + 1000:
                raise RuntimeError(f"tiny world: cannot draw {total} distinct {family} problems")
            p = GENERATORS[family](rng)
            if p.key not in taken and hint_is_clean(p):
                taken.add(p.key)
                drawn.append(p)
        start = 0
        for split, n in counts.items():
            out[split][family] = drawn[start : start + n]
            start += n
    return out


def eval_row(p: TinyProblem, index: int) -> dict[str, Any]:
    """The problem as a row of its benchmark's release file (the columns of ``BENCHMARKS``)."""
    if p.family == "math-a":
        return {"Problem": p.text, "Answer": int(p.answer)}
    if p.family == "math-b":
        return {"problem": p.text, "answer": p.answer}
    if p.family == "mcq":
        return {"problem": p.text, "solution": p.answer, "domain": MCQ_DOMAIN}
    extra = {"question_id": f"tiny-code-{index}", "public_tests": list(p.public)}
    return {
        "problem": p.text,
        "reward_model": json.dumps({"ground_truth": p.answer, "style": "rule"}),
        "extra_info": json.dumps(extra),
    }


def as_benchmark_problem(p: TinyProblem, prompts: dict[str, str], index: int = 0) -> Problem:
    """What the real loader makes of the problem's eval row: the prompt and ground truth
    evaluation shows, so training rows carry the very same text."""
    bench = BENCH_OF[p.family]
    row = {**eval_row(p, index), "__bench__": bench}
    return ROW_MAPPERS[bench](row, index, prompts, lcb_examples="public")  # its one public test
