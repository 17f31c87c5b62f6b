"""``sodctl reproduce`` / ``sodctl ablate``: every stage a table needs, in order, cached.

The plan (``table_plan``) lists (command, experiment) steps: the teacher's SFT and
GRPO, each student's SFT, every row's training run and every evaluation. A step
whose output exists is skipped (a trained model in ``<run>/final``; for eval,
complete records for every benchmark), an interrupted one resumes (training
from its latest checkpoint, evaluation from its records). With the tiny and
smoke presets the tiny world is built first (data and base models, then the
short pretraining stage that gives the vanilla rows a base model).

Several seeds repeat the whole plan, each under ``<output_dir>/seed-<n>`` and
``results/<preset>/.../seed-<n>/``; tables then report mean ± std over seeds.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import DictConfig
from rich.console import Console
from rich.table import Table

from sodctl.commands.common import load, option_overrides
from sodctl.config import final_model_dir, method_spec, run_root


@dataclass
class StageTime:
    command: str
    experiment: str
    seconds: float
    status: str  # ran | resumed | cached


@dataclass
class PipelineReport:
    stages: list[StageTime] = field(default_factory=list)
    table_paths: list[Path] = field(default_factory=list)
    seeds: list[int] = field(
        default_factory=list
    )  # the seeds that ran (the config's when none given)
    config: DictConfig | None = None  # the first step's resolved config (preset, seed)

    def render(self) -> Table:
        t = Table(title="stage wall times")
        for col in ("stage", "experiment", "status", "seconds"):
            t.add_column(col, justify="right" if col == "seconds" else "left")
        for s in self.stages:
            t.add_row(s.command, s.experiment, s.status, f"{s.seconds:.1f}")
        t.add_row("total", "", "", f"{sum(s.seconds for s in self.stages):.1f}")
        return t


def _has_checkpoint(cfg: DictConfig) -> bool:
    return any((run_root(cfg) / "run" / "checkpoints").glob("step-*"))


def eval_done(cfg: DictConfig, label, model_path: str | None = None) -> bool:
    """Every benchmark of the config has a summary over complete records, none of them
    older than the model (``model_path``, when a local directory)."""
    from sodctl.eval.runner import load_eval_problems, model_saved_at, stale_outputs

    out = label.directory(cfg.eval.results_dir)
    saved_at = model_saved_at(model_path) if model_path else None
    for bench in cfg.eval.benches:
        summary = out / f"{bench}.json"
        if not summary.exists() or stale_outputs(out, bench, saved_at):
            return False
        s = json.loads(summary.read_text())
        n = len(load_eval_problems(cfg, bench))
        kept = s.get("n_problems", 0)
        if kept + s.get("n_filtered", 0) != n or s.get("k") != cfg.eval.k:
            return False
        if s.get("n_records") != kept * cfg.eval.k:
            return False
    return True


def run_step(
    command: str, experiment: str, cfg: DictConfig, *, seed_subdir: bool, console: Console
) -> str:
    """Run one step unless it is done; returns ran / resumed / cached."""
    if command in ("sft", "train"):
        if final_model_dir(cfg).exists():
            return "cached"
        resume = _has_checkpoint(cfg)
        if command == "sft":
            from sodctl.engines.local.sft import train_sft

            train_sft(cfg, resume=resume)
        else:
            from sodctl.engines.local.rl import train_rl

            train_rl(cfg, method_spec(cfg), resume=resume)
        return "resumed" if resume else "ran"
    from sodctl.commands.evaluate import eval_target
    from sodctl.eval.runner import run_eval

    path, label = eval_target(cfg, experiment=experiment, model_opt=None)
    label = type(label)(label.preset, label.model, label.method, label.seed, seed_subdir)
    if eval_done(cfg, label, path):
        return "cached"
    run_eval(cfg, model_path=path, label=label, console=console)
    return "ran"


def prepare_world(cfg: DictConfig, sizes: Sequence[str], console: Console) -> list[StageTime]:
    """Tiny/smoke presets: build the tiny world and pretrain the base models, once."""
    if cfg.preset not in ("tiny", "smoke"):
        return []
    from sodctl.data.tinyworld import build_tinyworld
    from sodctl.engines.local.sft import train_pretrain

    out: list[StageTime] = []
    from sodctl.engines.local.sft import PRETRAINED_MARKER

    t0 = time.monotonic()
    built = build_tinyworld(cfg.data.out_dir, preset=cfg.preset, tool_cfg=cfg.tool).built
    out.append(
        StageTime(
            "data",
            f"tiny world ({cfg.preset})",
            time.monotonic() - t0,
            "ran" if built else "cached",
        )
    )
    for size in sizes:
        t0 = time.monotonic()
        done = (Path(cfg.zoo[size]) / PRETRAINED_MARKER).is_file()
        train_pretrain(cfg, size=size, console=console)
        out.append(
            StageTime("pretrain", f"zoo {size}", time.monotonic() - t0, "cached" if done else "ran")
        )
    return out


def plan_sizes(
    plan: Sequence[tuple[str, str]], preset: str | None, overrides: Sequence[str]
) -> list[str]:
    """The zoo sizes a plan starts from (students and the teacher)."""
    sizes = []
    for _, experiment in plan:
        size = load(experiment, overrides, preset=preset).model.size
        if size not in sizes:
            sizes.append(size)
    return sizes


def run_pipeline(
    plan: Sequence[tuple[str, str]],
    *,
    preset: str | None,
    overrides: Sequence[str],
    seeds: Sequence[int],
    console: Console,
    render_tables: Callable[[DictConfig, bool], list[Path]],
) -> PipelineReport:
    report = PipelineReport()
    multi = len(seeds) > 1
    for seed in seeds or [None]:
        base = load(plan[0][1], overrides, preset=preset, options=option_overrides(seed=seed))
        report.seeds.append(int(base.seed))
        report.config = base
        extra = [f"output_dir={base.output_dir}/seed-{seed}"] if multi else []
        report.stages += prepare_world(
            base, plan_sizes(plan, preset, [*overrides, *extra]), console
        )
        for command, experiment in plan:
            cfg = load(
                experiment, [*overrides, *extra], preset=preset, options=option_overrides(seed=seed)
            )
            t0 = time.monotonic()
            console.rule(
                f"[bold]{command}[/] {experiment}" + (f" (seed {seed})" if seed is not None else "")
            )
            status = run_step(command, experiment, cfg, seed_subdir=multi, console=console)
            report.stages.append(StageTime(command, experiment, time.monotonic() - t0, status))
        report.table_paths = render_tables(base, multi)
    return report
