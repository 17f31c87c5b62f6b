"""Step-pattern classification and the one advantage computation every method goes through."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from reference_loops import ref_pattern, ref_sod_token_weights
from strategies import batches, to_tensors

from sodctl.core import (
    ERRONEOUS,
    NO_STEPS,
    RECOVERY,
    STABLE,
    AdvantageSpec,
    classify_step_patterns,
    compute_advantages,
    group_advantages,
    pattern_fractions,
)
from sodctl.methods import METHODS

pytestmark = pytest.mark.unit


def test_appendix_g_patterns():
    w = torch.tensor(
        [
            [1.00, 0.71, 0.46, 0.31, 0.17, 0.0, 0.0],  # erroneous
            [1.00, 0.73, 0.56, 0.41, 0.76, 1.12, 1.20],  # recovery
            [1.00, 0.95, 1.10, 0.88, 1.20, 0.0, 0.0],  # stable
            [
                1.00,
                1.00,
                0.90,
                0.45,
                0.0,
                0.0,
                0.0,
            ],  # aligned, then degrades: merged into erroneous
            [0.0] * 7,  # nothing generated
        ]
    )
    n = torch.tensor([5, 7, 5, 4, 0])
    mask = torch.arange(7) < n[:, None]
    codes = classify_step_patterns(w, mask)
    assert codes.tolist() == [ERRONEOUS, RECOVERY, STABLE, ERRONEOUS, NO_STEPS]
    assert pattern_fractions(codes) == {"stable": 0.25, "erroneous": 0.5, "recovery": 0.25}
    with pytest.raises(ValueError, match="low <= high"):
        classify_step_patterns(w, mask, low=0.9, high=0.5)


@given(
    st.lists(st.lists(st.floats(0, 1.3), max_size=8), min_size=1, max_size=6),
    st.sampled_from([(0.5, 0.8), (0.3, 0.3), (0.7, 1.0)]),
)
def test_patterns_match_loop(rows, thresholds):
    low, high = thresholds
    S = max(1, max(len(r) for r in rows))
    w = torch.tensor([r + [0.0] * (S - len(r)) for r in rows])
    mask = torch.arange(S) < torch.tensor([len(r) for r in rows])[:, None]
    codes = classify_step_patterns(w, mask, low=low, high=high).tolist()
    names = {STABLE: "stable", ERRONEOUS: "erroneous", RECOVERY: "recovery", NO_STEPS: None}
    assert [names[c] for c in codes] == [
        ref_pattern([float(x) for x in torch.tensor(r, dtype=torch.float32)], low, high)
        for r in rows
    ]


def _batch(seed=0, B=8, T=30):
    g = torch.Generator().manual_seed(seed)
    old = -torch.rand(B, T, generator=g) * 3
    teacher = -torch.rand(B, T, generator=g) * 3
    mask = (torch.rand(B, T, generator=g) < 0.6).long()
    rewards = torch.tensor([1.0, -1.0, 1.0, 1.0, -1.0, -1.0, -1.0, 1.0])[:B]
    groups = torch.arange(B) // 4
    return dict(
        rewards_B=rewards,
        group_ids_B=groups,
        response_mask=mask,
        old_log_probs=old,
        teacher_log_probs=teacher,
    )


def test_sod_advantage_is_grpo_plus_weighted_opd():
    kw = _batch()
    out = compute_advantages(AdvantageSpec(weighting="sod", opd_coef=1.0), **kw)
    m = kw["response_mask"]
    w = torch.tensor(
        ref_sod_token_weights(
            kw["old_log_probs"].tolist(), kw["teacher_log_probs"].tolist(), m.tolist()
        )
    )
    grpo = group_advantages(kw["rewards_B"], kw["group_ids_B"])
    want = (grpo[:, None] + w * (kw["teacher_log_probs"] - kw["old_log_probs"])) * m
    torch.testing.assert_close(out.advantages_BT, want.float(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out.token_weights_BT, w.float(), rtol=1e-6, atol=1e-6)
    assert set(out.metrics) >= {
        "sod/d_1",
        "sod/d_last",
        "sod/w_mean",
        "sod/pattern_stable",
        "sod/pattern_recovery",
    }


@pytest.mark.parametrize(("beta_min", "beta_max", "gamma"), [(0.0, 0.1, 1.0), (0.05, 0.3, 2.5)])
def test_gated_opd_is_the_released_sigmoid_gate(beta_min, beta_max, gamma):
    # the released gated OPD, one token at a time: beta_b from the trajectory's GRPO
    # advantage, A = A_GRPO + beta_b * (teacher - old) on every generated token
    import math

    kw = _batch()
    spec = AdvantageSpec(
        weighting="gated", gate_beta_min=beta_min, gate_beta_max=beta_max, gate_gamma=gamma
    )
    out = compute_advantages(spec, **kw)
    grpo = group_advantages(kw["rewards_B"], kw["group_ids_B"]).tolist()
    t, o, m = kw["teacher_log_probs"].tolist(), kw["old_log_probs"].tolist(), kw["response_mask"]
    want = []
    for b, row in enumerate(m.tolist()):
        beta = beta_min + (beta_max - beta_min) / (1.0 + math.exp(gamma * grpo[b]))
        want.append([(grpo[b] + beta * (t[b][i] - o[b][i])) * x for i, x in enumerate(row)])
    torch.testing.assert_close(out.advantages_BT, torch.tensor(want), rtol=1e-5, atol=1e-6)
    # every step of a trajectory carries its beta; equal rewards give the midpoint
    w = out.step_weights_BS[out.divergence.step_mask_BS]
    assert float(w.max()) <= beta_max + 1e-7 and float(w.min()) >= beta_min - 1e-7
    kw["rewards_B"] = torch.ones(8)
    flat = compute_advantages(spec, **kw).token_weights_BT[kw["response_mask"].bool()]
    torch.testing.assert_close(flat, torch.full_like(flat, (beta_min + beta_max) / 2))
    with pytest.raises(ValueError, match="needs grpo"):
        AdvantageSpec(grpo=False, weighting="gated")


def test_identical_group_rewards_keep_only_the_opd_signal():
    kw = _batch()
    kw["rewards_B"] = torch.ones(8)
    out = compute_advantages(AdvantageSpec(weighting="uniform"), **kw)
    m = kw["response_mask"]
    torch.testing.assert_close(
        out.advantages_BT, ((kw["teacher_log_probs"] - kw["old_log_probs"]) * m).float()
    )


def test_grpo_only_and_opd_only_and_loss_form():
    kw = _batch()
    m = kw["response_mask"].float()
    grpo = group_advantages(kw["rewards_B"], kw["group_ids_B"])
    g_only = compute_advantages(AdvantageSpec(grpo=True, opd=False, weighting="none"), **kw)
    torch.testing.assert_close(g_only.advantages_BT, grpo[:, None] * m)
    assert g_only.token_weights_BT is None
    naive = compute_advantages(AdvantageSpec(grpo=False, weighting="uniform"), **kw)
    torch.testing.assert_close(
        naive.advantages_BT, (kw["teacher_log_probs"] - kw["old_log_probs"]) * m
    )
    loss_form = compute_advantages(AdvantageSpec(weighting="sod", opd_form="loss"), **kw)
    torch.testing.assert_close(loss_form.advantages_BT, grpo[:, None] * m)
    assert loss_form.token_weights_BT is not None
    # uniform without diagnostics skips the step machinery but gives the same advantages
    bare = compute_advantages(AdvantageSpec(weighting="uniform"), diagnostics=False, **kw)
    full = compute_advantages(AdvantageSpec(weighting="uniform"), **kw)
    torch.testing.assert_close(bare.advantages_BT, full.advantages_BT)
    assert bare.metrics == {} and full.metrics


def test_error_based_weightings_need_the_error_step():
    kw = _batch()
    with pytest.raises(ValueError, match="first_error_step_B"):
        compute_advantages(AdvantageSpec(weighting="heuristic"), **kw)
    out = compute_advantages(
        AdvantageSpec(weighting="mask-after-wrong"), first_error_step_B=torch.full((8,), -1), **kw
    )
    torch.testing.assert_close(out.token_weights_BT, kw["response_mask"].float())
    with pytest.raises(ValueError, match="old_log_probs"):
        compute_advantages(
            AdvantageSpec(),
            rewards_B=kw["rewards_B"],
            group_ids_B=kw["group_ids_B"],
            response_mask=kw["response_mask"],
        )


def test_invalid_specs():
    with pytest.raises(ValueError):
        AdvantageSpec(grpo=False, opd=False, weighting="none")
    with pytest.raises(ValueError):
        AdvantageSpec(opd=True, weighting="none")


@pytest.mark.parametrize("name", sorted(m for m, s in METHODS.items() if s.stage == "rl"))
def test_every_rl_method_of_the_registry_runs(name):
    spec = METHODS[name]
    adv_spec = AdvantageSpec(
        grpo=spec.grpo, opd=spec.opd, weighting=spec.weighting, clip_weights=spec.clip_weights
    )
    kw = _batch()
    out = compute_advantages(
        adv_spec, first_error_step_B=torch.tensor([-1, 0, 1, 2, -1, 0, 3, 1]), **kw
    )
    assert out.advantages_BT.shape == kw["response_mask"].shape
    assert torch.all(out.advantages_BT[kw["response_mask"] == 0] == 0)
    assert torch.isfinite(out.advantages_BT).all()


@given(batches(max_b=3, max_t=30))
def test_advantages_zero_on_masked_tokens_and_finite(batch):
    o, t, m = to_tensors(*batch)
    B = m.shape[0]
    out = compute_advantages(
        AdvantageSpec(),
        rewards_B=torch.linspace(-1, 1, B),
        group_ids_B=torch.zeros(B, dtype=torch.long),
        response_mask=m,
        old_log_probs=o,
        teacher_log_probs=t,
    )
    assert torch.all(out.advantages_BT[m == 0] == 0)
    assert torch.isfinite(out.advantages_BT).all()
