"""The local engine's learning-rate schedules against a plain reference of each formula."""

from __future__ import annotations

import math

import pytest
import torch

from sodctl.config import load_config
from sodctl.engines.local.run import make_scheduler
from sodctl.errors import SodctlUsageError


def _reference(kind: str, warmup: int, total: int, decay_ratio: float) -> list[float]:
    """The factor of every update, written out case by case."""
    d = max(1, round(decay_ratio * total))
    out = []
    for step in range(total):
        if step < warmup:
            out.append((step + 1) / warmup)
        elif kind == "constant":
            out.append(1.0)
        elif kind == "linear":
            out.append(1.0 - (step - warmup) / (total - warmup))
        elif kind == "cosine":
            out.append(0.5 * (1 + math.cos(math.pi * (step - warmup) / (total - warmup))))
        else:  # wsd: stable at the base rate, then the last d updates step down to 1/(d+1)
            first_decayed = total - d
            out.append(1.0 if step < first_decayed else (total - step) / (d + 1))
    return out


def _factors(kind: str, warmup: int, total: int, decay_ratio: float) -> list[float]:
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=2.0)
    sched = make_scheduler(opt, kind, warmup, total, decay_ratio)
    out = []
    for _ in range(total):
        out.append(opt.param_groups[0]["lr"] / 2.0)
        opt.step()
        sched.step()
    return out


@pytest.mark.parametrize("kind", ["constant", "linear", "cosine", "wsd"])
@pytest.mark.parametrize(
    ("warmup", "total", "decay_ratio"), [(0, 10, 0.2), (3, 20, 0.25), (0, 7, 1.0)]
)
def test_every_schedule_follows_its_formula(kind, warmup, total, decay_ratio):
    assert _factors(kind, warmup, total, decay_ratio) == pytest.approx(
        _reference(kind, warmup, total, decay_ratio)
    )


def test_wsd_holds_the_base_rate_then_decays_over_its_last_fraction():
    f = _factors("wsd", 0, 100, 0.2)
    assert f[:80] == [1.0] * 80  # stable: as fast as the constant schedule
    assert all(a > b for a, b in zip(f[79:], f[80:]))  # then strictly down, every step
    assert f[-1] == pytest.approx(1 / 21)  # and ends near zero: a settled final iterate


@pytest.mark.parametrize("value", ["0", "1.5", "-0.1"])
def test_decay_ratio_outside_its_range_is_one_line(value):
    with pytest.raises(SodctlUsageError, match=r"sft.decay_ratio.*\(0, 1\]"):
        load_config(
            "table1/sft-1.7b", overrides=["sft.lr_schedule=wsd", f"sft.decay_ratio={value}"]
        )
