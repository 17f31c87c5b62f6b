"""How the on-policy distillation signal enters training (REFERENCE §3).

Per generated token the OPD signal is the sampled-token reverse-KL reward

    o_t = log pi_teacher(y_t) - log pi_old(y_t)

Paper-faithful (the released code), ``opd_form="advantage"``: fold it into the
advantage once per rollout batch, before the PPO mini-batch updates,

    A_t = [grpo] A_GRPO + opd_coef * w_{k(t)} * o_t

and let the ordinary clipped surrogate consume A_t. The OPD part is never clamped.

Paper text (Eq. 8-10), ``opd_form="loss"``: a separate step-weighted reverse-KL
term whose correct gradient is the REINFORCE form

    loss_t = w_{k(t)} * stopgrad(log pi_theta(y_t) - log pi_teacher(y_t)) * log pi_theta(y_t)

(differentiating w * (log pi_theta - log pi_teacher) naively gives the wrong
gradient), unclipped and aggregated on its own.
"""

from __future__ import annotations

import torch
from torch import Tensor

from sodctl.core.ppo import LossAgg, aggregate_loss


def opd_signal(old_log_probs: Tensor, teacher_log_probs: Tensor, response_mask: Tensor) -> Tensor:
    """Per-token reverse-KL reward log pi_teacher - log pi_old -> (B, T) float32, 0 on masked tokens."""
    o_BT = teacher_log_probs.detach().float() - old_log_probs.detach().float()
    return o_BT.mul_(response_mask.to(o_BT.dtype))


def opd_advantages(
    token_weights_BT: Tensor,
    old_log_probs: Tensor,
    teacher_log_probs: Tensor,
    response_mask: Tensor,
    *,
    grpo_advantages_B: Tensor | None = None,
    opd_coef: float = 1.0,
) -> Tensor:
    """Token advantages with the OPD term folded in -> (B, T) float32, 0 on masked tokens.

    ``grpo_advantages_B=None`` leaves the GRPO term out (naive OPD, ablation 2.1).
    """
    o_BT = opd_signal(old_log_probs, teacher_log_probs, response_mask)
    adv_BT = o_BT.mul_(token_weights_BT.float()).mul_(opd_coef)
    if grpo_advantages_B is not None:
        mask_BT = response_mask.to(adv_BT.dtype)
        adv_BT.addcmul_(grpo_advantages_B.detach().float()[:, None].expand_as(adv_BT), mask_BT)
    return adv_BT


def opd_reinforce_token_losses(
    log_probs: Tensor, teacher_log_probs: Tensor, token_weights_BT: Tensor
) -> Tensor:
    """Per-token ``w * sg(log pi_theta - log pi_teacher) * log pi_theta``: the REINFORCE
    form of the step-weighted reverse KL, before aggregation (both engines aggregate it
    their own way: ``opd_reinforce_loss`` here, verl's ``agg_loss`` on verl)."""
    gap_BT = (log_probs - teacher_log_probs.to(log_probs.dtype)).detach()
    return token_weights_BT.detach().to(log_probs.dtype) * gap_BT * log_probs


def opd_reinforce_loss(
    log_probs: Tensor,
    teacher_log_probs: Tensor,
    token_weights_BT: Tensor,
    response_mask: Tensor,
    *,
    opd_coef: float = 1.0,
    agg: LossAgg = "token-mean",
) -> tuple[Tensor, dict[str, Tensor]]:
    """The separate step-weighted reverse-KL term in REINFORCE form (``opd_form="loss"``).

    Its gradient w.r.t. theta is ``opd_coef * w * (log pi_theta - log pi_teacher) * grad log pi_theta``,
    the sampled-token estimator of the reverse-KL gradient. Returns ``(loss, stats)``.
    """
    gap_BT = (log_probs - teacher_log_probs.to(log_probs.dtype)).detach()
    w_BT = token_weights_BT.detach().to(log_probs.dtype)
    loss_BT = opd_coef * opd_reinforce_token_losses(log_probs, teacher_log_probs, token_weights_BT)
    loss = aggregate_loss(loss_BT, response_mask, agg)
    with torch.no_grad():
        m_BT = response_mask.to(gap_BT.dtype)
        n = m_BT.sum().clamp(min=1)
        stats = {
            "reverse_kl": (gap_BT * m_BT).sum() / n,
            "weighted_reverse_kl": (w_BT * gap_BT * m_BT).sum() / n,
        }
    return loss, {k: v.float() for k, v in stats.items()}
