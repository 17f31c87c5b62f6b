"""One real local-engine update moves the policy the way each method's objective says it should.

The update path under test is the engine's own: ``RLTrainer.score`` for old log-probs,
``compute_advantages`` with the method's ``advantage_spec``, and ``_ppo_updates`` (PPO
surrogate, the REINFORCE-form OPD loss for ``sod.opd_form=loss``, grad-norm clip). The
trainer's AdamW is swapped for plain SGD so that a step follows the (clipped) gradient and
its first-order effect has a definite sign. The batch is fixed by hand: one prompt, four
responses of three steps each (4 generated tokens, 2 observation tokens, ...).
"""

from __future__ import annotations

import copy
import json

import pytest
import torch
from rl_fixtures import rl_config, tiny_rl_setup
from transformers import AutoModelForCausalLM

import sodctl.engines.local.rl as rl
from sodctl.core import sod_step_weights
from sodctl.engines.local.run import make_scheduler
from sodctl.errors import SodctlUsageError
from sodctl.methods import METHODS
from sodctl.rollout.agent import Trajectory, chat_prompt_ids
from sodctl.tools.code_interpreter import CODE_INTERPRETER_SCHEMA

MASK = [1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1]  # three steps per response
RESPONSES = [
    "abcd\n\nefgh\n\nijkl",
    "9+4=\n\n13 s\n\nure.",
    "WXYZ\n\nQRST\n\nUVMN",
    "7*6?\n\n42 !\n\n#@$%",
]
# |teacher - old| on each step: SOD weights 1, 1/3, 1.2 (4/3 unclipped)
STEP_GAP = [0.4, 1.2, 0.3]
LR = 1e-2
OPD_METHODS = sorted(
    m for m, s in METHODS.items() if s.teacher == "external" and s.weighting in ("uniform", "sod")
)


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    return tiny_rl_setup(tmp_path_factory.mktemp("dir"))


def _trainer(tmp_path, paths, method, *extra):
    extra = ("rollout.n=4", "train.train_batch_prompts=1", "engine.device=cpu", *extra)
    cfg = rl_config(tmp_path, paths, method, *extra)
    torch.manual_seed(0)
    tr = rl.RLTrainer(cfg, METHODS[method], torch.device("cpu"))
    tr.initial = copy.deepcopy(tr.policy.state_dict())
    tok = tr.tok
    prompt = chat_prompt_ids(tok, [{"role": "user", "content": "What is 3+4?"}])
    tr.batch_prompts = [prompt] * len(RESPONSES)
    responses = [tok(r, add_special_tokens=False)["input_ids"] for r in RESPONSES]
    tr.batch_trajs = [Trajectory(prompt, r, list(MASK)) for r in responses]
    assert all(len(t.response_ids) == len(MASK) for t in tr.batch_trajs)  # one token per character
    return tr


def _update(tr, rewards, teacher=None, first_error=None):
    """Reset the policy and run one engine update on the fixed batch (``teacher`` maps the old
    log-probs to the teacher's). Returns old and new log-probs, advantages, teacher, parameters."""
    tr.policy.load_state_dict(tr.initial)
    tr.optimizer = torch.optim.SGD(tr.policy.parameters(), lr=LR)
    mask = torch.tensor([MASK] * len(RESPONSES))
    T = mask.shape[1]
    old = tr.score(tr.policy, tr.batch_prompts, tr.batch_trajs, T)
    teacher_BT = teacher(old) if teacher is not None else None
    err = torch.tensor(first_error) if first_error is not None else None
    adv = rl.compute_advantages(
        tr.spec, rewards_B=torch.tensor(rewards, dtype=torch.float32), group_ids_B=torch.zeros(len(rewards), dtype=torch.long),
        response_mask=mask, old_log_probs=old, teacher_log_probs=teacher_BT, first_error_step_B=err,
    )  # fmt: skip
    tr.policy.train()
    sched = make_scheduler(tr.optimizer, "constant", 0, 1, 1.0)
    rl._ppo_updates(tr, tr.batch_prompts, tr.batch_trajs, T, mask, old, teacher_BT, adv, sched)
    new = tr.score(tr.policy, tr.batch_prompts, tr.batch_trajs, T)
    params = torch.cat([p.detach().flatten() for p in tr.policy.parameters()])
    return old, new, adv, teacher_BT, params


