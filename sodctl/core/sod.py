"""Step divergence and step weightings: SOD (paper Eq. 6-7) and the ablations.

SOD weight of step k (REFERENCE §2), with ``w_1 = 1``:

    w_k = min( prod_{u<k} (d_u + eps) / (d_{u+1} + eps), 1 + delta )
        = min( (d_1 + eps) / (d_k + eps), 1 + delta )          (the product telescopes)

where ``d_k`` is the mean over step k's tokens of ``|log pi_old(y_t) - log pi_teacher(y_t)|``.
The clip bounds the value of the running product, not each factor; this is what
the released code computes. There is no lower floor. Weights are constants for
the backward pass (everything here runs under ``no_grad`` semantics: inputs are
detached), broadcast to every token of the step, and 0 on masked tokens.

All weights are computed in float32 (bf16/fp16 inputs are upcast); step sums
come from a float64 prefix sum, so steps of tens of thousands of tokens keep
the weights exact to ~1e-7.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from sodctl.core.steps import Steps, broadcast_steps, find_steps, step_sums, step_token_counts

NO_ERROR = -1  # first_error_step value of a trajectory without an erroneous tool call


@dataclass(frozen=True)
class StepDivergence:
    """Per-step student-teacher divergence of a batch.

    d_BS     mean |log pi_old - log pi_teacher| over each step's tokens (float32; 0 on padded steps).
    steps    the step structure it was computed on.
    """

    d_BS: Tensor
    steps: Steps

    @property
    def step_mask_BS(self) -> Tensor:
        return self.steps.step_mask_BS


def _check_same_shape(**tensors: Tensor) -> None:
    shapes = {name: tuple(t.shape) for name, t in tensors.items()}
    if len(set(shapes.values())) != 1:
        raise ValueError(f"shape mismatch: {shapes}")


def step_divergence(
    old_log_probs: Tensor,
    teacher_log_probs: Tensor,
    response_mask: Tensor,
    steps: Steps | None = None,
) -> StepDivergence:
    """d_k for every step of every response (REFERENCE §2, paper Eq. 6)."""
    _check_same_shape(
        old_log_probs=old_log_probs,
        teacher_log_probs=teacher_log_probs,
        response_mask=response_mask,
    )
    steps = steps if steps is not None else find_steps(response_mask)
    gap_BT = (old_log_probs.detach().float() - teacher_log_probs.detach().float()).abs_()
    sums_BS = step_sums(gap_BT, steps)
    counts_BS = step_token_counts(steps)
    d_BS = (sums_BS / counts_BS.clamp(min=1)).float()
    return StepDivergence(d_BS=d_BS, steps=steps)


def sod_step_weights(
    d_BS: Tensor,
    step_mask_BS: Tensor,
    *,
    eps: float = 1e-6,
    delta: float = 0.2,
    clip: bool = True,
) -> Tensor:
    """SOD weights per step -> (B, S) float32, 0 on padded steps.

    ``clip=False`` (or ``delta=inf``) removes the upper bound (ablation 1.4).
    """
    if eps <= 0:
        raise ValueError(f"eps must be > 0, got {eps}")
    if delta < 0:
        raise ValueError(f"delta must be >= 0, got {delta}")
    d_BS = d_BS.float()
    w_BS = (d_BS[:, :1] + eps) / (d_BS + eps)
    if clip:
        w_BS = w_BS.clamp(max=1.0 + delta)
    w_BS[:, 0] = 1.0  # exact, whatever d_1 is
    return torch.where(step_mask_BS, w_BS, torch.zeros_like(w_BS))


def uniform_step_weights(step_mask_BS: Tensor) -> Tensor:
    """Every step weighted 1 (OPD, ablation 1.1) -> (B, S) float32."""
    return step_mask_BS.float()


def gated_step_weights(
    step_mask_BS: Tensor,
    grpo_advantages_B: Tensor,
    *,
    beta_min: float = 0.0,
    beta_max: float = 0.1,
    gamma: float = 1.0,
) -> Tensor:
    """The released sigmoid-gated OPD (method ``opd-gated``): every step of trajectory b
    weighted beta_b = beta_min + (beta_max - beta_min) * sigmoid(-gamma * A_GRPO_b) ->
    (B, S) float32.

    Trajectories the outcome reward already favours (A_GRPO > 0) lean less on the
    teacher, the others more; at A_GRPO = 0 (a group with equal rewards) beta is the
    midpoint. The released defaults (``run_*_opd.sh``): 0, 0.1, 1.
    """
    if beta_max < beta_min:
        raise ValueError(f"beta_max ({beta_max}) must not be below beta_min ({beta_min})")
    a_B = grpo_advantages_B.detach().float().to(step_mask_BS.device)
    beta_B = beta_min + (beta_max - beta_min) * torch.sigmoid(-gamma * a_B)
    return beta_B[:, None] * step_mask_BS.float()


def _steps_after_error(step_mask_BS: Tensor, first_error_step_B: Tensor) -> Tensor:
    """k - k_err for steps after the first erroneous call's step, 0 elsewhere -> (B, S) float32."""
    S = step_mask_BS.shape[1]
    k_S = torch.arange(S, device=step_mask_BS.device)
    k_err_B = first_error_step_B.to(device=step_mask_BS.device, dtype=torch.long)
    has_err_B = k_err_B >= 0
    after_BS = (k_S[None, :] - k_err_B[:, None]).clamp(min=0)
    return torch.where(has_err_B[:, None], after_BS, torch.zeros_like(after_BS)).float()


def heuristic_step_weights(
    step_mask_BS: Tensor, first_error_step_B: Tensor, *, gamma: float = 0.9
) -> Tensor:
    """Ablation 1.2: 1 up to the step with the first erroneous tool call, then gamma^(k - k_err).

    ``first_error_step_B`` holds the 0-based step index of the first erroneous tool call
    (the step that emitted it), or ``NO_ERROR`` (-1).
    """
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"gamma must be in [0, 1], got {gamma}")
    w_BS = torch.pow(
        torch.tensor(gamma, dtype=torch.float32),
        _steps_after_error(step_mask_BS, first_error_step_B),
    )
    return torch.where(step_mask_BS, w_BS, torch.zeros_like(w_BS))


def mask_after_wrong_step_weights(step_mask_BS: Tensor, first_error_step_B: Tensor) -> Tensor:
    """Ablation 1.3: 1 up to the step with the first erroneous tool call, 0 for every later step."""
    keep_BS = _steps_after_error(step_mask_BS, first_error_step_B) == 0
    return (keep_BS & step_mask_BS).float()


def sod_token_weights(
    old_log_probs: Tensor,
    teacher_log_probs: Tensor,
    response_mask: Tensor,
    eps: float = 1e-6,
    delta: float = 0.2,
) -> Tensor:
    """SOD weight of every response token -> same shape as the inputs, float32.

    Each token carries its step's weight ``w_k``; masked tokens (tool observations,
    template tokens, padding) carry 0. ``delta=float('inf')`` disables the clip.
    """
    div = step_divergence(old_log_probs, teacher_log_probs, response_mask)
    w_BS = sod_step_weights(
        div.d_BS, div.step_mask_BS, eps=eps, delta=delta, clip=delta != float("inf")
    )
    return broadcast_steps(w_BS, div.steps)
