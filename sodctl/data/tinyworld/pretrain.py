"""Tool-free text for the tiny world's "pretraining" stage (the vanilla rows' base model).

A tiny model starts knowing nothing, not even digits. This text teaches what a
base model brings to the paper's pipeline, without tool use: copying (digit
strings; a problem's expression restated; a stated result put in ``\\boxed{}``),
arithmetic facts, the problem phrasings with their boxed answers, Python lines
that read stdin, and a little chat-format text.

What it does not do (measured on the 1.7b/4b slots, 2 cores): teach copying itself
within a few hundred steps. Copying is what tool use needs at every turn; on pure,
ever-fresh copy lines a random tiny model learns it in ~100 steps, but mixed into
this text it had not after 300-400 steps (with 4,000 lines or 25,000), and a
long pretraining left SFT learning to copy *later* than from random weights
(digit accuracy 0.49 against 0.67 after 200 SFT steps). So the tiny preset
pretrains briefly (one epoch): a base model for the vanilla rows that does not
hold SFT back. Nor did a copy-heavy text (60% or 100% copy lines, 150 steps)
bring SFT's transition earlier (1.7b, seed 2: still on its plateau, loss ~0.65,
at 250 SFT steps). When the transition comes depends on the seed (~250-500
steps; the 4b slot too), so the preset's SFT runs past it on every seed instead
(``sft.max_steps_by_size``).

Problems come from the world's own ``pretrain`` split, disjoint from every other.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from sodctl.data.tinyworld.problems import TinyProblem

# Share of each kind of line (the rest are problem phrasings with their answers).
_MIX: tuple[tuple[str, float], ...] = (
    ("digits", 0.25),
    ("restate", 0.20),
    ("box", 0.15),
    ("chat", 0.15),
    ("fact", 0.10),
    ("program", 0.10),
)


def _fact(p: TinyProblem, rng: random.Random) -> str:
    if p.kind == "code":
        a, b = rng.randint(1, 50), rng.randint(1, 50)
        value = eval(p.expr, {"__builtins__": {}}, {"a": a, "b": b})  # our own formula
        return f"a = {a}, b = {b}: {p.expr} = {value}"
    return p.solution.rsplit(" The answer", 1)[0]


def _digits(rng: random.Random) -> str:
    number = str(rng.randint(10, 10 ** rng.randint(2, 6)))
    if rng.random() < 0.5:
        return f"Copy {number}: {number}"
    return f"The digits of {number} are {' '.join(number)}."


def _restate(p: TinyProblem) -> str:
    return f"{p.text} In code: {p.expr}"


def _box(rng: random.Random) -> str:
    value = rng.randint(0, 10 ** rng.randint(1, 4))
    return f"The result is {value}. The answer is \\boxed{{{value}}}."


def _answered(p: TinyProblem) -> str:
    if p.kind == "code":
        return f"{p.text}\n```python\n{p.program}\n```"
    return f"{p.text} \\boxed{{{p.answer}}}"


def _chat(rng: random.Random, render: Callable[[list[dict[str, str]]], str]) -> str:
    if rng.random() < 0.5:
        a, b = rng.randint(1, 20), rng.randint(1, 20)
        user, reply = f"Compute {a} + {b}.", f"\\boxed{{{a + b}}}"
    else:
        number = str(rng.randint(100, 99999))
        user, reply = f"Repeat {number}.", number
    return render([{"role": "user", "content": user}, {"role": "assistant", "content": reply}])


def pretrain_lines(
    problems: Sequence[TinyProblem],
    n: int,
    rng: random.Random,
    render_chat: Callable[[list[dict[str, str]]], str],
) -> list[str]:
    """``n`` lines of text; ``problems`` feed the facts, phrasings and programs (cycled)."""
    lines: list[str] = []
    pool = list(problems)
    for i in range(n):
        p = pool[i % len(pool)]
        u, kind, acc = rng.random(), "answered", 0.0
        for name, share in _MIX:
            acc += share
            if u < acc:
                kind = name
                break
        if kind == "fact":
            lines.append(_fact(p, rng))
        elif kind == "digits":
            lines.append(_digits(rng))
        elif kind == "restate":
            lines.append(_restate(p))
        elif kind == "box":
            lines.append(_box(rng))
        elif kind == "chat":
            lines.append(_chat(rng, render_chat))
        elif kind == "program":
            code_like = [q for q in pool if q.program]
            q = code_like[i % len(code_like)] if code_like else p
            lines.append(q.program or f"print({q.expr})")
        else:
            lines.append(_answered(p))
    return lines
