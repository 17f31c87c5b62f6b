"""The ``sod_sync`` trainer: sodctl's advantage inside verl 0.9.1's synchronous v1 trainer.

- ``sod_advantage_step`` equals ``compute_advantages`` on the aligned tensors, for every
  RL method of the registry but OPSD;
- vLLM-layout teacher log-probs reach the core realigned to the response tokens exactly;
- ``SODTrainerSync._compute_advantage`` on verl's real TransferQueue (SimpleStorage), with
  the fields written by verl's own agent-loop postprocess, padding and old-log-prob code;
- GRPO alone matches verl's GRPO (``compute_grpo_outcome_advantage`` and verl's own
  ``_compute_advantage``);
- OPSD's live self-teacher, config checks, and the registration.
"""

from __future__ import annotations

import copy
import dataclasses

import pytest

pytest.importorskip("verl")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import transfer_queue as tq  # noqa: E402
from omegaconf import DictConfig, OmegaConf  # noqa: E402
from tensordict import TensorDict  # noqa: E402
from transfer_queue import KVBatchMeta  # noqa: E402
from verl.trainer.ppo.core_algos import compute_grpo_outcome_advantage, get_kl_controller  # noqa: E402
from verl.trainer.ppo.padding_utils import upsample_batch_to_divisible_size  # noqa: E402
from verl.trainer.ppo.v1.trainer_sync import PPOTrainerSync  # noqa: E402
from verl_fixtures import (  # noqa: E402
    FakeActor,
    Traj,
    make_trajs,
    nested_fields,
    put_like_agent_loop,
    student_lp,
    teacher_lp,
    truth,
    vllm_rows,
)

import sodctl.engines.verl.trainer as sod_trainer  # noqa: E402
from sodctl.core.advantages import AdvantageOutput, AdvantageSpec, compute_advantages  # noqa: E402
from sodctl.engines.verl.trainer import (  # noqa: E402
    PRIVILEGED_PARTITION,
    SOD_TEACHER_LOG_PROBS,
    SOD_TOKEN_WEIGHTS,
    SODTrainerSync,
    advantage_spec_of,
    check_config,
    check_one_output_per_session,
    privileged_messages,
    privileged_prompt_ids,
    sod_advantage_step,
    teacher_response_log_probs,
)
from sodctl.errors import SodctlUsageError  # noqa: E402
from sodctl.methods import METHODS, MethodSpec  # noqa: E402

pytestmark = pytest.mark.unit

RL_METHODS = [m.name for m in METHODS.values() if m.stage == "rl" and m.teacher != "self"]
LEADS = {
    "solution": "\n\nA reference solution, for you alone: {text}",
    "hint": "\n\nA hint: {text}",
}


def spec_of(method: MethodSpec, **knobs) -> AdvantageSpec:
    return AdvantageSpec(
        grpo=method.grpo,
        opd=method.opd,
        weighting=str(method.weighting),  # type: ignore[arg-type]
        clip_weights=method.clip_weights,
        **knobs,
    )


def reference(trajs: list[Traj], spec: AdvantageSpec, **truth_kw) -> AdvantageOutput:
    t = truth(trajs, **truth_kw)
    return compute_advantages(
        spec,
        rewards_B=t.rewards_B,
        group_ids_B=t.group_ids_B,
        response_mask=t.mask_BT,
        old_log_probs=t.old_BT if spec.opd else None,
        teacher_log_probs=t.teacher_BT if spec.opd else None,
        first_error_step_B=t.first_error_B,
    )


def close(a: torch.Tensor, b: torch.Tensor) -> None:
    torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)


# ------------------------------------------------------------ 1. the pure step


@pytest.mark.parametrize("name", RL_METHODS)
def test_the_step_equals_the_core_on_the_aligned_tensors(name):
    trajs = make_trajs()
    spec = spec_of(METHODS[name])
    adv_BT, w_BT, metrics = sod_advantage_step(nested_fields(trajs), spec)
    ref = reference(trajs, spec)
    close(adv_BT, ref.advantages_BT)
    assert adv_BT.abs().sum() > 0
    assert (adv_BT[truth(trajs).mask_BT == 0] == 0).all()
    if spec.opd:
        close(w_BT, ref.token_weights_BT)
        for k, v in ref.metrics.items():
            assert metrics[k] == pytest.approx(v, abs=1e-6), k
    else:
        assert w_BT is None
    calls = sum(t.tool_calls for t in trajs)
    assert metrics["rollout/tool_calls"] == pytest.approx(calls / len(trajs))
    assert metrics["rollout/tool_error_rate"] == pytest.approx(
        sum(t.tool_errors for t in trajs) / calls
    )


