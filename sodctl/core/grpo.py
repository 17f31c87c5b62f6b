"""Group-relative advantages (GRPO, REFERENCE §4).

    A_i = (r_i - mean(r_group)) / (std(r_group) + eps)      std unbiased

computed for every sample at once from a group id per sample, without a Python
loop over groups. A group of a single sample has no spread to compare against:
it gets mean 0 and std 1 (so A = r), as verl does.
"""

from __future__ import annotations

import torch
from torch import Tensor


def group_advantages(
    rewards_B: Tensor,
    group_ids_B: Tensor,
    *,
    eps: float = 1e-6,
    normalize_std: bool = True,
) -> Tensor:
    """Group-normalised outcome advantages -> (B,) float32.

    ``group_ids_B`` are integers naming each sample's prompt (any values; they need
    not be contiguous). Groups with identical rewards get advantage 0.
    ``normalize_std=False`` gives the Dr.GRPO-style mean-centred variant.
    """
    if rewards_B.shape != group_ids_B.shape or rewards_B.dim() != 1:
        raise ValueError(
            f"rewards and group ids must be matching 1-D tensors, got {tuple(rewards_B.shape)} and {tuple(group_ids_B.shape)}"
        )
    r_B = rewards_B.detach().to(torch.float64)
    _, inv_B = torch.unique(group_ids_B, return_inverse=True)
    G = int(inv_B.max()) + 1 if inv_B.numel() else 0
    zeros_G = torch.zeros(G, dtype=torch.float64, device=r_B.device)
    n_G = zeros_G.scatter_add(0, inv_B, torch.ones_like(r_B))
    mean_G = zeros_G.scatter_add(0, inv_B, r_B) / n_G
    sq_G = zeros_G.scatter_add(0, inv_B, (r_B - mean_G[inv_B]) ** 2)
    std_G = torch.sqrt(sq_G / (n_G - 1).clamp(min=1))
    single_G = n_G < 2
    mean_G = torch.where(single_G, torch.zeros_like(mean_G), mean_G)
    std_G = torch.where(single_G, torch.ones_like(std_G), std_G)
    adv_B = r_B - mean_G[inv_B]
    if normalize_std:
        adv_B = adv_B / (std_G[inv_B] + eps)
    return adv_B.float()


def group_ids_for(
    n_prompts: int, n_samples: int, device: torch.device | str | None = None
) -> Tensor:
    """Group ids for a batch laid out prompt-major: ``[0]*n + [1]*n + ...``."""
    return torch.arange(n_prompts, device=device).repeat_interleave(n_samples)
