"""Step-pattern classification of trajectories (paper §5.6 / Appendix C.2).

The paper names three patterns of a trajectory's SOD weight sequence w_1..w_K but
gives no thresholds. sodctl uses two, both configurable (``sod.pattern_low``,
``sod.pattern_high``):

* a trajectory is *suppressed* when some step's weight falls below ``low``
  (its divergence more than doubled relative to step 1 at the default 0.5);
* **stable**     never suppressed: ``min_k w_k >= low``;
* **recovery**   suppressed, and back up at the last step: ``w_K >= high``;
* **erroneous**  suppressed and still below ``high`` at the last step. This includes
  the rare "aligned, then degrades at the end" case, which the paper merges here too.

A response without generated tokens has no pattern (``NO_STEPS``). On the paper's
Appendix G cases (delta = 0.2) the defaults give erroneous for
1.00, 0.71, 0.46, 0.31, 0.17 and recovery for 1.00, 0.73, 0.56, 0.41, 0.76, 1.12, 1.20.
"""

from __future__ import annotations

import torch
from torch import Tensor

NO_STEPS, STABLE, ERRONEOUS, RECOVERY = -1, 0, 1, 2
PATTERN_NAMES: dict[int, str] = {STABLE: "stable", ERRONEOUS: "erroneous", RECOVERY: "recovery"}


def classify_step_patterns(
    w_BS: Tensor,
    step_mask_BS: Tensor,
    *,
    low: float = 0.5,
    high: float = 0.8,
) -> Tensor:
    """Pattern code of each trajectory -> (B,) int64 (``STABLE``/``ERRONEOUS``/``RECOVERY``/``NO_STEPS``)."""
    if not low <= high:
        raise ValueError(f"pattern thresholds need low <= high, got low={low}, high={high}")
    w_BS = w_BS.float()
    n_B = step_mask_BS.sum(dim=1)
    min_B = torch.where(step_mask_BS, w_BS, torch.full_like(w_BS, float("inf"))).min(dim=1).values
    last_B = w_BS.gather(1, (n_B - 1).clamp(min=0)[:, None]).squeeze(1)
    suppressed_B = min_B < low
    code_B = torch.where(suppressed_B, torch.where(last_B >= high, RECOVERY, ERRONEOUS), STABLE)
    return torch.where(n_B > 0, code_B, torch.full_like(code_B, NO_STEPS))


def pattern_fractions(codes_B: Tensor) -> dict[str, float]:
    """Fraction of trajectories (with at least one step) in each pattern."""
    valid = codes_B >= 0
    n = int(valid.sum())
    return {
        name: (float((codes_B == code).sum()) / n if n else 0.0)
        for code, name in PATTERN_NAMES.items()
    }