def test_padding_rows_get_zero_and_stay_out_of_the_core():
    trajs = make_trajs()
    pad = Traj("padX", 0, [2] * 127, [2], [0], 0.0, 3, 9, 9)  # as padding_utils builds them
    fields = nested_fields([*trajs, pad, dataclasses.replace(pad, session=1)])
    spec = spec_of(METHODS["sod"])
    adv_BT, w_BT, metrics = sod_advantage_step(
        fields, spec, is_padding_B=torch.tensor([False] * len(trajs) + [True, True])
    )
    ref = reference(trajs, spec)
    T = ref.advantages_BT.shape[1]
    close(adv_BT[: len(trajs), :T], ref.advantages_BT)
    assert (adv_BT[len(trajs) :] == 0).all() and (w_BT[len(trajs) :] == 0).all()
    assert metrics["sod/steps_per_traj"] == pytest.approx(ref.metrics["sod/steps_per_traj"])
    assert metrics["rollout/tool_calls"] == pytest.approx(
        sum(t.tool_calls for t in trajs) / len(trajs)
    )


def test_the_loss_form_returns_grpo_advantages_and_the_token_weights():
    trajs = make_trajs()
    spec = spec_of(METHODS["sod"], opd_form="loss")
    adv_BT, w_BT, _ = sod_advantage_step(nested_fields(trajs), spec)
    ref = reference(trajs, spec)
    close(adv_BT, ref.advantages_BT)
    close(w_BT, ref.token_weights_BT)
    grpo_only = reference(trajs, spec_of(METHODS["grpo"]))
    close(adv_BT, grpo_only.advantages_BT)


@pytest.mark.parametrize("name", ["heuristic-weighting", "mask-after-wrong"])
def test_a_weighting_that_needs_tool_errors_refuses_a_batch_without_them(name):
    fields = nested_fields(make_trajs())
    fields["extra_fields"] = [{} for _ in fields["uid"]]
    with pytest.raises(SodctlUsageError, match="sod_first_error_step"):
        sod_advantage_step(fields, spec_of(METHODS[name]))
    sod_advantage_step(fields, spec_of(METHODS["sod"]))  # others do not need them


# -------------------------------------------------------- 2. the realignment


def test_the_core_sees_the_teacher_log_prob_of_each_response_token(monkeypatch):
    trajs = make_trajs()
    seen = {}

    def spy(spec, **kw):
        seen.update(kw)
        return compute_advantages(spec, **kw)

    monkeypatch.setattr(sod_trainer, "compute_advantages", spy)
    sod_advantage_step(nested_fields(trajs), spec_of(METHODS["sod"]))
    t = truth(trajs)
    on = t.mask_BT.bool()
    assert on.sum() > 20
    assert torch.equal(seen["teacher_log_probs"][on], t.teacher_BT[on])  # exact: dyadic values
    assert torch.equal(seen["old_log_probs"][on], t.old_BT[on])
    assert (seen["teacher_log_probs"][~on] == 0).all()


def test_an_off_by_one_realignment_would_fail_the_check():
    trajs = make_trajs()
    f = nested_fields(trajs)
    aligned = teacher_response_log_probs(
        f["teacher_logprobs"],
        f["response_mask"],
        teacher_ids=f["teacher_ids"],
        responses=f["responses"],
    )
    expected = torch.tensor([v for t in trajs for v in t.aligned(teacher_lp)])
    assert torch.equal(aligned.values(), expected)
    # the rows one later (what a realignment that forgets the shift takes) are other tokens'
    values, offsets = f["teacher_logprobs"].values()[:, 0], f["teacher_logprobs"].offsets()
    lens = f["response_mask"].offsets().diff()
    late = torch.cat([values[e - n : e] for e, n in zip(offsets[1:], lens)])
    assert not torch.equal(late, expected)
    # a producer whose rows score their own token instead of the next one is caught
    shifted_ids = [torch.tensor(t.seq, dtype=torch.int32).unsqueeze(-1) for t in trajs]
    with pytest.raises(ValueError, match="misaligned"):
        teacher_response_log_probs(
            f["teacher_logprobs"],
            f["response_mask"],
            teacher_ids=torch.nested.as_nested_tensor(shifted_ids, layout=torch.jagged),
            responses=f["responses"],
        )