def _offsets(step_gap=STEP_GAP):
    """teacher - old per token: +gap on each step's first token, -gap on its other three (so the
    teacher is mostly below the student); 0 on observation tokens."""
    out = torch.zeros(len(RESPONSES), len(MASK))
    for k, (a, b) in enumerate([(0, 4), (6, 10), (12, 16)]):
        for t in range(a, b):
            out[:, t] = step_gap[k] * (1.0 if t == a else -1.0)
    return out


def test_grpo_raises_above_average_responses_and_lowers_the_rest(paths, tmp_path):
    """GRPO: one update makes every above-group-mean response more likely and every below-mean one less."""
    tr = _trainer(tmp_path, paths, "grpo")
    rewards = [1.0, -1.0, 1.0, -1.0]
    old, new, adv, _, _ = _update(tr, rewards)
    m = torch.tensor(MASK, dtype=torch.float32)
    gain_B = ((new - old) * m).sum(1)
    assert (adv.advantages_BT[:, 0] > 0).tolist() == [True, False, True, False]
    assert (gain_B[[0, 2]] > 1e-4).all() and (gain_B[[1, 3]] < -1e-4).all(), gain_B
    # the objective itself, first-order guaranteed under SGD: sum_b A_b * sum_t log pi rises
    assert float((adv.advantages_BT * (new - old)).sum()) > 0


@pytest.mark.parametrize("form", ["advantage", "loss"])
@pytest.mark.parametrize("method", OPD_METHODS)
def test_opd_term_moves_the_student_towards_the_teacher(paths, tmp_path, method, form):
    """OPD-family methods (uniform and SOD weights), equal rewards so only the OPD term acts:
    the step-weighted squared gap to the teacher shrinks (the OPD update is exactly gradient
    descent on it), the sampled-token reverse-KL estimate mean(student - teacher) falls,
    tokens the teacher prefers gain log-prob and tokens it dislikes lose it."""
    tr = _trainer(tmp_path, paths, method, f"sod.opd_form={form}")
    old, new, adv, teacher, _ = _update(tr, [1.0] * 4, teacher=lambda o: o + _offsets())
    m = torch.tensor([MASK] * 4, dtype=torch.bool)
    w = adv.token_weights_BT
    if METHODS[method].weighting == "sod":
        d = torch.tensor(STEP_GAP)
        k_w = (d[0] / d).clamp(max=1.2 if METHODS[method].clip_weights else 9.0)
        assert torch.allclose(adv.step_weights_BS, k_w.expand(4, 3), atol=1e-5)
    else:
        assert torch.equal(w, m.float())
    sq_gap_old, sq_gap_new = ((w * (x - teacher) ** 2)[m].sum() for x in (old, new))
    assert float(sq_gap_old - sq_gap_new) > 1e-4
    assert float((new - teacher)[m].mean()) < float((old - teacher)[m].mean()) - 1e-5
    assert float((new - old)[m & (teacher > old)].sum()) > 1e-4  # tokens the teacher prefers
    assert float((new - old)[m & (teacher < old)].sum()) < -1e-4  # tokens it dislikes


def test_sod_weights_scale_each_steps_opd_gradient(paths, tmp_path):
    """SOD (w/o GRPO) gives exactly the update of uniform-weight OPD whose teacher gap on step k
    is scaled by w_k: the weights act as per-step multipliers of the OPD signal, nothing else."""
    sod = _trainer(tmp_path / "s", paths, "no-grpo")
    _, _, adv, _, p_sod = _update(sod, [1.0] * 4, teacher=lambda o: o + _offsets())
    w = adv.token_weights_BT
    assert not torch.allclose(adv.step_weights_BS, torch.ones_like(adv.step_weights_BS))
    naive = _trainer(tmp_path / "n", paths, "naive-opd")
    naive.policy.load_state_dict(naive.initial)
    p0 = torch.cat([p.detach().flatten() for p in naive.policy.parameters()])
    _, _, _, _, p_scaled = _update(naive, [1.0] * 4, teacher=lambda o: o + w * _offsets())
    _, _, _, _, p_plain = _update(naive, [1.0] * 4, teacher=lambda o: o + _offsets())
    d_sod, d_scaled, d_plain = p_sod - p0, p_scaled - p0, p_plain - p0
    scale = float(d_sod.abs().max())  # float32 parameters near 1: a delta carries ~1e-7 of rounding
    assert scale > 1e-4
    assert float((d_sod - d_scaled).abs().max()) < 1e-3 * scale
    assert float((d_sod - d_plain).abs().max()) > 0.1 * scale


