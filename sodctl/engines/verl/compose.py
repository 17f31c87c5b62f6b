"""A sodctl experiment as the verl 0.9.1 configuration it runs with.

``rl_overrides(cfg)`` maps every hyper-parameter of a resolved sodctl config (REFERENCE
§4-§8) onto verl's ``ppo_trainer`` keys, as Hydra overrides of our own config
``conf/sod_trainer.yaml`` (verl's ``ppo_trainer`` plus a top-level ``sod:`` section);
``compose_rl(cfg)`` composes them with verl's own Hydra search path and runs verl's
``validate_config``, so a config that composes here is one verl accepts.
``FIDELITY`` lists each mapping with its value's source, for the README's table.

The ``sod:`` section is what our trainer (``sodctl.engines.verl.trainer``, registered
as verl trainer mode ``sod_sync``) reads: ``method``, ``advantage`` (exactly the fields
of ``sodctl.core.advantages.AdvantageSpec``: both engines build the same spec),
``privileged`` / ``privileged_leads`` (OPSD), ``prompt_wrapping`` / ``prompts_file``
(our dataset class wraps prompts at load as the local engine does).

GPU pools (verl 0.9.1 serves a teacher on GPUs of its own; colocation was removed):
``engine.nnodes`` x ``engine.n_gpus_per_node`` is the trainer pool (actor + vLLM
rollout), ``engine.teacher_nnodes`` x ``engine.teacher_n_gpus_per_node`` the teacher
pool of the external-teacher methods (OPD, SOD, the ablations). One 8-GPU node, as in
the paper: trainer 6 + teacher 2.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from sodctl.config.schema import sft_path_of
from sodctl.errors import SodctlUsageError

CONF_MODULE = "sodctl.engines.verl.conf"
RL_CONFIG = "sod_trainer"
SFT_CONFIG = "sod_sft"
TRAINER_MODE = "sod_sync"
SAVE_AT_END = 10**9


@dataclass(frozen=True)
class Mapping_:
    """One row of the fidelity table: a sodctl key, the verl key it sets, and why."""

    sodctl: str
    verl: str
    source: str


# sodctl key -> verl key, with where the value comes from (REFERENCE section or RELEASED-PROTOCOL item)
FIDELITY: tuple[Mapping_, ...] = (
    Mapping_("data.rl_path", "data.train_files", "§9: Open-AgentRL-30K or `sodctl data rl`"),
    Mapping_(
        "data.max_prompt_tokens",
        "data.max_prompt_length (+ filter_overlong_prompts)",
        "§4: 2,560; B4",
    ),
    Mapping_(
        "data.max_response_tokens",
        "data.max_response_length, rollout.response_length",
        "§4: 20,480",
    ),
    Mapping_(
        "data.prompt_wrapping",
        "data.custom_cls (sodctl's dataset) + sod.prompt_wrapping",
        "B13: one branch per file",
    ),
    Mapping_("train.train_batch_prompts", "data.train_batch_size", "§4: 64"),
    Mapping_(
        "train.ppo_mini_batch_prompts", "actor.ppo_mini_batch_size", "§4: 16 (4 updates per batch)"
    ),
    Mapping_("train.ppo_epochs", "actor.ppo_epochs", "§4: 1"),
    Mapping_("train.lr", "actor.optim.lr", "§4: 1e-6"),
    Mapping_(
        "train.weight_decay / betas / warmup_steps / lr_schedule",
        "actor.optim.*",
        "verl's defaults (paper silent); lr_schedule constant or cosine (others refused)",
    ),
    Mapping_("train.grad_clip", "actor.grad_clip, actor.optim.clip_grad", "§4: 1.0"),
    Mapping_(
        "train.clip_low / clip_high",
        "actor.clip_ratio_low / clip_ratio_high",
        "§4: 0.2 / 0.28 (clip-higher)",
    ),
    Mapping_("train.dual_clip", "actor.clip_ratio_c", "§4: 3.0"),
    Mapping_(
        "train.log_ratio_clamp",
        "(verl's fixed +-20 in compute_policy_loss)",
        "B12: 20; any other value is refused",
    ),
    Mapping_("train.loss_agg", "actor.loss_agg_mode", "§4: token-mean"),
    Mapping_(
        "train.kl_coef", "actor.use_kl_loss / kl_loss_coef, algorithm.use_kl_in_reward", "§4: 0"
    ),
    Mapping_("train.entropy_coef", "actor.entropy_coeff", "§4: 0"),
    Mapping_(
        "train.max_steps(_by_size)", "trainer.total_training_steps", "B15: 120 (0.6B) / 150 (1.7B)"
    ),
    Mapping_("train.epochs", "trainer.total_epochs", "§4: 1 (teachers 2)"),
    Mapping_(
        "train.save_every",
        "trainer.save_freq (+ hf_model in checkpoint.save_contents)",
        "ours: the final step at least",
    ),
    Mapping_("rollout.n", "rollout.n", "§4: 16"),
    Mapping_(
        "rollout.temperature / top_p / top_k",
        "rollout.temperature / top_p / top_k",
        "§4: 1.0 / 1.0 / off",
    ),
    Mapping_("rollout.max_turns", "multi_turn.max_assistant_turns / max_user_turns", "§4, §6: 16"),
    Mapping_(
        "rollout.tensor_parallel_size",
        "rollout.tensor_model_parallel_size",
        "appendix: TP 4 (2 on a 6-GPU pool)",
    ),
    Mapping_("engine.gpu_memory_utilization", "rollout.gpu_memory_utilization", "ours: 0.6"),
    Mapping_(
        "tool.*",
        "multi_turn.tool_config_path (sodctl's CodeInterpreterTool)",
        "§6: 60 s, 2,048 MB, released schema",
    ),
    Mapping_(
        "tool.max_observation_chars", "multi_turn.max_tool_response_length (middle cut)", "§6: 256"
    ),
    Mapping_("tool.max_parallel_calls", "multi_turn.max_parallel_calls", "B2: 1"),
    Mapping_(
        "reward.*",
        "reward.custom_reward_function (sodctl.rewards.verl_compat) + reward_kwargs",
        "§5, B3, B6, B7",
    ),
    Mapping_(
        "reward.overlong_penalty / overlong_buffer",
        "reward.reward_manager.name=dapo + overlong_buffer_cfg",
        "§5: DAPO, 1,024",
    ),
    Mapping_(
        "sod.* and the method's switches",
        "sod.advantage (AdvantageSpec) in trainer mode sod_sync",
        "§2-§3: eps 1e-6, delta 0.2",
    ),
    Mapping_(
        "teacher.path",
        "distillation.teacher_models.teacher_model.model_path",
        "§7: Qwen3-4B after SFT + GRPO",
    ),
    Mapping_(
        "engine.teacher_*",
        "distillation.nnodes / n_gpus_per_node, teacher inference TP / memory",
        "ours: 1 x 2 GPUs, TP 1",
    ),
    Mapping_(
        "engine.nnodes / n_gpus_per_node",
        "trainer.nnodes / n_gpus_per_node",
        "appendix: 8 x H20 (6 trainer + 2 teacher)",
    ),
    Mapping_(
        "logging.*", "trainer.project_name / experiment_name / logger", "W&B, offline by default"
    ),
    Mapping_("seed", "data.seed, actor data_loader_seed, rollout.seed", "ours"),
)


def _q(value: Any) -> str:
    """A value as a Hydra override right-hand side (JSON is valid Hydra grammar for
    strings, numbers, booleans, null and lists; strings are always quoted)."""
    if isinstance(value, str):
        return json.dumps(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_q(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{k}:{_q(v)}" for k, v in value.items()) + "}"
    return str(value)


def advantage_section(cfg: DictConfig) -> dict[str, Any]:
    """``sod.advantage``: the ``AdvantageSpec`` of the experiment, as plain values (the same
    spec the local engine builds, ``sodctl.engines.local.rl.advantage_spec``)."""
    from sodctl.config import method_spec
    from sodctl.core.advantages import AdvantageSpec

    method = method_spec(cfg)
    if method.stage != "rl":
        raise SodctlUsageError(
            f"method {method.name!r} is not an RL method; verl's PPO trainer does not run it"
        )
    if not method.opd:  # GRPO: the spec's OPD knobs are unused but must be valid
        spec = AdvantageSpec(grpo=True, opd=False, weighting="none")
    else:
        spec = AdvantageSpec(
            grpo=method.grpo,
            opd=True,
            weighting=str(method.weighting),  # type: ignore[arg-type]
            clip_weights=method.clip_weights,
            eps=float(cfg.sod.eps),
            delta=float(cfg.sod.delta),
            heuristic_gamma=float(cfg.sod.heuristic_gamma),
            opd_coef=float(cfg.sod.opd_coef),
            opd_form=str(cfg.sod.opd_form),  # type: ignore[arg-type]
            gate_beta_min=float(cfg.sod.gate_beta_min),
            gate_beta_max=float(cfg.sod.gate_beta_max),
            gate_gamma=float(cfg.sod.gate_gamma),
            pattern_low=float(cfg.sod.pattern_low),
            pattern_high=float(cfg.sod.pattern_high),
        )
    return {f.name: getattr(spec, f.name) for f in fields(spec)}


def _steps(cfg: DictConfig) -> int | None:
    from sodctl.config.schema import rl_max_steps

    return rl_max_steps(cfg)


def _rl_file(cfg: DictConfig) -> str:
    if cfg.data.rl_path is None:
        raise SodctlUsageError(
            "the verl engine reads a local RL parquet: set data.rl_path (sodctl data fetch "
            "rl-30k writes data/rl-30k/rl.parquet; sodctl data rl writes data/rl/rl.parquet)"
        )
    return str(Path(cfg.data.rl_path).expanduser().resolve())


def check_inputs(cfg: DictConfig, stage: str, *, models: bool = True) -> None:
    """What can be checked before verl is imported or anything is written: the data file,
    the settings verl cannot honour (``check_supported``), and (``models``) that the
    student and teacher exist; each problem is one line."""
    from sodctl.config import method_spec

    if stage == "sft":
        _sft_file(cfg)
        verl_lr_schedule(cfg, "sft")
    else:
        _rl_file(cfg)
        check_supported(cfg)
    if not models:
        return
    from sodctl.engines.local.run import require_model

    require_model(cfg.model.path)
    if stage == "rl" and method_spec(cfg).teacher == "external":
        require_model(cfg.teacher.path)


def verl_lr_schedule(cfg: DictConfig, section: str) -> str:
    """``{section}.lr_schedule`` as verl's ``optim.lr_scheduler_type``: its FSDP optimiser
    config accepts only ``constant`` and ``cosine``, so ``linear`` and ``wsd`` (the local
    engine's) are refused in one line instead of running another schedule."""
    kind = str(cfg[section].lr_schedule)
    if kind not in ("constant", "cosine"):
        raise SodctlUsageError(
            f"{section}.lr_schedule={kind}: verl 0.9.1's optimiser offers only 'constant' and "
            "'cosine'; use one of them or the local engine"
        )
    return kind


def check_supported(cfg: DictConfig) -> None:
    """One line for a setting the verl engine cannot honour (instead of running another one)."""
    t = cfg.train
    verl_lr_schedule(cfg, "train")
    if t.log_ratio_clamp is None or float(t.log_ratio_clamp) != 20.0:
        raise SodctlUsageError(
            f"train.log_ratio_clamp={t.log_ratio_clamp}: verl 0.9.1 clamps log(pi/pi_old) to "
            "+-20 inside its policy loss and offers no setting; use 20.0 (the released value) "
            "or the local engine"
        )
    if cfg.tool.on_invalid_call != "released":
        raise SodctlUsageError(
            f"tool.on_invalid_call={cfg.tool.on_invalid_call}: verl's tool agent loop handles "
            "invalid calls its own (the released) way; use 'released' or the local engine"
        )
    if cfg.rollout.turn_layout != "verl":
        raise SodctlUsageError(
            f"rollout.turn_layout={cfg.rollout.turn_layout}: verl's agent loop lays turns out "
            "its own way ('verl'); use 'verl' or the local engine"
        )
    if cfg.sod.opd_form == "loss" and cfg.method.opd and cfg.method.teacher == "self":
        raise SodctlUsageError(
            "sod.opd_form=loss with OPSD: verl runs the separate OPD loss as a distillation "
            "loss, which needs its teacher pool, and OPSD has none; use sod.opd_form=advantage "
            "(the released form) or the local engine"
        )
    n_train = int(cfg.engine.n_gpus_per_node)
    tp = int(cfg.rollout.tensor_parallel_size)
    if n_train % tp:
        raise SodctlUsageError(
            f"rollout.tensor_parallel_size={tp} does not divide engine.n_gpus_per_node={n_train} "
            "(the trainer pool's GPUs per node); verl places whole vLLM replicas"
        )


def rl_overrides(
    cfg: DictConfig, *, tool_config_path: str | Path, run_dir: str | Path
) -> list[str]:
    """The Hydra overrides that turn ``conf/sod_trainer.yaml`` into this experiment's run
    (module docstring; every key is in ``FIDELITY``)."""
    from sodctl.config import method_spec
    from sodctl.data.prompting import PRIVILEGED_LEADS

    check_supported(cfg)
    method = method_spec(cfg)
    steps = _steps(cfg)
    t, r, eng = cfg.train, cfg.rollout, cfg.engine
    prompt_len, response_len = int(cfg.data.max_prompt_tokens), int(cfg.data.max_response_tokens)
    run_dir = Path(run_dir)
    o: dict[str, Any] = {
        # data
        "data.train_files": [_rl_file(cfg)],
        "data.val_files": [_rl_file(cfg)],  # required by verl; validation is off (test_freq -1)
        "data.prompt_key": "prompt",
        "data.reward_fn_key": "data_source",
        "data.max_prompt_length": prompt_len,
        "data.max_response_length": response_len,
        "data.train_batch_size": int(t.train_batch_prompts),
        "data.filter_overlong_prompts": True,
        "data.truncation": "error",
        "data.return_raw_chat": True,
        "data.shuffle": True,
        "data.seed": int(cfg.seed),
        "data.custom_cls.path": "pkg://sodctl.engines.verl.dataset",
        "data.custom_cls.name": "SodRLDataset",
        "+data.sod_prompt_wrapping": str(cfg.data.prompt_wrapping),
        "+data.sod_prompts_file": cfg.data.prompts_file,
        # the policy
        "actor_rollout_ref.model.path": str(cfg.model.path),
        "actor_rollout_ref.actor.optim.lr": float(t.lr),
        "actor_rollout_ref.actor.optim.weight_decay": float(t.weight_decay),
        "actor_rollout_ref.actor.optim.betas": [float(b) for b in t.betas],
        "actor_rollout_ref.actor.optim.lr_warmup_steps": int(t.warmup_steps) or -1,
        "actor_rollout_ref.actor.optim.lr_scheduler_type": verl_lr_schedule(cfg, "train"),
        "actor_rollout_ref.actor.optim.clip_grad": float(t.grad_clip),
        "actor_rollout_ref.actor.grad_clip": float(t.grad_clip),
        "actor_rollout_ref.actor.ppo_mini_batch_size": int(t.ppo_mini_batch_prompts),
        "actor_rollout_ref.actor.ppo_epochs": int(t.ppo_epochs),
        "actor_rollout_ref.actor.clip_ratio_low": float(t.clip_low),
        "actor_rollout_ref.actor.clip_ratio_high": float(t.clip_high),
        "actor_rollout_ref.actor.clip_ratio_c": float(t.dual_clip),
        "actor_rollout_ref.actor.loss_agg_mode": str(t.loss_agg),
        "actor_rollout_ref.actor.entropy_coeff": float(t.entropy_coef),
        "actor_rollout_ref.actor.use_kl_loss": float(t.kl_coef) > 0,
        "actor_rollout_ref.actor.kl_loss_coef": float(t.kl_coef),
        "actor_rollout_ref.actor.use_dynamic_bsz": True,
        "actor_rollout_ref.actor.ppo_max_token_len_per_gpu": prompt_len + response_len,
        "actor_rollout_ref.actor.data_loader_seed": int(cfg.seed),
        "actor_rollout_ref.actor.checkpoint.save_contents": [
            "model",
            "optimizer",
            "extra",
            "hf_model",
        ],
        # the rollout (vLLM) and the tool loop
        "actor_rollout_ref.rollout.name": "vllm",
        "reward.reward_model.rollout.name": "vllm",  # no reward model; the key must not stay ???
        "critic.model.path": str(cfg.model.path),  # no critic (GRPO); keeps the config whole
        "actor_rollout_ref.rollout.mode": "async",
        "actor_rollout_ref.rollout.n": int(r.n),
        "actor_rollout_ref.rollout.temperature": float(r.temperature),
        "actor_rollout_ref.rollout.top_p": float(r.top_p),
        "actor_rollout_ref.rollout.top_k": int(r.top_k),
        "actor_rollout_ref.rollout.seed": int(cfg.seed),
        "actor_rollout_ref.rollout.tensor_model_parallel_size": int(r.tensor_parallel_size),
        "actor_rollout_ref.rollout.gpu_memory_utilization": float(eng.gpu_memory_utilization),
        "actor_rollout_ref.rollout.calculate_log_probs": True,
        "actor_rollout_ref.rollout.log_prob_use_dynamic_bsz": True,
        "actor_rollout_ref.rollout.multi_turn.max_user_turns": int(r.max_turns),
        # the advantage: verl computes GRPO's rewards and groups; our trainer applies sodctl.core
        "algorithm.adv_estimator": "grpo",
        "algorithm.norm_adv_by_std_in_grpo": True,
        "algorithm.use_kl_in_reward": False,
        # the trainer
        "trainer.use_v1": True,
        "trainer.v1.trainer_mode": TRAINER_MODE,
        "trainer.nnodes": int(eng.nnodes),
        "trainer.n_gpus_per_node": int(eng.n_gpus_per_node),
        "trainer.total_epochs": int(t.epochs),
        "trainer.total_training_steps": steps,
        # verl saves when save_freq > 0 on multiples of it and on the last step: a huge value
        # saves the final step alone (save_every null), as the local engine does
        "trainer.save_freq": int(t.save_every) if t.save_every else SAVE_AT_END,
        "trainer.max_actor_ckpt_to_keep": int(t.keep_checkpoints),
        "trainer.test_freq": -1,
        "trainer.val_before_train": False,
        "trainer.project_name": str(cfg.logging.project),
        "trainer.experiment_name": str(cfg.logging.run_name or cfg.experiment),
        "trainer.logger": ["console", "wandb"]
        if cfg.logging.wandb_mode != "disabled"
        else ["console"],
        "trainer.default_local_dir": str(run_dir / "checkpoints"),
        "trainer.rollout_data_dir": str(run_dir / "rollouts"),
        # sodctl's own section
        "sod.method": method.name,
        "sod.advantage": advantage_section(cfg),
        "sod.privileged": None if method.privileged == "none" else str(method.privileged),
        "sod.privileged_leads": dict(PRIVILEGED_LEADS),
        "sod.prompt_wrapping": str(cfg.data.prompt_wrapping),
        "sod.prompts_file": cfg.data.prompts_file,
        "sod.tool_shaping": str(cfg.reward.tool_shaping),
    }
    o.update(_tool_loop_overrides(cfg, tool_config_path))
    o.update(_reward_overrides(cfg))
    # every Ray worker registers the plugin strictly (a broken install stops the run)
    o["ray_kwargs.ray_init.runtime_env"] = {
        "env_vars": {"SODCTL_VERL_STRICT": "1", "WANDB_MODE": str(cfg.logging.wandb_mode)}
    }
    if method.teacher == "external":
        teacher = cfg.teacher
        o.update(
            {
                "distillation.enabled": True,
                "distillation.nnodes": int(eng.teacher_nnodes),
                "distillation.n_gpus_per_node": int(eng.teacher_n_gpus_per_node),
                "distillation.teacher_models.teacher_model.model_path": str(teacher.path),
                "distillation.teacher_models.teacher_model.inference.tensor_model_parallel_size": int(
                    eng.teacher_tensor_parallel_size
                ),
                "distillation.teacher_models.teacher_model.inference.gpu_memory_utilization": float(
                    eng.gpu_memory_utilization
                ),
                "distillation.distillation_loss.use_task_rewards": True,
                **_opd_loss_settings(cfg),
            }
        )
    return o


def _opd_loss_settings(cfg: DictConfig) -> dict[str, Any]:
    """verl's distillation loss. ``opd_form=advantage`` (released): k1 with policy gradient
    and coefficient 0 only starts the teacher and fills ``teacher_logprobs`` (VERL.md §2);
    the OPD term is sodctl's, in the advantage. ``opd_form=loss``: sodctl's
    ``sod_reinforce`` loss (``sodctl.engines.verl.loss``), back-propagated as it is, with
    ``sod.opd_coef`` as its coefficient."""
    key = "distillation.distillation_loss"
    if cfg.sod.opd_form == "loss":
        return {
            f"{key}.loss_mode": "sod_reinforce",
            f"{key}.use_policy_gradient": False,
            f"{key}.distillation_loss_coef": float(cfg.sod.opd_coef),
            f"{key}.loss_max_clamp": None,
        }
    return {
        f"{key}.loss_mode": "k1",
        f"{key}.use_policy_gradient": True,
        f"{key}.distillation_loss_coef": 0.0,
    }


def _tool_loop_overrides(cfg: DictConfig, tool_config_path: str | Path) -> dict[str, Any]:
    """verl's multi-turn tool loop with sodctl's agent loop (``agent_loop.rollout_overrides``)."""
    from sodctl.engines.verl.agent_loop import rollout_overrides

    keys = rollout_overrides(
        cfg.tool, str(tool_config_path), max_assistant_turns=int(cfg.rollout.max_turns)
    )
    return {f"actor_rollout_ref.rollout.{k}": v for k, v in keys.items()}


def _reward_overrides(cfg: DictConfig) -> dict[str, Any]:
    """The reward: sodctl's graders through verl's custom reward function, the DAPO
    overlong penalty through verl's ``dapo`` reward manager."""
    from sodctl.engines.verl.reward import reward_overrides

    out = reward_overrides(
        cfg.reward,
        max_response_tokens=int(cfg.data.max_response_tokens),
        sandbox_url=cfg.tool.sandbox_url if cfg.tool.backend == "sandbox-fusion" else None,
    )
    # keys verl's YAML does not declare are added with Hydra's "+"
    return {(f"+{k}" if k in _NEW_REWARD_KEYS else k): v for k, v in out.items()}


_NEW_REWARD_KEYS = ("reward.custom_reward_function.reward_kwargs", "reward.reward_kwargs")


def _simple(value: Any) -> bool:
    """A value the Hydra override grammar carries exactly (its quoted strings keep
    backslashes literally, so text with escapes, and nested values, are set afterwards)."""
    if isinstance(value, str):
        return not any(c in value for c in "\\\n\t'\"")
    if isinstance(value, (list, tuple)):
        return all(_simple(v) and not isinstance(v, (list, tuple, Mapping)) for v in value)
    return not isinstance(value, Mapping)


def compose(config_name: str, settings: Mapping[str, Any]) -> DictConfig:
    """Compose ``conf/<config_name>.yaml`` (which extends verl's own config through its
    ``pkg://`` search path) with ``settings`` (dotted key -> value; a leading ``+`` adds
    a key verl does not declare). Plain values go through Hydra as overrides, so a key
    that does not exist is an error; nested values and text with escapes are set on the
    composed config, on keys that must exist unless marked ``+``. Errors are one line."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    overrides = [f"{k}={_q(v)}" for k, v in settings.items() if _simple(v)]
    later = {k: v for k, v in settings.items() if not _simple(v)}
    if GlobalHydra.instance().is_initialized():
        GlobalHydra.instance().clear()
    try:
        with initialize_config_module(CONF_MODULE, version_base=None):
            config = hydra_compose(config_name, overrides=overrides)
    except Exception as e:  # noqa: BLE001 - Hydra raises many kinds; all are bad overrides here
        first = (str(e).splitlines() or [""])[0]
        raise SodctlUsageError(f"verl config {config_name}: {type(e).__name__}: {first}") from None
    for key, value in later.items():
        add = key.startswith("+")
        key = key.lstrip("+")
        if not add and OmegaConf.select(config, key, default="<absent>") == "<absent>":
            raise SodctlUsageError(f"verl config {config_name}: no key {key!r} to set")
        with open_dict(config):
            OmegaConf.update(config, key, value, merge=False, force_add=add)
    return config


def validate_rl(config: DictConfig) -> None:
    """verl's own checks (``verl.utils.config.validate_config``, as ``main_ppo`` runs them),
    with the errors as one line."""
    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import validate_config

    import sodctl.engines.verl.plugin  # noqa: F401 - registers sodctl's parts (the loss names)

    try:
        validate_config(
            config=config,
            use_reference_policy=need_reference_policy(config),
            use_critic=need_critic(config),
        )
    except (AssertionError, ValueError, TypeError, KeyError) as e:
        raise SodctlUsageError(
            f"verl rejects the composed config: {type(e).__name__}: {e}"
        ) from None


SFT_FIDELITY: tuple[Mapping_, ...] = (
    Mapping_(
        "data.sft_path", "data.train_files", "§9: Open-AgentRL-SFT-3K or `sodctl data sft --build`"
    ),
    Mapping_("sft.lr", "optim.lr", "§7: 5e-5 (B14: the released script set none: verl's 1e-5)"),
    Mapping_("sft.epochs", "trainer.total_epochs", "§7: 5"),
    Mapping_("sft.batch_size", "data.train_batch_size", "§7: 128"),
    Mapping_("sft.max_length / truncation", "data.max_length / truncation", "§7: 32,768, right"),
    Mapping_(
        "sft.weight_decay / betas / warmup_ratio / lr_schedule / grad_clip",
        "optim.*",
        "verl's SFT defaults; lr_schedule constant or cosine (others refused)",
    ),
)


def _sft_file(cfg: DictConfig) -> str:
    local = sft_path_of(cfg)
    if local is None:
        raise SodctlUsageError(
            "the verl engine reads a local SFT parquet: set data.sft_path (sodctl data sft "
            "writes data/sft-3k/sft.parquet; sodctl data sft --build writes data/sft/sft.parquet)"
        )
    return str(Path(local).expanduser().resolve())


def sft_overrides(cfg: DictConfig, *, run_dir: str | Path) -> dict[str, Any]:
    """Overrides of ``conf/sod_sft.yaml`` (verl's ``sft_trainer_engine``) for the SFT stage:
    the multi-turn ``messages`` + ``tools`` corpus, loss on assistant turns (verl's
    ``MultiTurnSFTDataset``), the paper's recipe (``SFT_FIDELITY``)."""
    from sodctl.config.schema import max_steps_of

    s, eng = cfg.sft, cfg.engine
    run_dir = Path(run_dir)
    o: dict[str, Any] = {
        "model.path": str(cfg.model.path),
        "data.train_files": [_sft_file(cfg)],
        "data.messages_key": "messages",
        "data.tools_key": "tools",
        "data.custom_cls.path": "pkg://sodctl.engines.verl.dataset",
        "data.custom_cls.name": "SodSFTDataset",
        "data.max_length": int(s.max_length),
        "data.truncation": str(s.truncation),
        "data.train_batch_size": int(s.batch_size),
        "data.use_dynamic_bsz": True,
        "data.max_token_len_per_gpu": int(s.max_length),
        "optim.lr": float(s.lr),
        "optim.weight_decay": float(s.weight_decay),
        "optim.betas": [float(b) for b in s.betas],
        "optim.lr_warmup_steps_ratio": float(s.warmup_ratio),
        "optim.lr_scheduler_type": verl_lr_schedule(cfg, "sft"),
        "optim.clip_grad": float(s.grad_clip),
        "checkpoint.save_contents": ["model", "optimizer", "extra", "hf_model"],
        "trainer.total_epochs": int(s.epochs),
        "trainer.total_training_steps": max_steps_of(cfg, "sft"),
        "trainer.save_freq": int(s.save_every) if s.save_every else -1,
        "trainer.max_ckpt_to_keep": int(s.keep_checkpoints),
        "trainer.seed": int(cfg.seed),
        "trainer.nnodes": int(eng.nnodes),
        "trainer.n_gpus_per_node": int(eng.n_gpus_per_node),
        "trainer.project_name": str(cfg.logging.project),
        "trainer.experiment_name": str(cfg.logging.run_name or cfg.experiment),
        "trainer.logger": ["console", "wandb"]
        if cfg.logging.wandb_mode != "disabled"
        else ["console"],
        "trainer.default_local_dir": str(run_dir / "checkpoints"),
    }
    return o


def fidelity_markdown() -> str:
    """The README's fidelity table: every hyper-parameter, its verl key, value and source."""
    lines = ["| sodctl key | verl key | value and source |", "| --- | --- | --- |"]
    for m in (*FIDELITY, *SFT_FIDELITY):
        lines.append(f"| `{m.sodctl}` | `{m.verl}` | {m.source} |")
    return "\n".join(lines)