def test_top_k_teacher_log_probs_are_refused():
    trajs = make_trajs()
    rows = [vllm_rows(t.seq, teacher_lp)[1].expand(-1, 4) for t in trajs]
    f = nested_fields(trajs)
    f["teacher_logprobs"] = torch.nested.as_nested_tensor(rows, layout=torch.jagged)
    with pytest.raises(SodctlUsageError, match="top-4"):
        sod_advantage_step(f, spec_of(METHODS["sod"]))


# ------------------------------------------- 4a. GRPO parity with verl's function


def test_grpo_matches_verl_compute_grpo_outcome_advantage():
    trajs = make_trajs()
    f = nested_fields(trajs)
    adv_BT, _, _ = sod_advantage_step(f, spec_of(METHODS["grpo"]))
    T = adv_BT.shape[1]
    verl_adv, _ = compute_grpo_outcome_advantage(
        token_level_rewards=f["rm_scores"].to_padded_tensor(0.0, output_size=(len(trajs), T)),
        response_mask=f["response_mask"].to_padded_tensor(0, output_size=(len(trajs), T)),
        index=np.array(f["uid"], dtype=object),
    )
    close(adv_BT, verl_adv)
    assert verl_adv.abs().sum() > 0


# --------------------------------------------------------- config and guards


def _sod_section(spec: AdvantageSpec, privileged: str | None = None) -> dict:
    return {
        "method": "sod",
        "advantage": dataclasses.asdict(spec),
        "privileged": privileged,
        "privileged_leads": dict(LEADS),
    }


@pytest.fixture(scope="module")
def base_config() -> DictConfig:
    from hydra import compose, initialize_config_module

    with initialize_config_module(config_module="verl.trainer.config", version_base=None):
        cfg = compose(
            config_name="ppo_trainer",
            overrides=[
                "algorithm.adv_estimator=grpo",
                "actor_rollout_ref.rollout.n=4",
                "actor_rollout_ref.rollout.calculate_log_probs=true",
                "distillation.enabled=true",
                "distillation.distillation_loss.loss_mode=k1",
                "trainer.v1.trainer_mode=sod_sync",
            ],
        )
    OmegaConf.set_struct(cfg, False)
    return cfg


def config_for(base: DictConfig, spec: AdvantageSpec, privileged: str | None = None) -> DictConfig:
    cfg = copy.deepcopy(base)
    cfg.sod = _sod_section(spec, privileged)
    if privileged is not None or not spec.opd:
        cfg.distillation.enabled = False
    return cfg


def test_advantage_spec_of_reads_the_section_and_names_a_bad_key(base_config):
    spec = spec_of(METHODS["no-clipping"], delta=0.3, opd_form="loss")
    cfg = config_for(base_config, spec)
    assert advantage_spec_of(cfg) == spec
    cfg.sod.advantage.wieghting = "sod"
    with pytest.raises(SodctlUsageError, match="unknown key 'wieghting'"):
        advantage_spec_of(cfg)
    cfg.sod.advantage = None
    with pytest.raises(SodctlUsageError, match="sod.advantage"):
        advantage_spec_of(cfg)
    cfg.sod.advantage = {**dataclasses.asdict(spec), "grpo": False, "weighting": "gated"}
    with pytest.raises(SodctlUsageError, match="gated"):
        advantage_spec_of(cfg)


def test_check_config_says_what_to_set(base_config):
    check_config(config_for(base_config, spec_of(METHODS["sod"])))
    check_config(config_for(base_config, spec_of(METHODS["opsd-gt"]), "solution"))
    cfg = config_for(base_config, spec_of(METHODS["sod"]))
    cfg.algorithm.adv_estimator = "gae"
    with pytest.raises(SodctlUsageError, match="adv_estimator=grpo"):
        check_config(cfg)
    cfg = config_for(base_config, spec_of(METHODS["sod"]))
    cfg.distillation.enabled = False
    with pytest.raises(SodctlUsageError, match="distillation.enabled=true"):
        check_config(cfg)
    cfg = config_for(base_config, spec_of(METHODS["opsd-hint"]), "hint")
    cfg.distillation.enabled = True
    with pytest.raises(SodctlUsageError, match="distillation.enabled=false"):
        check_config(cfg)


