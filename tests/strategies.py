"""Hypothesis strategies for batches of responses: masks with steps, log-probs."""

from __future__ import annotations

import torch
from hypothesis import strategies as st


@st.composite
def batches(draw, max_b: int = 4, max_t: int = 48, min_t: int = 0):
    """(old_log_probs, teacher_log_probs, response_mask) as float64 nested lists + int mask."""
    B = draw(st.integers(1, max_b))
    T = draw(st.integers(min_t, max_t))
    mask = [draw(st.lists(st.integers(0, 1), min_size=T, max_size=T)) for _ in range(B)]
    logp = st.floats(-20.0, 0.0, allow_nan=False, width=32)
    old = [draw(st.lists(logp, min_size=T, max_size=T)) for _ in range(B)]
    # the teacher is sometimes identical to the student on a token (zero divergence)
    teacher = [
        [o if draw(st.booleans()) and draw(st.booleans()) else draw(logp) for o in row]
        for row in old
    ]
    return old, teacher, mask


def to_tensors(old, teacher, mask, dtype=torch.float32):
    B = len(mask)
    T = len(mask[0]) if B else 0
    shape = (B, T)
    return (
        torch.tensor(old, dtype=dtype).reshape(shape),
        torch.tensor(teacher, dtype=dtype).reshape(shape),
        torch.tensor(mask, dtype=torch.long).reshape(shape),
    )
