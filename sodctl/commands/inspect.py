"""``sodctl inspect``: what sodctl knows (methods, presets, experiments, benchmarks, configs)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from omegaconf import OmegaConf
from rich.console import Console
from rich.table import Table

from sodctl.commands.common import ExperimentArg, MethodOpt, ModelOpt, OverridesArg, PresetOpt, load
from sodctl.config import available_experiments, available_presets, experiments_dir, to_yaml
from sodctl.config.loader import describe, find_experiment
from sodctl.data.benchmarks import BENCHMARKS, EVAL_HUB_REPO
from sodctl.errors import SodctlUsageError
from sodctl.methods import METHODS

app = typer.Typer(
    help="Show methods, presets, experiments, benchmarks and resolved configs.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


def _console() -> Console:
    # Piped or captured output gets room for every column instead of an 80-column squeeze.
    width = None if sys.stdout.isatty() else 160
    return Console(soft_wrap=False, highlight=False, width=width)


def _scalar(value: object) -> str:
    """A config value as YAML would spell it (null, true), unquoted."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _yes(flag: bool) -> str:
    return "yes" if flag else "-"


@app.command()
def methods() -> None:
    """The method registry: every Table 1 row, ablation and naive OPD, with its switches."""
    t = Table(title="methods (sodctl.methods)")
    for col in (
        "name",
        "label",
        "stage",
        "grpo",
        "opd",
        "weighting",
        "clip",
        "teacher",
        "privileged",
        "ablation",
        "aliases",
    ):
        t.add_column(col, no_wrap=col in ("name", "label", "weighting", "aliases"))
    for m in METHODS.values():
        t.add_row(
            m.name,
            m.label,
            m.stage,
            _yes(m.grpo),
            _yes(m.opd),
            m.weighting,
            _yes(m.clip_weights) if m.opd else "-",
            m.teacher,
            m.privileged,
            m.ablation_id or "-",
            ", ".join(m.aliases) or "-",
        )
    _console().print(t)


@app.command()
def presets() -> None:
    """The presets an experiment composes with, and what each is for."""
    t = Table(title="presets (experiments/presets)")
    t.add_column("name", no_wrap=True)
    t.add_column("description")
    for name in available_presets():
        t.add_row(name, describe(experiments_dir() / "presets" / f"{name}.yaml"))
    _console().print(t)


@app.command()
def experiments() -> None:
    """The shipped experiment files (the paper's matrix)."""
    t = Table(title="experiments")
    t.add_column("name", no_wrap=True)
    t.add_column("description")
    for name in available_experiments():
        path, _ = find_experiment(name)
        t.add_row(name, describe(path))
    _console().print(t)


@app.command()
def benches() -> None:
    """The evaluation benchmarks and where their data comes from."""
    t = Table(
        title="benchmarks (sodctl.data.benchmarks)", caption=f"hub files are in {EVAL_HUB_REPO}"
    )
    for col in ("name", "title", "kind", "problems", "file", "columns", "paper"):
        t.add_column(col, no_wrap=col in ("name", "kind", "problems", "paper"))
    for b in BENCHMARKS.values():
        t.add_row(
            b.name,
            b.title,
            b.kind,
            str(b.n_problems) if b.n_problems is not None else "unknown",
            b.file if b.hub_repo == EVAL_HUB_REPO else (b.file or "synthetic"),
            ", ".join(b.columns),
            _yes(b.paper),
        )
    _console().print(t)


@app.command()
def config(
    experiment: ExperimentArg = None,
    overrides: OverridesArg = None,
    preset: PresetOpt = None,
    model: ModelOpt = None,
    method: MethodOpt = None,
    key: Annotated[
        str | None,
        typer.Option(
            "--key",
            help="Print only this key or section (e.g. train, sod.delta).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Print the resolved configuration as YAML (what a run would use and record)."""
    cfg = load(experiment, overrides, preset=preset, model=model, method=method)
    if key is None:
        typer.echo(to_yaml(cfg), nl=False)
        return
    value = OmegaConf.select(cfg, key, default=KeyError)
    if value is KeyError:
        raise SodctlUsageError(f"--key: no config key {key!r}")
    if OmegaConf.is_config(value):
        typer.echo(OmegaConf.to_yaml(value), nl=False)
    else:
        typer.echo(_scalar(value))
