"""GRPO advantages, the PPO surrogate and its aggregation, the two OPD forms, reward shaping."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from reference_loops import ref_aggregate, ref_group_advantages, ref_ppo_token_loss

from sodctl.core import (
    LOSS_AGG_MODES,
    aggregate_loss,
    group_advantages,
    group_ids_for,
    opd_advantages,
    opd_reinforce_loss,
    overlong_penalty,
    ppo_clipped_loss,
    tool_turn_shaping,
)

pytestmark = pytest.mark.unit

rewards_st = st.lists(st.sampled_from([-1.1, -1.0, -0.6, 0.0, 0.25, 1.0]), min_size=1, max_size=24)


@given(rewards_st, st.data())
def test_group_advantages_match_loop(rewards, data):
    groups = [data.draw(st.integers(0, 5)) * 7 for _ in rewards]  # non-contiguous ids
    got = group_advantages(torch.tensor(rewards), torch.tensor(groups))
    want = ref_group_advantages(rewards, groups)
    torch.testing.assert_close(
        got.double(), torch.tensor(want, dtype=torch.float64), rtol=1e-5, atol=1e-5
    )


def test_group_advantages_identical_rewards_give_zero_and_singletons_keep_reward():
    r = torch.tensor([1.0, 1.0, 1.0, -1.0, 1.0, 0.5])
    g = torch.tensor([0, 0, 0, 1, 1, 2])
    a = group_advantages(r, g)
    assert a[:3].tolist() == [0.0, 0.0, 0.0]
    s = math.sqrt(2.0)  # unbiased std of {-1, 1}
    assert a[3:5].tolist() == pytest.approx([-1 / (s + 1e-6), 1 / (s + 1e-6)])
    assert a[5].item() == pytest.approx(0.5 / (1 + 1e-6))
    assert group_ids_for(2, 3).tolist() == [0, 0, 0, 1, 1, 1]
    assert group_advantages(r, g, normalize_std=False)[3:5].tolist() == [-1.0, 1.0]


@given(
    st.lists(
        st.tuples(st.floats(-3, 0), st.floats(-3, 0), st.floats(-2, 2), st.integers(0, 1)),
        min_size=1,
        max_size=30,
    ),
    st.integers(1, 3),
    st.sampled_from(LOSS_AGG_MODES),
    st.sampled_from([None, 3.0]),
)
def test_ppo_loss_matches_loop(tokens, rows, agg, dual):
    T = max(1, len(tokens) // rows)
    tokens = (tokens * rows)[: rows * T]
    lp, old, adv, m = (
        torch.tensor([x[i] for x in tokens], dtype=torch.float64).reshape(rows, T) for i in range(4)
    )
    loss, stats = ppo_clipped_loss(
        lp, old, adv, m, clip_low=0.2, clip_high=0.28, dual_clip=dual, agg=agg
    )
    per_tok = [
        [
            ref_ppo_token_loss(lp[b, t].item(), old[b, t].item(), adv[b, t].item(), 0.2, 0.28, dual)
            for t in range(T)
        ]
        for b in range(rows)
    ]
    assert loss.item() == pytest.approx(
        ref_aggregate(per_tok, m.long().tolist(), agg), rel=1e-9, abs=1e-12
    )
    assert 0.0 <= stats["clipfrac"].item() <= 1.0


def test_ppo_gradient_and_clipping_behaviour():
    old = torch.zeros(1, 4, dtype=torch.float64)
    # ratios 0.5, 1.0, 1.5, 1.5; advantages +1, +1, +1, -1
    lp = torch.log(torch.tensor([[0.5, 1.0, 1.5, 1.5]], dtype=torch.float64)).requires_grad_()
    adv = torch.tensor([[1.0, 1.0, 1.0, -1.0]], dtype=torch.float64)
    loss, stats = ppo_clipped_loss(lp, old, adv, torch.ones(1, 4), dual_clip=3.0)
    loss.backward()
    r = torch.exp(lp.detach())[0].tolist()
    # token 0: ratio below 1-0.2 with A>0 -> unclipped branch is the max -> gradient -A r / n
    # token 2: ratio above 1+0.28 with A>0 -> clipped, no gradient
    # token 3: A<0, ratio 1.5 -> unclipped (-A r = 1.5) is the max, below the dual cap 3 -> gradient -A r / n
    assert lp.grad.tolist()[0] == pytest.approx([-r[0] / 4, -r[1] / 4, 0.0, r[3] / 4])
    assert stats["clipfrac"].item() == pytest.approx(0.25)
    # dual clip: A<0 and a huge ratio -> loss capped at -A * 3, zero gradient
    lp2 = torch.tensor([[math.log(10.0)]], dtype=torch.float64, requires_grad=True)
    loss2, stats2 = ppo_clipped_loss(
        lp2, torch.zeros(1, 1), torch.tensor([[-1.0]]), torch.ones(1, 1), dual_clip=3.0
    )
    loss2.backward()
    assert loss2.item() == pytest.approx(3.0) and lp2.grad.item() == 0.0
    assert stats2["dual_clipfrac"].item() == 1.0
    with pytest.raises(ValueError, match="dual_clip"):
        ppo_clipped_loss(lp2, torch.zeros(1, 1), torch.ones(1, 1), torch.ones(1, 1), dual_clip=0.5)


def test_ppo_gradcheck():
    g = torch.Generator().manual_seed(0)
    lp = (-torch.rand(2, 5, generator=g, dtype=torch.float64)).requires_grad_()
    old = lp.detach() + 0.05 * torch.randn(2, 5, generator=g, dtype=torch.float64)
    adv = torch.randn(2, 5, generator=g, dtype=torch.float64)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 0, 1, 1, 1]])
    for agg in LOSS_AGG_MODES:
        assert torch.autograd.gradcheck(
            lambda x, agg=agg: ppo_clipped_loss(x, old, adv, mask, agg=agg)[0], (lp,)
        )


def test_aggregation_handles_empty_rows_and_batches():
    loss = torch.ones(2, 3, requires_grad=True)
    mask = torch.tensor([[1, 1, 0], [0, 0, 0]])
    assert aggregate_loss(loss, mask, "token-mean").item() == 1.0
    assert aggregate_loss(loss, mask, "seq-mean-token-sum").item() == 1.0  # (2 + 0) / 2 rows
    assert (
        aggregate_loss(loss, mask, "seq-mean-token-mean").item() == 1.0
    )  # the empty row is left out
    for agg in LOSS_AGG_MODES:
        out = aggregate_loss(loss, torch.zeros(2, 3), agg)
        assert out.item() == 0.0 and out.requires_grad
    with pytest.raises(ValueError, match="token-mean"):
        aggregate_loss(loss, mask, "sum")  # type: ignore[arg-type]


def test_opd_advantage_form_matches_token_loop():
    g = torch.Generator().manual_seed(3)
    old, teacher = -torch.rand(3, 7, generator=g), -torch.rand(3, 7, generator=g)
    mask = (torch.rand(3, 7, generator=g) < 0.7).long()
    w = torch.rand(3, 7, generator=g) * 1.2 * mask
    grpo = torch.tensor([0.5, -1.0, 0.0])
    adv = opd_advantages(w, old, teacher, mask, grpo_advantages_B=grpo, opd_coef=0.7)
    for b in range(3):
        for t in range(7):
            want = (
                (grpo[b] + 0.7 * w[b, t] * (teacher[b, t] - old[b, t])).item()
                if mask[b, t]
                else 0.0
            )
            assert adv[b, t].item() == pytest.approx(want, abs=1e-6)
    no_grpo = opd_advantages(w, old, teacher, mask, opd_coef=1.0)
    torch.testing.assert_close(no_grpo, w * (teacher - old) * mask)


def test_opd_reinforce_gradient_is_the_reverse_kl_gradient():
    """Exact expectation over a small vocabulary: the REINFORCE-form term's gradient equals grad KL(pi || q)."""
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(1, 6, generator=g, dtype=torch.float64, requires_grad=True)
    teacher_lp = torch.log_softmax(torch.randn(1, 6, generator=g, dtype=torch.float64), -1)
    lp = torch.log_softmax(logits, -1)
    probs = lp.exp().detach()
    # every vocabulary entry as a "sampled token", weighted by its probability (the expectation)
    loss, stats = opd_reinforce_loss(
        lp, teacher_lp, probs, torch.ones(1, 6), agg="seq-mean-token-sum"
    )
    (grad_reinforce,) = torch.autograd.grad(loss, logits)
    lp_again = torch.log_softmax(logits, -1)
    kl = (lp_again.exp() * (lp_again - teacher_lp)).sum()
    (grad_kl,) = torch.autograd.grad(kl, logits)
    torch.testing.assert_close(grad_reinforce, grad_kl)
    # the naive derivative of w * (log pi - log q) is a different (wrong) gradient
    lp2 = torch.log_softmax(logits, -1)
    (grad_naive,) = torch.autograd.grad((probs * (lp2 - teacher_lp)).sum(), logits)
    assert not torch.allclose(grad_naive, grad_kl)
    assert "reverse_kl" in stats


