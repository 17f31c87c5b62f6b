"""Preparing and launching a verl run of a sodctl experiment.

``prepare(cfg, stage)`` writes, under ``<output_dir>/<experiment>/verl/``::

    config.yaml   the fully composed config verl runs with (verl's own defaults included)
    tool.yaml     the code-interpreter tool for verl's tool registry (RL only)
    run.json      sodctl's run metadata (seed, versions, git commit, argv)

and returns the exact launch command: for RL ``python -m sodctl.engines.verl.main``
(our Hydra entry point: it loads the plugin, runs verl's checks, then verl's
``run_ppo`` with its v1 task runner on the current Ray cluster, or a local one), for
SFT ``torchrun ... -m verl.trainer.sft_trainer``; both read ``config.yaml`` as it is.
``run(plan)`` runs the command with its output streamed, then installs the newest
checkpoint's Hugging Face export (``global_step_N/actor/huggingface`` for RL,
``global_step_N/huggingface`` for SFT) as ``<output_dir>/<experiment>/final``, where
``sodctl eval`` and later stages look for it.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from sodctl.config import final_model_dir, run_root
from sodctl.errors import SodctlUsageError


@dataclass
class VerlPlan:
    stage: str  # "rl" or "sft"
    run_dir: Path
    config_path: Path
    command: list[str]
    composed: DictConfig

    def command_line(self) -> str:
        return " ".join(shlex.quote(c) for c in self.command)

    def describe(self) -> str:
        return f"verl {self.stage} config: {self.config_path}\nlaunch: {self.command_line()}"


def run_dir_of(cfg: DictConfig) -> Path:
    return run_root(cfg) / "verl"


def prepare(cfg: DictConfig, stage: str) -> VerlPlan:
    """Compose, validate and write the run's verl config; nothing is launched."""
    from sodctl.engines.verl.compose import (
        RL_CONFIG,
        SFT_CONFIG,
        compose,
        rl_overrides,
        sft_overrides,
    )
    from sodctl.runinfo import run_metadata

    run_dir = run_dir_of(cfg).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    if stage == "rl":
        from sodctl.engines.verl.compose import validate_rl
        from sodctl.engines.verl.tool import write_tool_config

        tool_path = write_tool_config(run_dir / "tool.yaml", cfg.tool)
        composed = compose(
            RL_CONFIG, rl_overrides(cfg, tool_config_path=tool_path, run_dir=run_dir)
        )
        validate_rl(composed)
        command = [sys.executable, "-m", "sodctl.engines.verl.main"]
    elif stage == "sft":
        composed = compose(SFT_CONFIG, sft_overrides(cfg, run_dir=run_dir))
        nnodes, gpus = int(cfg.engine.nnodes), int(cfg.engine.n_gpus_per_node)
        command = ["torchrun", f"--nnodes={nnodes}", f"--nproc_per_node={gpus}"]
        if nnodes == 1:
            command.append("--standalone")
        command += ["-m", "verl.trainer.sft_trainer"]
    else:
        raise SodctlUsageError(f"the verl engine runs the sft and rl stages, not {stage!r}")
    config_path = run_dir / "config.yaml"
    tmp = config_path.with_name(".config.yaml.tmp")
    tmp.write_text(OmegaConf.to_yaml(composed))
    os.replace(tmp, config_path)
    (run_dir / "run.json").write_text(json.dumps(run_metadata(cfg), indent=2, default=str) + "\n")
    command += ["--config-path", str(run_dir), "--config-name", "config"]
    return VerlPlan(stage, run_dir, config_path, command, composed)


def latest_hf_export(run_dir: Path, stage: str) -> Path | None:
    """The Hugging Face export of the newest ``global_step_N`` under ``run_dir/checkpoints``."""
    steps = []
    for p in (run_dir / "checkpoints").glob("global_step_*"):
        try:
            steps.append((int(p.name.rsplit("_", 1)[1]), p))
        except ValueError:
            continue
    for _, p in sorted(steps, reverse=True):
        hf = p / "actor" / "huggingface" if stage == "rl" else p / "huggingface"
        if (hf / "config.json").is_file():
            return hf
    return None


def install_final(cfg: DictConfig, plan: VerlPlan) -> Path:
    """Copy the newest HF export to ``<experiment>/final`` (atomically)."""
    source = latest_hf_export(plan.run_dir, plan.stage)
    if source is None:
        raise SodctlUsageError(
            f"verl finished but {plan.run_dir / 'checkpoints'} holds no Hugging Face export "
            "(global_step_N/.../huggingface); merge a checkpoint with 'python -m "
            "verl.model_merger merge --backend fsdp --local_dir DIR --target_dir "
            f"{final_model_dir(cfg)}'"
        )
    final = final_model_dir(cfg)
    tmp = final.with_name(f".tmp-final-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(source, tmp)
    (tmp / "sodctl_source.json").write_text(json.dumps({"verl_checkpoint": str(source)}) + "\n")
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    return final


def run(cfg: DictConfig, plan: VerlPlan, *, env: dict[str, Any] | None = None) -> Path:
    """Launch the plan (output streamed); on success install the final model."""
    if final_model_dir(cfg).exists():
        raise SodctlUsageError(
            f"{final_model_dir(cfg)} exists: this stage already finished (delete {run_root(cfg)} to run it again)"
        )
    environment = {
        **os.environ,
        "SODCTL_VERL_STRICT": "1",
        "WANDB_MODE": str(cfg.logging.wandb_mode),
    }
    environment.update({k: str(v) for k, v in (env or {}).items()})
    if shutil.which(plan.command[0]) is None and not Path(plan.command[0]).exists():
        raise SodctlUsageError(
            f"{plan.command[0]} is not on PATH; install verl's GPU extras (pip install -e '.[verl,gpu]')"
        )
    code = subprocess.call(plan.command, env=environment)
    if code != 0:
        raise SodctlUsageError(
            f"verl exited with status {code}; its output is above, the config in {plan.config_path}; "
            "rerun the same command to resume from the newest checkpoint (trainer.resume_mode=auto)"
        )
    return install_final(cfg, plan)
