"""``sod.opd_form=loss`` on verl: the separate REINFORCE-form OPD term as a verl
distillation loss (``sod_reinforce``).

verl 0.9.1 adds a registered distillation loss to the PPO loss of every actor
micro-batch (``trainer/distillation/losses.py:165-227``): ``ppo_loss(advantages) +
distillation_loss_coef * agg_loss(losses_BT)`` with ``use_task_rewards=true`` and
``use_policy_gradient=false`` (the loss is back-propagated as it is, ``:290-297``). Our
trainer (``sod_sync``) writes, for this form, GRPO-only advantages and two
response-aligned fields into TransferQueue, which the actor's micro-batch carries:
``sod_token_weights`` (the step weights w) and ``sod_teacher_log_probs`` (the teacher's
log-probs of the sampled tokens, realigned). The per-token loss is
``sodctl.core.opd.opd_reinforce_token_losses`` (the local engine's, before aggregation),
on the actor's current log-probs; ``distillation_loss_coef`` carries ``sod.opd_coef``.
Only the external-teacher methods run it (verl's distillation path needs its teacher
pool); OPSD with ``opd_form=loss`` is refused by ``compose.check_supported``.
"""

from __future__ import annotations

from typing import Any

import torch
from verl.trainer.distillation.losses import DistillationLossSettings, register_distillation_loss
from verl.workers.utils.padding import no_padding_2_padding

from sodctl.core.opd import opd_reinforce_token_losses

LOSS_NAME = "sod_reinforce"
SOD_TOKEN_WEIGHTS = "sod_token_weights"
SOD_TEACHER_LOG_PROBS = "sod_teacher_log_probs"


def _already_registered() -> bool:
    from verl.trainer.distillation.losses import DISTILLATION_LOSS_REGISTRY

    return LOSS_NAME in DISTILLATION_LOSS_REGISTRY


def sod_reinforce_losses(config: Any, distillation_config: Any, model_output: dict, data: Any):
    """``(losses_BT, metrics)``: ``w * sg(lp - lp_teacher) * lp`` per response token, in
    verl's padded response layout (as its estimator losses return)."""
    log_probs = no_padding_2_padding(model_output["log_probs"], data)
    fields = data.select(
        "response_mask", SOD_TOKEN_WEIGHTS, SOD_TEACHER_LOG_PROBS
    ).to_padded_tensor()
    mask = fields["response_mask"].bool()
    weights = fields[SOD_TOKEN_WEIGHTS].to(log_probs.dtype)
    teacher = fields[SOD_TEACHER_LOG_PROBS].to(log_probs.dtype)
    if not (log_probs.shape == weights.shape == teacher.shape == mask.shape):
        raise ValueError(
            f"sod_reinforce: shapes differ: log-probs {tuple(log_probs.shape)}, weights "
            f"{tuple(weights.shape)}, teacher {tuple(teacher.shape)}, mask {tuple(mask.shape)}"
        )
    losses = opd_reinforce_token_losses(log_probs, teacher, weights)
    with torch.no_grad():
        m = mask.to(log_probs.dtype)
        n = m.sum().clamp(min=1)
        gap = (log_probs - teacher) * m
        metrics = {
            "sod/reverse_kl": float(gap.sum() / n),
            "sod/weighted_reverse_kl": float((weights * gap).sum() / n),
        }
    return losses, metrics


if not _already_registered():  # a verl process may import the plugin more than once
    register_distillation_loss(
        DistillationLossSettings(names=[LOSS_NAME], use_estimator=True)  # type: ignore[arg-type]
    )(sod_reinforce_losses)
