"""The verl engine's configuration: every experiment composes through verl 0.9.1's own
Hydra config, passes verl's ``validate_config``, and instantiates every ``_target_``;
``--dry-run`` writes exactly that config and the launch command; the dataset wraps
prompts as the local engine does. (Needs the ``verl`` extra; skipped without it.)"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

pytest.importorskip("verl")

from omegaconf import DictConfig, OmegaConf  # noqa: E402
from rl_fixtures import write_rl_parquet  # noqa: E402

from sodctl.cli import main  # noqa: E402
from sodctl.config import load_config, method_spec  # noqa: E402
from sodctl.core.advantages import AdvantageSpec  # noqa: E402
from sodctl.engines.verl.compose import (  # noqa: E402
    RL_CONFIG,
    SFT_CONFIG,
    compose,
    rl_overrides,
    sft_overrides,
    validate_rl,
)
from sodctl.errors import SodctlUsageError  # noqa: E402
from sodctl.methods import TABLE_ROWS  # noqa: E402

pytestmark = pytest.mark.unit

# Targets verl 0.9.1's own defaults cannot instantiate either (verl never builds them
# from the config this way): RewardManagerConfig.__post_init__ calls a
# BaseConfig.__post_init__ that does not exist; the nsys profiler config carries a key
# its dataclass lacks; the reference policy's section (unused: no KL) carries the
# log_prob_* keys that FSDPActorConfig does not take. ``reward`` and ``global_profiler``
# fail through those children.
VERL_OWN_FAILURES = {
    "reward",
    "reward.reward_manager",
    "global_profiler",
    "global_profiler.global_tool_config.nsys",
    "actor_rollout_ref.ref",
}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from rl_fixtures import SMALL as spec

    from sodctl.models.tiny import create_tiny_checkpoint

    root = tmp_path_factory.mktemp("verl")
    return {
        "root": root,
        "rl": str(write_rl_parquet(root / "rl.parquet")),
        "student": str(create_tiny_checkpoint(root / "student", spec, seed=1)),
        "teacher": str(create_tiny_checkpoint(root / "teacher", spec, seed=2)),
    }


def _cfg(world, experiment: str, *extra: str) -> DictConfig:
    return load_config(
        experiment,
        overrides=[
            f"data.rl_path={world['rl']}",
            f"model.path={world['student']}",
            f"teacher.path={world['teacher']}",
            f"output_dir={world['root'] / 'runs'}",
            *extra,
        ],
    )


def _composed(world, experiment: str, *extra: str) -> DictConfig:
    cfg = _cfg(world, experiment, *extra)
    run = world["root"] / "run"
    return compose(RL_CONFIG, rl_overrides(cfg, tool_config_path=run / "tool.yaml", run_dir=run))


def _targets(node: DictConfig, path: str = ""):
    if "_target_" in node:
        yield path, node
    for key in node:
        child = node._get_node(key)
        if isinstance(child, DictConfig):
            yield from _targets(child, f"{path}.{key}" if path else str(key))


def _instantiation_failures(config: DictConfig) -> set[str]:
    from verl.utils.config import omega_conf_to_dataclass

    config = OmegaConf.create(OmegaConf.to_container(config, resolve=True))
    failed = set()
    for path, node in _targets(config):
        try:
            omega_conf_to_dataclass(node)
        except Exception:  # noqa: BLE001 - every failure is reported by its path
            failed.add(path)
    return failed


RL_EXPERIMENTS = sorted(
    {f"table1/{name}-1.7b" for name, _ in TABLE_ROWS["table1"] if name not in ("vanilla", "sft")}
    | {f"table2/{name}" for name, _ in TABLE_ROWS["table2"] if name not in ("sod", "grpo")}
    | {"table5/naive-opd", "teacher/grpo-4b"}
)


@pytest.mark.parametrize("experiment", RL_EXPERIMENTS)
def test_every_rl_experiment_composes_validates_and_carries_its_advantage_spec(world, experiment):
    config = _composed(world, experiment)
    validate_rl(config)
    cfg = _cfg(world, experiment)
    method = method_spec(cfg)
    spec = AdvantageSpec(**OmegaConf.to_container(config.sod.advantage))
    assert (spec.grpo, spec.opd) == (method.grpo, method.opd)
    assert spec.weighting == (str(method.weighting) if method.opd else "none")
    assert config.sod.method == method.name
    assert config.trainer.v1.trainer_mode == "sod_sync"
    assert config.actor_rollout_ref.rollout.agent.default_agent_loop == "sod_tool_agent"
    assert config.distillation.enabled == (method.teacher == "external")
    assert config.sod.privileged == (
        None if method.privileged == "none" else str(method.privileged)
    )
    assert config.sod.privileged_leads.hint.startswith("\n\n")  # escapes kept, not "\\n"


def test_paper_hyper_parameters_reach_verl_keys(world):
    c = _composed(world, "table1/sod-1.7b")
    actor, rollout = c.actor_rollout_ref.actor, c.actor_rollout_ref.rollout
    assert (c.data.train_batch_size, actor.ppo_mini_batch_size, rollout.n) == (64, 16, 16)
    assert (c.data.max_prompt_length, c.data.max_response_length) == (2560, 20480)
    assert c.data.filter_overlong_prompts is True
    assert (actor.clip_ratio_low, actor.clip_ratio_high, actor.clip_ratio_c) == (0.2, 0.28, 3.0)
    assert (actor.optim.lr, actor.loss_agg_mode, actor.entropy_coeff, actor.use_kl_loss) == (
        1e-6,
        "token-mean",
        0.0,
        False,
    )
    assert (rollout.temperature, rollout.top_p, rollout.tensor_model_parallel_size) == (1.0, 1.0, 2)
    mt = rollout.multi_turn
    # the tool cuts at 256 itself; verl's own cut gets headroom so it never cuts again
    assert (
        mt.enable,
        mt.max_assistant_turns,
        mt.max_parallel_calls,
        mt.max_tool_response_length,
    ) == (True, 16, 1, 320)
    assert c.trainer.total_training_steps == 150  # Table 4's 1.7B step count (B15)
    assert (c.trainer.n_gpus_per_node, c.distillation.n_gpus_per_node) == (6, 2)
    assert c.distillation.teacher_models.teacher_model.model_path == world["teacher"]
    assert c.reward.custom_reward_function.path == "pkg://sodctl.rewards.verl_compat"
    assert c.reward.reward_kwargs.overlong_buffer_cfg.len == 1024
    assert c.sod.advantage.delta == 0.2 and c.sod.advantage.eps == 1e-6
    assert c.data.custom_cls.name == "SodRLDataset"


def test_every_target_instantiates_except_what_verl_itself_cannot(world):
    ours = _instantiation_failures(_composed(world, "table1/sod-1.7b"))
    assert ours <= VERL_OWN_FAILURES, ours
    # ... and those fail on verl's own, unmodified ppo_trainer too
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_module("verl.trainer.config", version_base=None):
        base = hydra_compose(
            "ppo_trainer",
            overrides=[
                "reward.reward_model.rollout.name=vllm",
                "actor_rollout_ref.rollout.name=vllm",
            ],
        )
    leaves = VERL_OWN_FAILURES - {"reward", "global_profiler"}
    assert leaves <= _instantiation_failures(base)


def test_sft_config_composes(world, tmp_path):
    sft = tmp_path / "sft.parquet"
    sft.write_bytes(b"")
    cfg = load_config(
        "table1/sft-1.7b", overrides=[f"data.sft_path={sft}", f"model.path={world['student']}"]
    )
    c = compose(SFT_CONFIG, sft_overrides(cfg, run_dir=tmp_path))
    assert (c.data.train_batch_size, c.data.max_length, c.data.truncation) == (128, 32768, "right")
    assert (c.optim.lr, c.trainer.total_epochs) == (5e-5, 5)
    assert c.data.messages_key == "messages" and c.data.tools_key == "tools"
    assert "hf_model" in c.checkpoint.save_contents
    assert c.trainer.total_training_steps is None  # the paper: the 5 epochs decide
    own = tmp_path / "own.parquet"
    own.write_bytes(b"")
    sized = load_config(
        "table1/sft-1.7b",
        overrides=[f"data.sft_path={sft}", f"model.path={world['student']}",
                   f"data.sft_path_by_size[1.7b]={own}"],
    )  # fmt: skip
    composed = compose(SFT_CONFIG, sft_overrides(sized, run_dir=tmp_path))
    assert list(composed.data.train_files) == [str(own.resolve())]
    by_size = load_config(
        "table1/sft-1.7b",
        overrides=[f"data.sft_path={sft}", f"model.path={world['student']}",
                   "sft.max_steps_by_size[1.7b]=9"],
    )  # fmt: skip
    assert compose(SFT_CONFIG, sft_overrides(by_size, run_dir=tmp_path)).trainer.total_training_steps == 9
    assert c.optim.lr_scheduler_type == "cosine"
    wsd = load_config(
        "table1/sft-1.7b",
        overrides=[f"data.sft_path={sft}", f"model.path={world['student']}", "sft.lr_schedule=wsd"],
    )
    with pytest.raises(SodctlUsageError, match=r"^sft.lr_schedule=wsd: .*local engine$"):
        sft_overrides(wsd, run_dir=tmp_path)


def test_unsupported_settings_are_one_line(world):
    for extra, needle in [
        ("train.log_ratio_clamp=5", "clamps log(pi/pi_old) to +-20"),
        ("tool.on_invalid_call=end", "tool.on_invalid_call=end"),
        ("rollout.tensor_parallel_size=4", "does not divide engine.n_gpus_per_node=6"),
        ("train.lr_schedule=wsd", "train.lr_schedule=wsd: verl 0.9.1's optimiser offers only"),
        ("train.lr_schedule=linear", "train.lr_schedule=linear"),
    ]:
        with pytest.raises(SodctlUsageError, match="") as e:
            _composed(world, "table1/sod-1.7b", extra)
        assert needle in e.value.message and "\n" not in e.value.message


def test_a_misspelt_verl_key_is_refused(world):
    with pytest.raises(SodctlUsageError, match="verl config sod_trainer"):
        compose(RL_CONFIG, {"actor_rollout_ref.actor.clip_ratio_hgh": 0.3})


def test_cli_dry_run_writes_the_config_verl_runs_and_the_launch_command(world, capsys, monkeypatch):
    monkeypatch.chdir(world["root"])
    args = [
        "train",
        "table1/sod-1.7b",
        "--dry-run",
        f"data.rl_path={world['rl']}",
        f"model.path={world['student']}",
        f"teacher.path={world['teacher']}",
        "output_dir=runs-dry",
    ]
    assert main(args) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    run_dir = (world["root"] / "runs-dry/table1/sod-1.7b/verl").resolve()
    assert f"verl rl config: {run_dir / 'config.yaml'}" in out
    assert "-m sodctl.engines.verl.main --config-path" in out and "--config-name config" in out
    written = OmegaConf.load(run_dir / "config.yaml")
    validate_rl(written)  # the written file is what verl checks and runs
    assert written.sod.method == "sod" and written.trainer.v1.trainer_mode == "sod_sync"
    tool_yaml = Path(written.actor_rollout_ref.rollout.multi_turn.tool_config_path)
    assert tool_yaml.is_file()
    assert written.ray_kwargs.ray_init.runtime_env.env_vars.SODCTL_VERL_STRICT == "1"
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["seed"] == 42
    assert not (world["root"] / "runs-dry/table1/sod-1.7b/final").exists()


def test_cli_sft_dry_run(world, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    sft = tmp_path / "sft.parquet"
    sft.write_bytes(b"")
    assert (
        main(
            [
                "sft",
                "table1/sft-1.7b",
                "--dry-run",
                f"data.sft_path={sft}",
                f"model.path={world['student']}",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "torchrun --nnodes=1 --nproc_per_node=6 --standalone -m verl.trainer.sft_trainer" in out


def test_dataset_wraps_prompts_as_the_local_engine_and_routes_to_our_agent_loop(world):
    from transformers import AutoTokenizer

    from sodctl.data.files import read_parquet
    from sodctl.data.loaders import load_prompts
    from sodctl.data.prompting import wrap_rl_rows
    from sodctl.engines.verl.dataset import SodRLDataset

    c = _composed(world, "table1/sod-1.7b")
    data_cfg = OmegaConf.create(OmegaConf.to_container(c.data, resolve=True))
    data_cfg.dataloader_num_workers = 0
    tok = AutoTokenizer.from_pretrained(world["student"])
    ds = SodRLDataset(data_files=[world["rl"]], tokenizer=tok, config=data_cfg)
    rows = read_parquet(world["rl"], what="rl").to_dict(orient="records")
    expected, _ = wrap_rl_rows(rows, load_prompts(None), "released")
    got = ds.dataframe.to_list()
    assert [r["prompt"][0]["content"] for r in got] == [r["prompt"][0]["content"] for r in expected]
    assert {r["agent_name"] for r in got} == {"sod_tool_agent"}


def test_advantage_section_is_exactly_the_local_engines_spec(world):
    from sodctl.engines.local.rl import advantage_spec
    from sodctl.engines.verl.compose import advantage_section

    for experiment in (
        "table1/sod-1.7b",
        "table2/heuristic-weighting",
        "table1/opd-gated-1.7b",
        "table5/naive-opd",
    ):
        cfg = _cfg(world, experiment)
        local = advantage_spec(cfg, method_spec(cfg))
        assert advantage_section(cfg) == {
            f.name: getattr(local, f.name) for f in dataclasses.fields(local)
        }


def test_sft_dataset_decodes_json_tools_so_the_template_renders_the_schema(world, tmp_path):
    from test_data_fetch import sft_release_rows, write_sft_release
    from transformers import AutoTokenizer

    from sodctl.data.builders.fetch import fetch_release
    from sodctl.engines.verl.dataset import SodSFTDataset

    src = write_sft_release(tmp_path / "release.parquet", sft_release_rows("string"))
    fetch_release("sft-3k", tmp_path / "sft", source=str(src))  # tools: a JSON string
    sft = tmp_path / "sft" / "sft.parquet"
    cfg = load_config(
        "table1/sft-1.7b", overrides=[f"data.sft_path={sft}", f"model.path={world['student']}"]
    )
    c = compose(SFT_CONFIG, sft_overrides(cfg, run_dir=tmp_path))
    data_cfg = OmegaConf.create(OmegaConf.to_container(c.data, resolve=True))
    tok = AutoTokenizer.from_pretrained(world["student"])
    ds = SodSFTDataset(parquet_files=[str(sft)], tokenizer=tok, config=data_cfg)
    assert (
        isinstance(ds.tools[0], list) and ds.tools[0][0]["function"]["name"] == "code_interpreter"
    )
    item = ds[0]
    text = tok.decode(
        item["input_ids"][item["attention_mask"].bool()]
        if "attention_mask" in item
        else item["input_ids"]
    )
    assert "code_interpreter" in text  # the schema is in the system turn
    trained = tok.decode(item["input_ids"][item["loss_mask"].bool()])
    assert "\\boxed{42}" in trained and "What is 6*7?" not in trained  # assistant turns only


def test_opd_loss_form_runs_as_sodctls_distillation_loss(world):
    c = _composed(world, "table1/sod-1.7b", "sod.opd_form=loss", "sod.opd_coef=0.5")
    validate_rl(c)
    loss = c.distillation.distillation_loss
    assert (loss.loss_mode, loss.use_policy_gradient, loss.distillation_loss_coef) == ("sod_reinforce", False, 0.5)
    assert loss.use_task_rewards is True and loss.loss_max_clamp is None
    assert c.sod.advantage.opd_form == "loss"
    from verl.utils.config import omega_conf_to_dataclass

    omega_conf_to_dataclass(OmegaConf.create(OmegaConf.to_container(c.distillation, resolve=True)))
    with pytest.raises(SodctlUsageError, match="opd_form=loss with OPSD"):
        _composed(world, "table1/opsd-gt-1.7b", "sod.opd_form=loss")


def test_sod_reinforce_loss_is_the_cores_on_verls_micro_batch_layout():
    import torch
    from tensordict import TensorDict
    from verl.trainer.distillation.losses import get_distillation_loss_fn

    from sodctl.core.opd import opd_reinforce_token_losses
    from sodctl.engines.verl.loss import LOSS_NAME, sod_reinforce_losses

    assert get_distillation_loss_fn(LOSS_NAME) is sod_reinforce_losses
    g = torch.Generator().manual_seed(0)
    prompt_lens, resp_lens = [3, 5], [4, 2]

    def nested(rows, dtype=torch.float32):
        return torch.nested.nested_tensor([torch.as_tensor(r, dtype=dtype) for r in rows], layout=torch.jagged)

    lp = [-torch.rand(n, generator=g) for n in resp_lens]
    teacher = [-torch.rand(n, generator=g) for n in resp_lens]
    weights = [torch.rand(n, generator=g) for n in resp_lens]
    mask = [torch.tensor([1, 1, 0, 1]), torch.tensor([1, 1])]  # an observation token inside
    # the model's output over prompt + response, shifted by one as a causal LM gives it:
    # position P - 1 + j holds the log-prob of response token j; the last one is a dummy
    full = []
    for p, r, v in zip(prompt_lens, resp_lens, lp):
        seq = torch.full((p + r,), 99.0)
        seq[p - 1 : p - 1 + r] = v
        full.append(seq.requires_grad_(True))
    data = TensorDict(
        {
            "prompts": nested([[1] * p for p in prompt_lens], torch.int64),
            "responses": nested([[2] * r for r in resp_lens], torch.int64),
            "response_mask": nested(mask, torch.int64),
            "sod_token_weights": nested(weights),
            "sod_teacher_log_probs": nested(teacher),
        },
        batch_size=2,
    )
    values = torch.cat(full)
    out = torch.nested.nested_tensor_from_jagged(values, torch.tensor([0, 7, 14]))
    losses, metrics = sod_reinforce_losses(None, None, {"log_probs": out}, data)
    pad = lambda rows: torch.nn.utils.rnn.pad_sequence(rows, batch_first=True)  # noqa: E731
    expected = opd_reinforce_token_losses(pad(lp), pad(teacher), pad(weights))
    assert torch.allclose(losses, expected)
    m = pad(mask).bool()
    (losses * m).sum().backward()
    for seq, p, r, v, t, w, k in zip(full, prompt_lens, resp_lens, lp, teacher, weights, mask):
        grad = seq.grad[p - 1 : p - 1 + r]
        assert torch.allclose(grad, w * (v - t) * k)  # the reverse-KL gradient, masked
    assert "sod/weighted_reverse_kl" in metrics
