"""Straightforward per-token loop implementations: the references the vectorised core is checked against.

Written from REFERENCE.md directly, independently of ``sodctl.core``: plain Python
over lists, float64 arithmetic, one token at a time. Slow on purpose; never import
these from the package.
"""

from __future__ import annotations

import math


def ref_steps(mask_row: list[int]) -> list[list[int]]:
    """Token positions of each step (maximal run of 1s)."""
    steps: list[list[int]] = []
    inside = False
    for t, m in enumerate(mask_row):
        if m:
            if not inside:
                steps.append([])
                inside = True
            steps[-1].append(t)
        else:
            inside = False
    return steps


def ref_step_divergence(
    old_row: list[float], teacher_row: list[float], mask_row: list[int]
) -> list[float]:
    out = []
    for positions in ref_steps(mask_row):
        total = 0.0
        for t in positions:
            total += abs(old_row[t] - teacher_row[t])
        out.append(total / len(positions))
    return out


def ref_sod_step_weights(
    d: list[float], eps: float = 1e-6, delta: float = 0.2, clip: bool = True
) -> list[float]:
    """Eq. 7 as written: the running product of consecutive ratios, clipped at 1 + delta."""
    weights = []
    running = 1.0
    for k in range(len(d)):
        if k > 0:
            running *= (d[k - 1] + eps) / (d[k] + eps)
        weights.append(1.0 if k == 0 else (min(running, 1.0 + delta) if clip else running))
    return weights


def ref_token_weights_row(step_weights: list[float], mask_row: list[int]) -> list[float]:
    out = [0.0] * len(mask_row)
    for w, positions in zip(step_weights, ref_steps(mask_row)):
        for t in positions:
            out[t] = w
    return out


def ref_sod_token_weights(old, teacher, mask, eps=1e-6, delta=0.2) -> list[list[float]]:
    """Batch version over nested lists (B x T)."""
    clip = delta != math.inf
    return [
        ref_token_weights_row(
            ref_sod_step_weights(ref_step_divergence(o, t, m), eps, delta, clip), m
        )
        for o, t, m in zip(old, teacher, mask)
    ]


def ref_sod_token_weights_itemwise(old, teacher, mask, eps=1e-6, delta=0.2):
    """The released code's style: per-token loops reading tensor elements with ``.item()``.

    Used by the benchmark as the baseline the vectorised code replaces.
    """
    B, T = mask.shape
    out = [[0.0] * T for _ in range(B)]
    for b in range(B):
        spans, start = [], None
        for t in range(T):
            on = mask[b, t].item() == 1
            if on and start is None:
                start = t
            if not on and start is not None:
                spans.append((start, t))
                start = None
        if start is not None:
            spans.append((start, T))
        divs = []
        for s, e in spans:
            total = 0.0
            for t in range(s, e):
                total += abs(old[b, t].item() - teacher[b, t].item())
            divs.append(total / (e - s))
        running = 1.0
        for k, (s, e) in enumerate(spans):
            if k > 0:
                running *= (divs[k - 1] + eps) / (divs[k] + eps)
            w = 1.0 if k == 0 else min(running, 1.0 + delta)
            for t in range(s, e):
                out[b][t] = w
    return out


def ref_heuristic_weights(n_steps: int, k_err: int, gamma: float) -> list[float]:
    return [1.0 if k_err < 0 or k <= k_err else gamma ** (k - k_err) for k in range(n_steps)]


def ref_mask_after_wrong_weights(n_steps: int, k_err: int) -> list[float]:
    return [1.0 if k_err < 0 or k <= k_err else 0.0 for k in range(n_steps)]


def ref_group_advantages(rewards: list[float], groups: list[int], eps: float = 1e-6) -> list[float]:
    by_group: dict[int, list[float]] = {}
    for r, g in zip(rewards, groups):
        by_group.setdefault(g, []).append(r)
    out = []
    for r, g in zip(rewards, groups):
        rs = by_group[g]
        if len(rs) < 2:
            mean, std = 0.0, 1.0
        else:
            mean = sum(rs) / len(rs)
            std = math.sqrt(sum((x - mean) ** 2 for x in rs) / (len(rs) - 1))
        out.append((r - mean) / (std + eps))
    return out


def ref_ppo_token_loss(
    logp: float, old: float, adv: float, clip_low: float, clip_high: float, dual: float | None
) -> float:
    ratio = math.exp(logp - old)
    clipped_ratio = min(max(ratio, 1 - clip_low), 1 + clip_high)
    loss = max(-adv * ratio, -adv * clipped_ratio)
    if dual is not None and adv < 0:
        loss = min(loss, -adv * dual)
    return loss


def ref_aggregate(losses: list[list[float]], mask: list[list[int]], mode: str) -> float:
    if mode == "token-mean":
        num = sum(l for row, mrow in zip(losses, mask) for l, m in zip(row, mrow) if m)
        den = sum(m for mrow in mask for m in mrow)
        return num / max(den, 1)
    per_seq = []
    for row, mrow in zip(losses, mask):
        s = sum(l for l, m in zip(row, mrow) if m)
        n = sum(mrow)
        if mode == "seq-mean-token-sum":
            per_seq.append(s)
        elif n > 0:
            per_seq.append(s / n)
    return sum(per_seq) / max(len(per_seq), 1)


def ref_pattern(weights: list[float], low: float, high: float) -> str | None:
    if not weights:
        return None
    if min(weights) >= low:
        return "stable"
    return "recovery" if weights[-1] >= high else "erroneous"
