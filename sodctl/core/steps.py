"""Reasoning steps from a ``response_mask``.

Shape convention (also in CONTRIBUTING.md): suffixes name the axes,
``B`` batch, ``T`` response tokens, ``S`` steps (padded to the batch's most).

A *step* is a maximal run of ``response_mask == 1`` (REFERENCE §1): the tokens
the policy generated between two tool observations, or the final answer.
Everything here is vectorised; the only host sync is reading the batch's
largest step count, once per call.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class Steps:
    """Step structure of a batch of responses.

    step_idx_BT   0-based step number of each generated token, -1 on masked tokens.
    n_steps_B     number of steps in each response (0 when nothing was generated).
    step_mask_BS  True where step k exists in row b; ``S = max(n_steps_B)`` (at least 1,
                  so empty batches still have a well-formed, all-False step axis).
    """

    step_idx_BT: Tensor
    n_steps_B: Tensor
    step_mask_BS: Tensor

    @property
    def max_steps(self) -> int:
        return self.step_mask_BS.shape[1]


def _as_bool_mask(response_mask: Tensor) -> Tensor:
    if response_mask.dim() != 2:
        raise ValueError(
            f"response_mask must be (batch, length), got shape {tuple(response_mask.shape)}"
        )
    return response_mask if response_mask.dtype == torch.bool else response_mask != 0


def find_steps(response_mask: Tensor) -> Steps:
    """Number the steps of each response: runs of 1s in ``response_mask`` (B, T)."""
    mask_BT = _as_bool_mask(response_mask)
    B, T = mask_BT.shape
    # A step starts where the mask is 1 and the previous token's is not.
    starts_BT = mask_BT.clone()
    if T > 1:
        starts_BT[:, 1:] &= ~mask_BT[:, :-1]
    count_BT = torch.cumsum(starts_BT, dim=1)  # int64: steps begun so far
    n_steps_B = (
        count_BT[:, -1].clone()
        if T > 0
        else torch.zeros(B, dtype=torch.long, device=mask_BT.device)
    )
    step_idx_BT = count_BT.mul_(mask_BT).sub_(1)  # in place: -1 on masked tokens
    S = max(int(n_steps_B.max()) if B > 0 else 0, 1)
    step_mask_BS = torch.arange(S, device=mask_BT.device) < n_steps_B[:, None]
    return Steps(step_idx_BT=step_idx_BT, n_steps_B=n_steps_B, step_mask_BS=step_mask_BS)


def step_spans(response_mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Start and end (exclusive) token positions of every step.

    Returns ``(start_BS, end_BS, step_mask_BS)``; padded entries hold 0.
    """
    mask_BT = _as_bool_mask(response_mask)
    steps = find_steps(mask_BT)
    B, T = mask_BT.shape
    S = steps.max_steps
    pos_T = torch.arange(T, device=mask_BT.device)
    prev_BT = torch.zeros_like(mask_BT)
    prev_BT[:, 1:] = mask_BT[:, :-1]
    nxt_BT = torch.zeros_like(mask_BT)
    nxt_BT[:, :-1] = mask_BT[:, 1:]
    # Each step has exactly one start and one end token: scatter their positions
    # into the (B, S) grid at the step's index; masked tokens go to a spill column.
    slot_BT = torch.where(mask_BT, steps.step_idx_BT, torch.full_like(steps.step_idx_BT, S))
    start_BS = torch.zeros(B, S + 1, dtype=torch.long, device=mask_BT.device)
    end_BS = torch.zeros(B, S + 1, dtype=torch.long, device=mask_BT.device)
    is_start = mask_BT & ~prev_BT
    is_end = mask_BT & ~nxt_BT
    pos_BT = pos_T.expand(B, T)
    start_BS.scatter_add_(1, torch.where(is_start, slot_BT, S), torch.where(is_start, pos_BT, 0))
    end_BS.scatter_add_(1, torch.where(is_end, slot_BT, S), torch.where(is_end, pos_BT + 1, 0))
    return start_BS[:, :S], end_BS[:, :S], steps.step_mask_BS


def step_sums(values_BT: Tensor, steps: Steps, *, dtype: torch.dtype | None = None) -> Tensor:
    """Sum ``values_BT`` over each step's tokens -> (B, S). Masked tokens contribute nothing.

    ``dtype`` sets the accumulation precision (default: the values' dtype, at least float32).
    """
    acc = dtype or torch.promote_types(values_BT.dtype, torch.float32)
    B = values_BT.shape[0]
    S = steps.max_steps
    # Masked tokens (-1) are sent to spill column S, which is dropped.
    slot_BT = torch.where(steps.step_idx_BT >= 0, steps.step_idx_BT, S)
    out_BS = torch.zeros(B, S + 1, dtype=acc, device=values_BT.device)
    out_BS.scatter_add_(1, slot_BT, values_BT.to(acc))
    return out_BS[:, :S]


def step_token_counts(steps: Steps) -> Tensor:
    """Number of tokens in each step -> (B, S) int64 (0 on padded steps)."""
    B, S = steps.step_mask_BS.shape
    flat_BT = (steps.step_idx_BT + 1).add_(
        torch.arange(B, device=steps.step_idx_BT.device)[:, None] * (S + 1)
    )
    counts = torch.bincount(flat_BT.view(-1), minlength=B * (S + 1))
    return counts.view(B, S + 1)[:, 1:]


def broadcast_steps(values_BS: Tensor, steps: Steps) -> Tensor:
    """Spread per-step values onto their tokens -> (B, T); 0 on masked tokens."""
    padded_BS = torch.nn.functional.pad(values_BS, (1, 0))  # column 0 holds the masked value 0
    return torch.gather(padded_BS, 1, steps.step_idx_BT + 1)


def last_step_values(values_BS: Tensor, steps: Steps, fill: float = float("nan")) -> Tensor:
    """The value at each row's last step -> (B,); ``fill`` where a row has no step."""
    last_B = (steps.n_steps_B - 1).clamp(min=0)
    out_B = values_BS.gather(1, last_B[:, None]).squeeze(1)
    return torch.where(steps.n_steps_B > 0, out_B, torch.full_like(out_B, fill))