@pytest.mark.parametrize("form", ["advantage", "loss"])
def test_a_zero_weight_step_contributes_no_opd_gradient(paths, tmp_path, form):
    """A step of weight 0 must not feed the update: changing its teacher log-probs arbitrarily
    leaves the update bit-identical. SOD weights are > 0 by construction (no floor, eps > 0),
    so the zero comes from mask-after-wrong (first error at step 0: steps 2 and 3 weigh 0),
    which shares SOD's path (step spans -> token weights -> OPD advantage / loss)."""
    tr = _trainer(tmp_path, paths, "mask-after-wrong", f"sod.opd_form={form}")
    later = torch.zeros(4, len(MASK), dtype=torch.bool)
    later[:, 6:] = True  # steps 2 and 3
    noise = torch.randn(4, len(MASK), generator=torch.Generator().manual_seed(3)) * 5.0

    def run(teacher):
        return _update(tr, [1.0] * 4, teacher=teacher, first_error=[0] * 4)

    _, _, adv, _, p_a = run(lambda o: o + _offsets())
    assert adv.step_weights_BS.tolist() == [[1.0, 0.0, 0.0]] * 4
    p_b = run(lambda o: torch.where(later, o + noise, o + _offsets()))[-1]
    p_c = run(lambda o: torch.where(later, o + _offsets(), o + noise))[-1]
    assert torch.equal(p_a, p_b)
    assert not torch.equal(p_a, p_c)  # control: the weight-1 step's teacher does matter


def test_privileged_messages_extend_the_last_user_turn():
    """OPSD prompts: the solution / hint is appended to the last user turn only; the problem is
    not mutated; a missing privileged text is a usage error."""
    p = rl.RLProblem(
        [{"role": "system", "content": "S"}, {"role": "user", "content": "Q1"}, {"role": "assistant", "content": "A"}, {"role": "user", "content": "Q2"}],
        "7", "math", solution="3+4=7", hint="add them",
    )  # fmt: skip
    for which, text in (("solution", "3+4=7"), ("hint", "add them")):
        msgs = rl.privileged_messages(p, which)
        assert [m["content"] for m in msgs[:3]] == ["S", "Q1", "A"]
        assert msgs[3]["content"].startswith("Q2") and msgs[3]["content"].endswith(text)
        assert len(msgs[3]["content"]) > len("Q2") + len(text)
    assert p.messages[3]["content"] == "Q2"
    with pytest.raises(SodctlUsageError):
        rl.privileged_messages(rl.RLProblem(p.messages, "7", "math", solution="x"), "hint")