def test_the_trainer_checks_its_config_before_verl_builds_anything(base_config):
    cfg = config_for(base_config, spec_of(METHODS["sod"]))
    cfg.algorithm.norm_adv_by_std_in_grpo = False
    with pytest.raises(SodctlUsageError, match="norm_adv_by_std_in_grpo=true"):
        SODTrainerSync(config=cfg)


def test_a_session_with_several_outputs_is_refused():
    check_one_output_per_session(["u1_0_0", "u1_1_0", "pad9_0_0"])
    with pytest.raises(SodctlUsageError, match="one agent-loop output per session"):
        check_one_output_per_session(["u1_0_0", "u1_0_1"])


def test_the_trainer_is_registered_under_sod_sync():
    from verl.trainer.ppo.v1.trainer_base import TRAINER_REGISTRY, get_trainer_cls

    assert get_trainer_cls("sod_sync") is SODTrainerSync
    assert TRAINER_REGISTRY["sod_sync"] is SODTrainerSync
    assert issubclass(SODTrainerSync, PPOTrainerSync)


# --------------------------------------------------- OPSD: the privileged prompt


@pytest.fixture(scope="module")
def bpe_tok():
    from sodctl.models.tiny import build_tokenizer

    corpus = ["What is 2+3? A reference solution, for you alone: 5. A hint: add."] * 20
    return build_tokenizer(corpus=corpus, vocab_size=300)


def _render(tok, messages, tools=None) -> list[int]:
    text = tok.apply_chat_template(
        messages, tools=tools, add_generation_prompt=True, tokenize=False
    )
    return tok(text, add_special_tokens=False)["input_ids"]


def test_the_privileged_prompt_is_the_rollout_prompt_with_the_text_in(bpe_tok):
    from sodctl.tools.code_interpreter import CODE_INTERPRETER_SCHEMA

    msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 2+3?"}]
    priv = privileged_messages(msgs, "5.", LEADS["solution"])
    assert (
        priv[-1]["content"].endswith("for you alone: 5.") and msgs[-1]["content"] == "What is 2+3?"
    )
    rollout = _render(bpe_tok, msgs, [CODE_INTERPRETER_SCHEMA])  # the rollout saw the tools
    got = privileged_prompt_ids(bpe_tok, msgs, priv, rollout)  # rendered here without them
    assert got == _render(bpe_tok, priv, [CODE_INTERPRETER_SCHEMA])
    with pytest.raises(ValueError, match="does not reproduce"):
        privileged_prompt_ids(bpe_tok, msgs, priv, rollout[:-2])


# ------------------------------------- 3. the trainer on verl's real storage


@pytest.fixture(scope="module")
def storage():
    """A real TransferQueue (controller + one SimpleStorage unit) on a local Ray."""
    import ray

    started = not ray.is_initialized()
    if started:
        ray.init(address="local", num_cpus=4, include_dashboard=False, log_to_driver=False)
    tq.init(OmegaConf.create({"backend": {"SimpleStorage": {"num_data_storage_units": 1}}}))
    yield
    tq.close()
    if started:
        ray.shutdown()


def make_trainer(cfg: DictConfig, actor: FakeActor | None = None, tokenizer=None) -> SODTrainerSync:
    trainer = SODTrainerSync.__new__(SODTrainerSync)
    trainer.config = cfg
    trainer.actor_rollout_wg = actor or FakeActor()
    trainer.tokenizer = tokenizer
    if cfg.algorithm.use_kl_in_reward:
        trainer.kl_ctrl_in_reward = get_kl_controller(cfg.algorithm.kl_ctrl)
    return trainer


def stored_batch(
    trainer: SODTrainerSync, trajs: list[Traj], *, teacher: bool, pad_to: int = 5
) -> KVBatchMeta:
    """The batch as ``_step_once`` holds it at the advantage: stored by the agent loop,
    padded and reordered as ``_balance_batch`` does, scored by ``_compute_old_log_prob``."""
    put_like_agent_loop(trajs, teacher=teacher)
    listed = tq.kv_list("train")["train"]
    keys = [t.key for t in trajs]
    batch = KVBatchMeta(keys=keys, tags=[listed[k] for k in keys], partition_id="train")
    batch = upsample_batch_to_divisible_size(batch, pad_to, eos_token_id=2)
    batch.reorder(list(range(len(batch)))[::-1])
    return trainer._compute_old_log_prob(batch, {})


