"""avg@k and its companions, from per-problem outcomes (REFERENCE §8).

For P problems with k samples each (``correct_PK``, 0/1):

* avg@k      mean over problems of (correct samples / k), in percent;
* stderr     standard error over problems of the per-problem accuracy
             (std with ddof=1, / sqrt(P)), in percent. The paper prints an
             undefined "±"; sodctl names what it reports;
* mean_sample_std  mean over problems of the std (ddof=0) of the k outcomes, in percent;
* pass@n     unbiased estimator 1 - C(k - c, n) / C(k, n) averaged over problems,
             for n = 1, 2, 4, ... up to k (and k itself);
* maj@k      the majority prediction of the k samples (ties: the earliest-seen
             answer among the most frequent; missing predictions never win) is
             compared with the ground truth.

Problems may have fewer than k records (an interrupted run): each problem uses
the samples it has, and the summary records how many.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import numpy as np


def pass_at(n_samples: int, n_correct: int, n: int) -> float:
    """Unbiased pass@n for one problem with ``n_correct`` of ``n_samples`` correct."""
    if n > n_samples:
        raise ValueError(f"pass@{n} needs at least {n} samples, got {n_samples}")
    if n_samples - n_correct < n:
        return 1.0
    # 1 - C(n_samples - c, n) / C(n_samples, n), as a stable running product
    return 1.0 - float(np.prod(1.0 - n / np.arange(n_samples - n_correct + 1, n_samples + 1)))


def pass_at_ns(k: int) -> list[int]:
    """1, 2, 4, ... up to k, and k itself."""
    ns, n = [], 1
    while n <= k:
        ns.append(n)
        n *= 2
    if ns[-1] != k:
        ns.append(k)
    return ns


def majority(preds: Sequence[str | None]) -> str | None:
    counts = Counter(p for p in preds if p is not None)
    if not counts:
        return None
    best = max(counts.values())
    return next(p for p in preds if p is not None and counts[p] == best)


def summarize_outcomes(
    correct: Sequence[Sequence[bool]],
    preds: Sequence[Sequence[str | None]] | None = None,
    ground_truths: Sequence[str] | None = None,
    *,
    k: int | None = None,
) -> dict[str, object]:
    """avg@k, stderr, mean sample std, pass@n and maj@k (all in percent) over problems.

    ``correct[p]`` holds problem p's sample outcomes; ``k`` is the intended number of
    samples (default: the most any problem has). maj@k needs ``preds`` and ``ground_truths``.
    """
    if not correct:
        raise ValueError("no problems to summarise")
    k = k or max(len(c) for c in correct)
    acc = np.array([np.mean(c) if len(c) else 0.0 for c in correct], dtype=np.float64)
    P = len(acc)
    stderr = float(acc.std(ddof=1) / math.sqrt(P)) if P > 1 else 0.0
    sample_std = float(
        np.mean([np.std(np.asarray(c, dtype=np.float64)) if len(c) else 0.0 for c in correct])
    )
    pass_n: dict[str, float] = {}
    min_samples = min(len(c) for c in correct)
    for n in pass_at_ns(k):
        if n <= min_samples:
            pass_n[str(n)] = 100.0 * float(
                np.mean([pass_at(len(c), int(sum(c)), n) for c in correct])
            )
    out: dict[str, object] = {
        "avg_at_k": 100.0 * float(acc.mean()),
        "stderr": 100.0 * stderr,
        "mean_sample_std": 100.0 * sample_std,
        "pass_at": pass_n,
    }
    if preds is not None and ground_truths is not None:
        out["maj_at_k"] = 100.0 * float(
            np.mean([majority(p) == gt for p, gt in zip(preds, ground_truths)])
        )
    return out
