"""One advantage computation for every method of the registry.

Both engines call ``compute_advantages`` once per rollout batch with the
method's switches (``AdvantageSpec``) and the batch's tensors. It returns the
per-token advantages that the PPO surrogate consumes, the token weights that the
separate OPD loss form needs, and detached diagnostics (step divergences, weights,
patterns) for logging. Nothing here reads configs or files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import Tensor

from sodctl.core.grpo import group_advantages
from sodctl.core.opd import opd_advantages
from sodctl.core.patterns import classify_step_patterns, pattern_fractions
from sodctl.core.sod import (
    StepDivergence,
    gated_step_weights,
    heuristic_step_weights,
    mask_after_wrong_step_weights,
    sod_step_weights,
    step_divergence,
    uniform_step_weights,
)
from sodctl.core.steps import broadcast_steps, find_steps, last_step_values

Weighting = Literal["none", "uniform", "sod", "heuristic", "mask-after-wrong", "gated"]
OpdForm = Literal["advantage", "loss"]


@dataclass(frozen=True)
class AdvantageSpec:
    """The method switches and algorithm knobs the advantage depends on (REFERENCE §3-4)."""

    grpo: bool = True
    opd: bool = True
    weighting: Weighting = "sod"
    clip_weights: bool = True
    eps: float = 1e-6
    delta: float = 0.2
    heuristic_gamma: float = 0.9
    opd_coef: float = 1.0
    opd_form: OpdForm = "advantage"
    gate_beta_min: float = 0.0  # weighting "gated" (the released gated OPD)
    gate_beta_max: float = 0.1
    gate_gamma: float = 1.0
    grpo_eps: float = 1e-6
    pattern_low: float = 0.5
    pattern_high: float = 0.8

    def __post_init__(self) -> None:
        if not (self.grpo or self.opd):
            raise ValueError("an advantage needs the GRPO term, the OPD term, or both")
        if self.opd == (self.weighting == "none"):
            raise ValueError(f"weighting {self.weighting!r} does not fit opd={self.opd}")
        if self.weighting == "gated" and not self.grpo:
            raise ValueError("the gated weighting is a function of the GRPO advantage: it needs grpo")


@dataclass
class AdvantageOutput:
    """advantages_BT       what the clipped surrogate consumes (0 on masked tokens).
    token_weights_BT    step weight of each token (None without OPD); the ``loss`` form's weights.
    divergence          per-step d_k (None without OPD).
    step_weights_BS     the weights per step (None without OPD).
    metrics             detached scalars for logging, namespaced ``sod/...`` and ``adv/...``.
    """

    advantages_BT: Tensor
    token_weights_BT: Tensor | None = None
    divergence: StepDivergence | None = None
    step_weights_BS: Tensor | None = None
    patterns_B: Tensor | None = None
    metrics: dict[str, float] = field(default_factory=dict)


def _step_weights(
    spec: AdvantageSpec,
    div: StepDivergence,
    first_error_step_B: Tensor | None,
    grpo_B: Tensor | None,
) -> Tensor:
    mask_BS = div.step_mask_BS
    if spec.weighting == "gated":
        assert grpo_B is not None  # AdvantageSpec requires grpo
        return gated_step_weights(
            mask_BS,
            grpo_B,
            beta_min=spec.gate_beta_min,
            beta_max=spec.gate_beta_max,
            gamma=spec.gate_gamma,
        )
    if spec.weighting == "sod":
        return sod_step_weights(
            div.d_BS, mask_BS, eps=spec.eps, delta=spec.delta, clip=spec.clip_weights
        )
    if spec.weighting == "uniform":
        return uniform_step_weights(mask_BS)
    if first_error_step_B is None:
        raise ValueError(
            f"weighting {spec.weighting!r} needs first_error_step_B (step of the first erroneous tool call)"
        )
    if spec.weighting == "heuristic":
        return heuristic_step_weights(mask_BS, first_error_step_B, gamma=spec.heuristic_gamma)
    return mask_after_wrong_step_weights(mask_BS, first_error_step_B)


def _fold_opd(
    spec: AdvantageSpec,
    w_BT: Tensor,
    old_log_probs: Tensor,
    teacher_log_probs: Tensor,
    mask_BT: Tensor,
    grpo_B: Tensor | None,
) -> Tensor:
    if spec.opd_form == "advantage":
        return opd_advantages(
            w_BT,
            old_log_probs,
            teacher_log_probs,
            mask_BT,
            grpo_advantages_B=grpo_B,
            opd_coef=spec.opd_coef,
        )
    # opd_form == "loss": the OPD term is a separate loss; the advantage carries GRPO alone
    mask_f_BT = mask_BT.float()
    return grpo_B[:, None] * mask_f_BT if grpo_B is not None else torch.zeros_like(mask_f_BT)


def compute_advantages(
    spec: AdvantageSpec,
    *,
    rewards_B: Tensor,
    group_ids_B: Tensor,
    response_mask: Tensor,
    old_log_probs: Tensor | None = None,
    teacher_log_probs: Tensor | None = None,
    first_error_step_B: Tensor | None = None,
    diagnostics: bool = True,
) -> AdvantageOutput:
    """Token advantages of a rollout batch for the method described by ``spec``.

    ``first_error_step_B`` (0-based step of the first erroneous tool call, -1 for none)
    is needed only by the heuristic and mask-after-wrong weightings.
    With ``diagnostics`` the OPD methods also classify step patterns from the SOD
    weights the batch would get, so OPD and SOD runs report comparable statistics.
    """
    mask_BT = response_mask.bool()
    mask_f_BT = mask_BT.float()
    grpo_B = group_advantages(rewards_B, group_ids_B, eps=spec.grpo_eps) if spec.grpo else None
    metrics: dict[str, float] = {}
    if not spec.opd:
        assert grpo_B is not None
        return AdvantageOutput(advantages_BT=grpo_B[:, None] * mask_f_BT, metrics=metrics)

    if old_log_probs is None or teacher_log_probs is None:
        raise ValueError("an OPD method needs old_log_probs and teacher_log_probs")
    if spec.weighting == "uniform" and not diagnostics:  # no step structure needed at all
        w_BT = mask_f_BT
        adv_BT = _fold_opd(spec, w_BT, old_log_probs, teacher_log_probs, mask_BT, grpo_B)
        return AdvantageOutput(adv_BT, w_BT)
    steps = find_steps(mask_BT)
    div = step_divergence(old_log_probs, teacher_log_probs, mask_BT, steps=steps)
    w_BS = _step_weights(spec, div, first_error_step_B, grpo_B)
    w_BT = broadcast_steps(w_BS, steps)
    adv_BT = _fold_opd(spec, w_BT, old_log_probs, teacher_log_probs, mask_BT, grpo_B)

    patterns_B = None
    if diagnostics:
        sod_w_BS = (
            w_BS
            if spec.weighting == "sod"
            else sod_step_weights(
                div.d_BS, div.step_mask_BS, eps=spec.eps, delta=spec.delta, clip=spec.clip_weights
            )
        )
        patterns_B = classify_step_patterns(
            sod_w_BS, div.step_mask_BS, low=spec.pattern_low, high=spec.pattern_high
        )
        metrics = divergence_metrics(div, w_BS, patterns_B)
    return AdvantageOutput(adv_BT, w_BT, div, w_BS, patterns_B, metrics)


def divergence_metrics(div: StepDivergence, w_BS: Tensor, patterns_B: Tensor) -> dict[str, float]:
    """Detached batch statistics of d_k, w_k and step patterns."""
    with torch.no_grad():
        mask_BS = div.step_mask_BS
        has_B = div.steps.n_steps_B > 0
        n_steps = mask_BS.sum().clamp(min=1)
        w_valid = w_BS[mask_BS]
        d_last_B = last_step_values(div.d_BS, div.steps)
        out = {
            "sod/steps_per_traj": float(div.steps.n_steps_B.float().mean())
            if has_B.numel()
            else 0.0,
            "sod/d_mean": float((div.d_BS * mask_BS).sum() / n_steps),
            "sod/d_1": float(div.d_BS[has_B, 0].mean()) if has_B.any() else 0.0,
            "sod/d_last": float(d_last_B[has_B].mean()) if has_B.any() else 0.0,
            "sod/w_mean": float(w_valid.mean()) if w_valid.numel() else 0.0,
            "sod/w_min": float(w_valid.min()) if w_valid.numel() else 0.0,
            "sod/w_max": float(w_valid.max()) if w_valid.numel() else 0.0,
        }
        if w_valid.numel():
            q = torch.quantile(w_valid.float(), torch.tensor([0.1, 0.5, 0.9], dtype=torch.float32))
            out.update(
                {"sod/w_p10": float(q[0]), "sod/w_p50": float(q[1]), "sod/w_p90": float(q[2])}
            )
        out.update({f"sod/pattern_{k}": v for k, v in pattern_fractions(patterns_B).items()})
    return out