def test_opd_reinforce_respects_weights_and_mask():
    lp = torch.tensor([[-1.0, -2.0, -3.0]], requires_grad=True)
    tlp = torch.tensor([[-1.5, -1.0, -9.0]])
    w = torch.tensor([[1.0, 0.5, 0.0]])
    loss, _ = opd_reinforce_loss(lp, tlp, w, torch.tensor([[1, 1, 0]]), agg="token-mean")
    loss.backward()
    assert lp.grad.tolist()[0] == pytest.approx([0.5 / 2, -0.5 / 2, 0.0])


def test_tool_turn_shaping_and_overlong_penalty():
    scores = torch.tensor([1.0, -1.0, -1.0, -1.0, 0.0])
    correct = torch.tensor([True, False, False, False, False])
    turns = torch.tensor([3, 0, 2, 10, 6])
    shaped = tool_turn_shaping(scores, correct, turns)
    # wrong: min(-0.6, score + 0.1 * (turns - 2) / 2)
    assert shaped.tolist() == pytest.approx([1.0, -1.1, -1.0, -0.6, -0.6])
    L = torch.tensor([100, 19_456, 19_968, 20_480])
    assert overlong_penalty(L, 20_480, 1024).tolist() == pytest.approx([0.0, 0.0, -0.5, -1.0])
    with pytest.raises(ValueError, match="buffer"):
        overlong_penalty(L, 100, 1024)


@pytest.mark.unit
def test_log_ratio_is_clamped_to_20_as_in_verl():

    lp = torch.tensor([[0.0, 0.0]], requires_grad=True)
    old = torch.tensor([[-30.0, -1.0]])  # ratio e^30 on the first token, e^1 on the second
    adv = torch.tensor([[-1.0, -1.0]])  # negative: the dual clip caps the loss at 3
    mask = torch.ones(1, 2)
    _, stats = ppo_clipped_loss(lp, old, adv, mask, dual_clip=None, log_ratio_clamp=20.0)
    assert math.isclose(float(stats["ratio_mean"]), (math.exp(20.0) + math.e) / 2, rel_tol=1e-5)
    _, stats = ppo_clipped_loss(lp, old, adv, mask, dual_clip=None, log_ratio_clamp=None)
    assert math.isclose(float(stats["ratio_mean"]), (math.exp(30.0) + math.e) / 2, rel_tol=1e-5)
