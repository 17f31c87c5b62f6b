"""``grade`` and ``grade_many``: one front door to every grader.

========  =====================================  ======================================
kind      grader="strict" (paper-faithful)        grader="math-verify"
========  =====================================  ======================================
math      last box in the final 100 characters,   math-verify equivalence (module
          exact string equality (``boxed.py``)    ``math_verify_grader.py``)
mcq       the same, against the letter            option-letter extraction (``mcq.py``)
code      tests run on a tool executor (``code.py``); the grader does not apply
========  =====================================  ======================================

Scores: 1.0 / 0.0 for math and mcq, the fraction of tests passed for code. A code answer's
result does not depend on ``grader``: evaluation may grade it once for both.
``timeout_s`` is per math-verify operation (default 5 s) or per code test (default 30 s,
``CODE_TIMEOUT_S``); ``code_timeout_s`` sets the code tests' alone (the ``reward`` config's
``code_timeout_s``). The strict grader and letter extraction need none. The code options
(``compare``, default ``"released"``; ``number_tol``; ``memory_mb``, default 1,024 MB;
``unescape``, default False) are those of ``code.grade_code_many``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sodctl.rewards.boxed import grade_strict
from sodctl.rewards.code import CODE_MEMORY_MB, CODE_TIMEOUT_S, Compare, grade_code_many
from sodctl.rewards.math_verify_grader import MATH_VERIFY_TIMEOUT_S, grade_math_verify
from sodctl.rewards.mcq import DEFAULT_LETTERS, grade_letter
from sodctl.rewards.result import GRADERS, KINDS, Grader, GradeResult, Kind, check_choice
from sodctl.tools.executors import Executor

GroundTruth = str | Mapping[str, Any] | Sequence[Any]  # code specs may arrive decoded


def grade(
    response: str,
    ground_truth: GroundTruth,
    *,
    kind: Kind = "math",
    grader: Grader = "strict",
    executor: Executor | None = None,
    timeout_s: float | None = None,
    code_timeout_s: float | None = None,
    letters: str = DEFAULT_LETTERS,
    compare: Compare = "released",
    number_tol: float = 0.0,
    memory_mb: int = CODE_MEMORY_MB,
    unescape: bool = False,
) -> GradeResult:
    """Grade one response (see the module docstring; code options in ``code.py``)."""
    return grade_many(
        [response],
        [ground_truth],
        kind=kind,
        grader=grader,
        executor=executor,
        timeout_s=timeout_s,
        code_timeout_s=code_timeout_s,
        letters=letters,
        compare=compare,
        number_tol=number_tol,
        memory_mb=memory_mb,
        unescape=unescape,
    )[0]


def grade_many(
    responses: Sequence[str],
    ground_truths: Sequence[GroundTruth],
    *,
    kind: Kind | Sequence[Kind] = "math",
    grader: Grader = "strict",
    executor: Executor | None = None,
    timeout_s: float | None = None,
    code_timeout_s: float | None = None,
    letters: str = DEFAULT_LETTERS,
    compare: Compare = "released",
    number_tol: float = 0.0,
    memory_mb: int = CODE_MEMORY_MB,
    unescape: bool = False,
) -> list[GradeResult]:
    """Grade a batch; ``kind`` is one kind for all or one per response. The code answers'
    tests all run in one ``executor.execute_many`` batch (default executor: the shared
    local pool)."""
    if len(responses) != len(ground_truths):
        raise ValueError(f"{len(responses)} responses but {len(ground_truths)} ground truths")
    kinds = [kind] * len(responses) if isinstance(kind, str) else list(kind)
    if len(kinds) != len(responses):
        raise ValueError(f"{len(kinds)} kinds for {len(responses)} responses")
    for k in set(kinds):
        check_choice("kind", k, KINDS)
    check_choice("grader", grader, GRADERS)

    results: list[GradeResult | None] = [None] * len(responses)
    code_at = [i for i, k in enumerate(kinds) if k == "code"]
    if code_at:
        graded = grade_code_many(
            [responses[i] for i in code_at],
            [ground_truths[i] for i in code_at],
            executor=executor,
            timeout_s=next(t for t in (code_timeout_s, timeout_s, CODE_TIMEOUT_S) if t is not None),
            memory_mb=memory_mb,
            compare=compare,
            number_tol=number_tol,
            unescape=unescape,
        )
        for i, r in zip(code_at, graded):
            results[i] = r
    mv_timeout = MATH_VERIFY_TIMEOUT_S if timeout_s is None else timeout_s
    for i, k in enumerate(kinds):
        if k == "code":
            continue
        gt = ground_truths[i]
        if not isinstance(gt, str | int | float):
            raise ValueError(f"a {k} ground truth must be a string, got {type(gt).__name__}")
        gt = str(gt)
        if grader == "strict":
            results[i] = grade_strict(responses[i], gt)
        elif k == "mcq":
            results[i] = grade_letter(responses[i], gt, letters)
        else:
            results[i] = grade_math_verify(responses[i], gt, mv_timeout)
    return [r for r in results if r is not None]