def _capture_step(monkeypatch, split_steps=False):
    """Record compute_advantages' inputs/output and _ppo_updates' prompts/trajectories of a run.
    With split_steps, every rollout's mask gets two observation gaps, so trajectories of the
    random tiny model (which never calls the tool) have several steps; scoring, advantages and
    logging then run unmodified on that batch."""
    seen = {}
    real_adv, real_ppo, real_loop = rl.compute_advantages, rl._ppo_updates, rl.run_agent_loop

    def adv(spec, **kw):
        out = real_adv(spec, **kw)
        seen.setdefault("adv", (spec, kw, out))
        return out

    def ppo(tr, prompts, trajs, *rest):
        seen.setdefault("ppo", (prompts, trajs, copy.deepcopy(tr.policy.state_dict()), tr.tok))
        return real_ppo(tr, prompts, trajs, *rest)

    def loop(*a, **kw):
        trajs = real_loop(*a, **kw)
        for t in trajs if split_steps else []:
            n = len(t.response_mask)
            for i in (n // 3, n // 3 + 1, 2 * n // 3):
                if n >= 9:
                    t.response_mask[i] = 0
        return trajs

    monkeypatch.setattr(rl, "compute_advantages", adv)
    monkeypatch.setattr(rl, "_ppo_updates", ppo)
    monkeypatch.setattr(rl, "run_agent_loop", loop)
    return seen


@pytest.mark.parametrize("method", ["opsd-gt", "opsd-hint"])
def test_opsd_teacher_is_the_student_under_the_privileged_prompt(
    paths, tmp_path, monkeypatch, method
):
    """The teacher log-probs OPSD uses are the pre-update policy's log-probs of the sampled
    responses after the privileged prompt (not after the student prompt, not another model)."""
    seen = _capture_step(monkeypatch)
    cfg = rl_config(tmp_path, paths, method, "train.max_steps=1", "engine.device=cpu")
    rl.train_rl(cfg, METHODS[method], progress=False)
    _, kw, _ = seen["adv"]
    prompts, trajs, state, tok = seen["ppo"]
    which = METHODS[method].privileged

    def prompt_ids(msgs):
        return tuple(chat_prompt_ids(tok, msgs, [CODE_INTERPRETER_SCHEMA]))

    problem_of = {prompt_ids(p.messages): p for p in rl.load_rl_problems(cfg).problems}
    priv = [prompt_ids(rl.privileged_messages(problem_of[tuple(p)], which)) for p in prompts]
    assert getattr(problem_of[tuple(prompts[0])], which) in tok.decode(priv[0])
    responses = [t.response_ids for t in trajs]
    ids, plen = rl.pad_batch(priv, responses, tok.pad_token_id, torch.device("cpu"))
    policy = AutoModelForCausalLM.from_pretrained(paths["student"])
    policy.load_state_dict(state)  # the policy as it was when the step scored its batch
    with torch.no_grad():
        T = kw["teacher_log_probs"].shape[1]
        expected = rl.response_log_probs(policy.eval(), ids, plen, T)[0]
    m = kw["response_mask"].bool()
    assert m.any()
    assert torch.allclose(kw["teacher_log_probs"][m], expected[m], atol=1e-5)
    assert not torch.allclose(kw["teacher_log_probs"][m], kw["old_log_probs"][m], atol=1e-3)


def test_logged_sod_weights_match_the_core(paths, tmp_path, monkeypatch):
    """samples.jsonl's per-step d_k and w_k are those of the batch the step trained on: d_k
    recomputed by hand (mean |old - teacher| over each run of mask 1), w_k by the core's
    sod_step_weights and by the closed form min((d_1+eps)/(d_k+eps), 1+delta)."""
    seen = _capture_step(monkeypatch, split_steps=True)
    cfg = rl_config(tmp_path, paths, "sod", "train.max_steps=1", "engine.device=cpu")
    rl.train_rl(cfg, METHODS["sod"], progress=False)
    spec, kw, _ = seen["adv"]
    assert spec.weighting == "sod" and spec.clip_weights
    mask, old, teacher = (kw[k] for k in ("response_mask", "old_log_probs", "teacher_log_probs"))
    samples = (tmp_path / "runs" / "sod-test" / "run" / "samples.jsonl").read_text()
    rows = [json.loads(x) for x in samples.splitlines()]
    assert len(rows) == min(rl.SAMPLES_PER_STEP, mask.shape[0])
    assert {r["step"] for r in rows} == {1}
    assert max(len(r["d"]) for r in rows) >= 3  # the check is not about one-step trajectories
    for b, row in enumerate(rows):
        m = mask[b].tolist()
        runs = [t for t in range(len(m)) if m[t] and (t == 0 or not m[t - 1])]
        d = []
        for start in runs:
            end = next((t for t in range(start, len(m)) if not m[t]), len(m))
            d.append(float((old[b, start:end].double() - teacher[b, start:end]).abs().mean()))
        ones = torch.ones(1, len(d), dtype=torch.bool)
        w_core = sod_step_weights(torch.tensor([d]), ones, eps=spec.eps, delta=spec.delta)[0]
        w_closed = [1.0] + [min((d[0] + spec.eps) / (x + spec.eps), 1 + spec.delta) for x in d[1:]]
        assert len(row["d"]) == len(row["w"]) == len(d)
        assert row["d"] == pytest.approx(d, abs=1e-5)
        assert row["w"] == pytest.approx(w_core.tolist(), abs=1e-5)
        assert row["w"] == pytest.approx(w_closed, abs=1e-5)
