"""The tiny task suite's benchmarks (synthetic, generated on the fly, deterministic).

``tiny-arith``: integer arithmetic a small model cannot do reliably without the
tool ("Compute 47 * 83 + 19."), answered in ``\\boxed{}``. Problems are generated
from a fixed seed, so every machine sees the same ones; ``path`` may point at a
parquet file with ``problem``/``answer`` columns instead.
"""

from __future__ import annotations

import random

from sodctl.data.loaders import Problem, load_prompts
from sodctl.data.prompting import compose_math

TINY_ARITH_SIZE = 30
TINY_ARITH_SEED = 20260507


def tiny_arith_rows(n: int = TINY_ARITH_SIZE, seed: int = TINY_ARITH_SEED) -> list[dict[str, str]]:
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        a, b, c = rng.randint(12, 99), rng.randint(12, 99), rng.randint(1, 99)
        rows.append({"problem": f"Compute {a} * {b} + {c}.", "answer": str(a * b + c)})
    return rows


def load_tiny_arith(
    *, path: str | None = None, limit: int | None = None, prompts_file: str | None = None
) -> list[Problem]:
    if path is not None:
        from sodctl.data.files import read_parquet

        frame = read_parquet(path, what="benchmark 'tiny-arith'", columns=("problem", "answer"))
        rows = frame.to_dict(orient="records")
    else:
        rows = tiny_arith_rows()
    prompts = load_prompts(prompts_file)
    rows = rows[:limit] if limit is not None else rows
    return [
        Problem(
            "tiny-arith",
            str(i),
            "math",
            compose_math(prompts, r["problem"]),
            str(r["answer"]),
        )
        for i, r in enumerate(rows)
    ]
