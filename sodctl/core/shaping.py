"""Reward shaping rules of the paper's training reward (REFERENCE §5), as tensor functions.

* Tool-use shaping of wrong answers: ``min(-0.6, score + 0.1 * (num_turns - 2) / 2)``.
  The released run never passed ``num_turns`` to its reward (it read 0), so every wrong
  answer scored -1.1 there: ``RELEASED_NUM_TURNS`` reproduces that (the default), the
  real number of turns is the option.
* DAPO overlong penalty: ``min(0, -(L - (L_max - buffer)) / buffer)`` added to the reward,
  where L counts every response token (tool tokens included). It leaves accuracy alone.
"""

from __future__ import annotations

import torch
from torch import Tensor

RELEASED_NUM_TURNS = 0  # what the released reward read for num_turns: -1 -> min(-0.6, -1.1)


def tool_turn_shaping(scores_B: Tensor, correct_B: Tensor, num_turns_B: Tensor) -> Tensor:
    """Shape the score of wrong answers by the number of assistant turns; correct ones unchanged."""
    shaped_B = torch.clamp(scores_B.float() + 0.1 * (num_turns_B.float() - 2.0) / 2.0, max=-0.6)
    return torch.where(correct_B.bool(), scores_B.float(), shaped_B)


def overlong_penalty(
    response_lengths_B: Tensor, max_response_tokens: int, buffer: int = 1024
) -> Tensor:
    """DAPO soft overlong penalty -> (B,) float32, 0 for responses shorter than ``L_max - buffer``."""
    if buffer <= 0 or buffer > max_response_tokens:
        raise ValueError(f"overlong buffer must be in (0, max_response_tokens], got {buffer}")
    expected = max_response_tokens - buffer
    return torch.clamp(-(response_lengths_B.float() - expected) / buffer, max=0.0)