def read(batch: KVBatchMeta, field: str = "advantages") -> dict[str, torch.Tensor]:
    data = tq.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id, select_fields=[field])
    return dict(zip(batch.keys, data[field].unbind()))


def clear(batch: KVBatchMeta) -> None:
    tq.kv_clear(keys=list(batch.keys), partition_id=batch.partition_id)


def check_advantages(batch: KVBatchMeta, trajs: list[Traj], ref: AdvantageOutput) -> None:
    got = read(batch)
    for b, t in enumerate(trajs):
        R = len(t.response_ids)
        close(got[t.key], ref.advantages_BT[b, :R])
    pads = [k for k, tag in zip(batch.keys, batch.tags) if tag.get("is_padding")]
    assert pads and all((got[k] == 0).all() for k in pads)


@pytest.mark.integration
@pytest.mark.parametrize("name", ["sod", "opd", "grpo", "heuristic-weighting"])
def test_compute_advantage_on_real_storage_equals_the_core(storage, base_config, name):
    spec = spec_of(METHODS[name])
    trainer = make_trainer(config_for(base_config, spec))
    trajs = make_trajs()
    batch = stored_batch(trainer, trajs, teacher=spec.opd)
    metrics: dict = {}
    try:
        out = trainer._compute_advantage(batch, metrics)
        assert isinstance(out, KVBatchMeta) and "advantages" in out.fields
        ref = reference(trajs, spec)
        check_advantages(batch, trajs, ref)
        for k, v in ref.metrics.items():
            assert metrics[k] == pytest.approx(v, abs=1e-6), k
        assert "rollout/tool_error_rate" in metrics
        returns = read(batch, "returns")
        assert all(torch.equal(returns[k], v) for k, v in read(batch).items())
    finally:
        clear(batch)


@pytest.mark.integration
def test_the_loss_form_writes_the_weights_and_the_aligned_teacher(storage, base_config):
    spec = spec_of(METHODS["sod"], opd_form="loss")
    trainer = make_trainer(config_for(base_config, spec))
    trajs = make_trajs()
    batch = stored_batch(trainer, trajs, teacher=True)
    try:
        trainer._compute_advantage(batch, {})
        ref = reference(trajs, spec)
        weights, teacher = read(batch, SOD_TOKEN_WEIGHTS), read(batch, SOD_TEACHER_LOG_PROBS)
        for b, t in enumerate(trajs):
            R = len(t.response_ids)
            close(weights[t.key], ref.token_weights_BT[b, :R])
            assert torch.equal(teacher[t.key], torch.tensor(t.aligned(teacher_lp)))
        check_advantages(batch, trajs, ref)
    finally:
        clear(batch)


@pytest.mark.integration
def test_grpo_matches_verl_own_compute_advantage(storage, base_config):
    cfg = config_for(base_config, spec_of(METHODS["grpo"]))
    trainer = make_trainer(cfg)
    trajs = make_trajs()
    batch = stored_batch(trainer, trajs, teacher=False)
    try:
        PPOTrainerSync._compute_advantage(trainer, batch, {})
        verl_adv = read(batch)
        trainer._compute_advantage(batch, {})
        ours = read(batch)
        for k in batch.keys:
            close(ours[k], verl_adv[k])
        assert any(v.abs().sum() > 0 for v in ours.values())
    finally:
        clear(batch)


@pytest.mark.integration
def test_a_kl_penalty_in_the_reward_goes_through_verl(storage, base_config):
    spec = spec_of(METHODS["sod"])
    cfg = config_for(base_config, spec)
    cfg.algorithm.use_kl_in_reward = True
    cfg.algorithm.kl_ctrl.kl_coef = 0.5
    trainer = make_trainer(cfg)
    trajs = make_trajs()
    batch = stored_batch(trainer, trajs, teacher=True)
    try:
        old = tq.kv_batch_get(
            keys=batch.keys, partition_id="train", select_fields=["old_log_probs"]
        )
        ref_lp = torch.nested.as_nested_tensor(
            [x - 0.25 for x in old["old_log_probs"].unbind()], layout=torch.jagged
        )
        tq.kv_batch_put(
            keys=batch.keys,
            partition_id="train",
            fields=TensorDict({"ref_log_prob": ref_lp}, batch_size=len(batch)),
        )
        trainer._compute_advantage(batch, {})
        shaped = read(batch, "token_level_rewards")
        t = truth(trajs)
        rewards_B = torch.stack([shaped[x.key].sum() for x in trajs])
        assert not torch.allclose(rewards_B, t.rewards_B)  # the penalty changed them
        ref = compute_advantages(
            spec, rewards_B=rewards_B, group_ids_B=t.group_ids_B, response_mask=t.mask_BT,
            old_log_probs=t.old_BT, teacher_log_probs=t.teacher_BT,
        )  # fmt: skip
        check_advantages(batch, trajs, ref)
    finally:
        clear(batch)


