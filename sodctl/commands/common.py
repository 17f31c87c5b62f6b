"""Pieces every stage command shares: argument types and config loading."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Annotated, Any

import typer
from omegaconf import DictConfig

from sodctl.config import load_config
from sodctl.errors import SodctlUsageError

ExperimentArg = Annotated[
    str | None,
    typer.Argument(
        metavar="EXPERIMENT",
        help="Experiment name under experiments/ without .yaml (e.g. table1/sod-1.7b) or a path "
        "to a YAML file. See 'sodctl inspect experiments'.",
        show_default=False,
    ),
]
OverridesArg = Annotated[
    list[str] | None,
    typer.Argument(
        metavar="KEY=VALUE",
        help="Config overrides applied last, values parsed as YAML (e.g. train.lr=1e-5 "
        "rollout.n=8). See 'sodctl inspect config' for every key.",
        show_default=False,
    ),
]
PresetOpt = Annotated[
    str | None,
    typer.Option(
        "--preset",
        help="Preset to compose with: smoke, tiny or paper (default: the experiment's, else paper).",
        show_default=False,
    ),
]
ModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model",
        help="Student size (0.6b, 1.7b, 4b, 14b) or a model path / hub id.",
        show_default=False,
    ),
]
MethodOpt = Annotated[
    str | None,
    typer.Option(
        "--method",
        help="Training method or ablation name (see 'sodctl inspect methods').",
        show_default=False,
    ),
]
SeedOpt = Annotated[
    int | None, typer.Option("--seed", help="Random seed (config key 'seed').", show_default=False)
]


def split_args(
    experiment: str | None, overrides: Sequence[str] | None
) -> tuple[str | None, list[str]]:
    """Typer fills EXPERIMENT first; a first argument with '=' is really an override."""
    rest = list(overrides or [])
    if experiment is not None and "=" in experiment:
        return None, [experiment, *rest]
    return experiment, rest


def option_overrides(**keys: Any) -> list[str]:
    """``key=value`` strings for the options a user actually passed (``None`` = not given).

    ``__`` in a keyword stands for a dot (``eval__k`` -> ``eval.k``); values are
    JSON-encoded, which YAML reads back exactly (paths with ``:`` included).
    """
    return [
        f"{key.replace('__', '.')}={json.dumps(value)}"
        for key, value in keys.items()
        if value is not None
    ]


def load(
    experiment: str | None,
    overrides: Sequence[str] | None,
    *,
    preset: str | None = None,
    model: str | None = None,
    method: str | None = None,
    options: Sequence[str] = (),
) -> DictConfig:
    """Load and validate a stage's config; options come before the user's own overrides."""
    experiment, rest = split_args(experiment, overrides)
    return load_config(
        experiment, preset=preset, model=model, method=method, overrides=[*options, *rest]
    )


def require_stage(cfg: DictConfig, command: str, stages: tuple[str, ...]) -> None:
    """Refuse an experiment whose method belongs to another stage, naming the right command."""
    stage = cfg.method.stage
    if stage in stages:
        return
    right = {"base": "eval", "sft": "sft", "rl": "train"}[stage]
    raise SodctlUsageError(
        f"experiment '{cfg.experiment}' uses method '{cfg.method.name}' (stage {stage}), which "
        f"'sodctl {command}' does not run; use 'sodctl {right} {cfg.experiment}'"
    )
