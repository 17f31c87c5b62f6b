"""PPO clipped surrogate with clip-higher and dual clip, and loss aggregation (REFERENCE §4).

Per token, with ratio r = exp(log pi_theta - log pi_old) and advantage A:

    l = max(-A r, -A clip(r, 1 - clip_low, 1 + clip_high))
    l = min(l, -A c)  where A < 0                          (dual clip, c = dual_clip)

The result is aggregated over response tokens (``response_mask == 1``) by one of
three modes:

    token-mean           sum_{b,t} l m / sum_{b,t} m
    seq-mean-token-sum   mean_b  sum_t l m
    seq-mean-token-mean  mean_b (sum_t l m / sum_t m)     over rows with a token
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

LossAgg = Literal["token-mean", "seq-mean-token-sum", "seq-mean-token-mean"]
LOSS_AGG_MODES: tuple[str, ...] = ("token-mean", "seq-mean-token-sum", "seq-mean-token-mean")


def aggregate_loss(loss_BT: Tensor, response_mask: Tensor, mode: LossAgg = "token-mean") -> Tensor:
    """Reduce a per-token loss to a scalar; an empty batch gives 0 (still attached to the graph)."""
    m_BT = response_mask.to(loss_BT.dtype)
    masked_BT = loss_BT * m_BT
    if mode == "token-mean":
        return masked_BT.sum() / m_BT.sum().clamp(min=1)
    if mode == "seq-mean-token-sum":
        return masked_BT.sum(dim=1).mean() if loss_BT.shape[0] else masked_BT.sum()
    if mode == "seq-mean-token-mean":
        n_B = m_BT.sum(dim=1)
        has_B = n_B > 0
        per_seq_B = masked_BT.sum(dim=1) / n_B.clamp(min=1)
        return (per_seq_B * has_B).sum() / has_B.sum().clamp(min=1)
    raise ValueError(
        f"unknown loss aggregation {mode!r}; choose one of {', '.join(LOSS_AGG_MODES)}"
    )


def ppo_clipped_loss(
    log_probs: Tensor,
    old_log_probs: Tensor,
    advantages: Tensor,
    response_mask: Tensor,
    *,
    clip_low: float = 0.2,
    clip_high: float = 0.28,
    dual_clip: float | None = 3.0,
    agg: LossAgg = "token-mean",
    log_ratio_clamp: float | None = 20.0,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Clipped policy-gradient loss and detached diagnostics.

    ``log_ratio_clamp`` bounds log(pi_theta / pi_old) to [-c, c] before the exponential,
    as verl does (c = 20; None: no bound); it only matters where the ratio would be
    astronomically far outside the clip range.

    ``advantages`` is (B, T) or (B,) (broadcast over tokens). Returns ``(loss, stats)``
    where stats holds ``clipfrac`` (fraction of tokens where the clip was active),
    ``dual_clipfrac``, ``approx_kl`` (mean of old - new log-prob) and ``ratio_mean``.
    """
    if dual_clip is not None and dual_clip <= 1.0:
        raise ValueError(f"dual_clip must be > 1.0 (or None), got {dual_clip}")
    adv_BT = advantages if advantages.dim() == 2 else advantages[:, None].expand_as(log_probs)
    adv_BT = adv_BT.detach().to(log_probs.dtype)
    log_ratio_BT = log_probs - old_log_probs.detach().to(log_probs.dtype)
    if log_ratio_clamp is not None:
        log_ratio_BT = log_ratio_BT.clamp(-log_ratio_clamp, log_ratio_clamp)
    ratio_BT = torch.exp(log_ratio_BT)
    unclipped_BT = -adv_BT * ratio_BT
    clipped_BT = -adv_BT * ratio_BT.clamp(1.0 - clip_low, 1.0 + clip_high)
    loss_BT = torch.maximum(unclipped_BT, clipped_BT)
    if dual_clip is not None:
        capped_BT = torch.minimum(loss_BT, -adv_BT * dual_clip)
        loss_BT = torch.where(adv_BT < 0, capped_BT, loss_BT)
    loss = aggregate_loss(loss_BT, response_mask, agg)
    with torch.no_grad():
        m_BT = response_mask.bool()
        n = m_BT.sum().clamp(min=1)
        clip_active = (clipped_BT > unclipped_BT) & m_BT
        dual_active = (
            (adv_BT < 0) & (-adv_BT * dual_clip < torch.maximum(unclipped_BT, clipped_BT)) & m_BT
            if dual_clip is not None
            else torch.zeros_like(m_BT)
        )
        stats = {
            "clipfrac": clip_active.sum() / n,
            "dual_clipfrac": dual_active.sum() / n,
            "approx_kl": (-log_ratio_BT * m_BT).sum() / n,
            "ratio_mean": (ratio_BT * m_BT).sum() / n,
        }
    return loss, {k: v.detach().float() for k, v in stats.items()}