@pytest.mark.integration
def test_tokens_rejected_by_rollout_correction_get_no_advantage(storage, base_config):
    spec = spec_of(METHODS["sod"])
    cfg = config_for(base_config, spec)
    cfg.algorithm.rollout_correction.rollout_rs = "token_k2"
    cfg.algorithm.rollout_correction.rollout_rs_threshold = 0.5
    trainer = make_trainer(cfg)
    trajs = make_trajs()
    batch = stored_batch(trainer, trajs, teacher=True)
    try:
        # the rollout engine disagreed with the actor on every 4th token: verl rejects them
        got = tq.kv_batch_get(
            keys=batch.keys, partition_id="train", select_fields=["rollout_log_probs"]
        )
        off = [x - 3.0 * (torch.arange(len(x)) % 4 == 0) for x in got["rollout_log_probs"].unbind()]
        rollout = torch.nested.as_nested_tensor(off, layout=torch.jagged)
        tq.kv_batch_put(
            keys=batch.keys,
            partition_id="train",
            fields=TensorDict({"rollout_log_probs": rollout}, batch_size=len(batch)),
        )
        trainer._compute_advantage(batch, {})
        ref = reference(trajs, spec)  # steps found on the agent loop's mask
        adv, kept = read(batch), read(batch, "response_mask")
        for b, t in enumerate(trajs):
            R = len(t.response_ids)
            rejected = (torch.arange(R) % 4 == 0) & (torch.tensor(t.response_mask) == 1)
            assert (kept[t.key][rejected] == 0).all()
            close(adv[t.key], ref.advantages_BT[b, :R] * kept[t.key])
    finally:
        clear(batch)


def test_opsd_without_the_privileged_text_is_one_line():
    with pytest.raises(SodctlUsageError, match="extra_info.hint"):
        sod_trainer.privileged_text({"solution": "5"}, "hint", "u1")


@pytest.mark.integration
def test_opsd_scores_the_response_under_the_privileged_prompt(storage, base_config, bpe_tok):
    from sodctl.tools.code_interpreter import CODE_INTERPRETER_SCHEMA

    spec = spec_of(METHODS["opsd-gt"])
    actor = FakeActor()
    trainer = make_trainer(config_for(base_config, spec, "solution"), actor, bpe_tok)
    trajs = make_trajs()
    questions = {"a": "What is 2+3?", "b": "Add 2 and 3.", "c": "2+3=?"}
    for t in trajs:
        t.messages = [{"role": "user", "content": questions[t.uid[0]]}]
        t.extra_info = {"solution": f"{len(t.uid)}."}
        t.prompt_ids = _render(bpe_tok, t.messages, [CODE_INTERPRETER_SCHEMA])
    batch = stored_batch(trainer, trajs, teacher=False)
    try:
        trainer._compute_advantage(batch, {})
        scored = dict(zip(batch.keys, actor.calls[-1]["input_ids"]))
        assert actor.calls[-1]["calculate_entropy"] is False
        assert actor.calls[-1]["temperature"] == base_config.actor_rollout_ref.rollout.temperature
        priv_lens = []
        for t in trajs:
            priv = privileged_messages(t.messages, t.extra_info["solution"], LEADS["solution"])
            priv_prompt = _render(bpe_tok, priv, [CODE_INTERPRETER_SCHEMA])
            assert scored[t.key] == priv_prompt + t.response_ids
            priv_lens.append(len(priv_prompt))
        ref = reference(trajs, spec, teacher=student_lp, prompt_lens=priv_lens)
        check_advantages(batch, trajs, ref)
        assert not tq.kv_list(PRIVILEGED_PARTITION).get(PRIVILEGED_PARTITION)
    finally:
        clear(batch)
