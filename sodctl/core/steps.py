"""Reasoning steps from a ``response_mask``.

Shape convention (CONTRIBUTING.md): suffixes name the axes, ``B`` batch,
``T`` response tokens, ``S`` steps (padded to the batch's most).

A *step* is a maximal run of ``response_mask == 1`` (REFERENCE §1): the tokens
the policy generated between two tool observations, or the final answer.

Steps are kept as spans (start, end) rather than as a per-token step index:
a step's sum is then the difference of a prefix sum at its two ends, and
per-step values reach their tokens through one scan over boundary deltas.
That is a handful of passes over the (B, T) tokens and no scatter/gather over
them, which keeps SOD's cost close to that of plain OPD. Host syncs: two per
batch (the number of steps, for shapes).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class Steps:
    """Step structure of a batch of responses.

    mask_BT       the response mask as bool.
    start_BS      first token of each step; ``end_BS`` one past its last token (0 on padding).
    step_mask_BS  True where step k exists in row b; ``S = max(n_steps_B)``, at least 1, so
                  a batch without generated tokens still has a well-formed step axis.
    n_steps_B     number of steps in each response (0 when nothing was generated).
    """

    mask_BT: Tensor
    start_BS: Tensor
    end_BS: Tensor
    step_mask_BS: Tensor
    n_steps_B: Tensor

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
    """Find the steps of each response: maximal runs of 1s in ``response_mask`` (B, T)."""
    mask_BT = _as_bool_mask(response_mask)
    B, T = mask_BT.shape
    dev = mask_BT.device
    edge = torch.zeros(B, 1, dtype=torch.bool, device=dev)
    padded = torch.cat((edge, mask_BT, edge), dim=1)
    # Boundaries alternate start, end (exclusive) along each row, because rows are 0-padded.
    rows, cols = (padded[:, 1:] != padded[:, :-1]).nonzero(as_tuple=True)
    step_row, start_pos, end_pos = rows[0::2], cols[0::2], cols[1::2]
    n_steps_B = torch.bincount(step_row, minlength=B)
    S = max(int(n_steps_B.max()) if B else 0, 1)
    first_of_row_B = torch.cumsum(n_steps_B, 0) - n_steps_B
    k = torch.arange(step_row.numel(), device=dev) - first_of_row_B[step_row]
    start_BS = torch.zeros(B, S, dtype=torch.long, device=dev)
    end_BS = torch.zeros(B, S, dtype=torch.long, device=dev)
    start_BS[step_row, k] = start_pos
    end_BS[step_row, k] = end_pos
    step_mask_BS = torch.arange(S, device=dev) < n_steps_B[:, None]
    return Steps(mask_BT, start_BS, end_BS, step_mask_BS, n_steps_B)


def step_spans(response_mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``(start_BS, end_BS, step_mask_BS)``: token span [start, end) of every step; padding holds 0."""
    steps = find_steps(response_mask)
    return steps.start_BS, steps.end_BS, steps.step_mask_BS


def step_sums(values_BT: Tensor, steps: Steps, *, dtype: torch.dtype = torch.float64) -> Tensor:
    """Sum of ``values_BT`` over each step's tokens -> (B, S) in ``dtype``; 0 on padded steps.

    Masked tokens never fall inside a step's span, so they need no masking here. The
    prefix sum runs in ``dtype`` (float64 by default) so that the difference of two
    large prefix sums stays exact for steps of tens of thousands of tokens.
    """
    T = values_BT.shape[1]
    if T == 0:
        return torch.zeros(steps.step_mask_BS.shape, dtype=dtype, device=values_BT.device)
    prefix_BT = torch.cumsum(values_BT, dim=1, dtype=dtype)
    hi_BS = prefix_BT.gather(1, (steps.end_BS - 1).clamp(min=0))
    lo_BS = prefix_BT.gather(1, (steps.start_BS - 1).clamp(min=0))
    lo_BS = torch.where(steps.start_BS > 0, lo_BS, torch.zeros_like(lo_BS))
    return torch.where(steps.step_mask_BS, hi_BS - lo_BS, torch.zeros_like(hi_BS))


def step_token_counts(steps: Steps) -> Tensor:
    """Number of tokens in each step -> (B, S) int64 (0 on padded steps)."""
    return steps.end_BS - steps.start_BS


def broadcast_steps(values_BS: Tensor, steps: Steps) -> Tensor:
    """Spread per-step values onto their tokens -> (B, T) in the values' dtype; 0 on masked tokens.

    A scan over +v at each step's start and -v one past its end; on CPU the scan is
    sequential and the result exact, and the final mask makes masked tokens exactly 0
    on every device.
    """
    B, T = steps.mask_BT.shape
    v_BS = torch.where(steps.step_mask_BS, values_BS, torch.zeros_like(values_BS))
    delta_BT = torch.zeros(B, T + 1, dtype=values_BS.dtype, device=values_BS.device)
    delta_BT.scatter_add_(1, steps.start_BS, v_BS)
    delta_BT.scatter_add_(1, steps.end_BS, -v_BS)
    out_BT = torch.cumsum(delta_BT[:, :T], dim=1)
    return torch.where(steps.mask_BT, out_BT, torch.zeros_like(out_BT))


def step_index(steps: Steps) -> Tensor:
    """0-based step number of every token -> (B, T) int64, -1 on masked tokens."""
    k_BS = torch.arange(1, steps.max_steps + 1, device=steps.mask_BT.device, dtype=torch.float64)
    return broadcast_steps(k_BS.expand(steps.step_mask_BS.shape), steps).long() - 1


def last_step_values(values_BS: Tensor, steps: Steps, fill: float = float("nan")) -> Tensor:
    """The value at each row's last step -> (B,); ``fill`` where a row has no step."""
    last_B = (steps.n_steps_B - 1).clamp(min=0)
    out_B = values_BS.gather(1, last_B[:, None]).squeeze(1)
    return torch.where(steps.n_steps_B > 0, out_B, torch.full_like(out_B, fill))
