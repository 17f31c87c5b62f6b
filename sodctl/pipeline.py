"""``sodctl reproduce`` / ``sodctl ablate``: every stage a table needs, in order, cached.

The plan (``table_plan``) lists (command, experiment) steps: the teacher's SFT and
GRPO, each student's SFT, every row's training run and every evaluation. A step
whose output exists is skipped (a trained model in ``<run>/final``; for eval,
complete records for every benchmark), an interrupted one resumes (training
from its latest checkpoint, evaluation from its records). With the tiny and
smoke presets the tiny world is built first (data and base models, then the
short pretraining stage that gives the vanilla rows a base model).

Several seeds repeat the whole plan, each under ``<output_dir>/seed-<n>`` and
``results/<preset>/.../seed-<n>/``; tables then report mean ± std over seeds. The
teacher is trained once, by the first seed, under ``<output_dir>/teacher/`` (the
``teacher_dir`` every seed is given), and every seed's students distil from it, as
all of the paper's do from its one teacher; each seed still evaluates it with its
own sampling seed. ``teacher_dir='${output_dir}'`` trains one teacher per seed.

``engine.jobs`` > 1 (``--jobs``; default 1) runs independent steps at once,
each in a process of its own whose output goes to ``<output_dir>/logs/``: a step
starts when the steps that make its models are done (``step_needs``). Every step
reads only the models it names, so the results are those of a sequential run with
the same ``engine.threads``; only the order of the console lines changes.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import DictConfig
from rich.console import Console
from rich.table import Table

from sodctl.commands.common import load, option_overrides
from sodctl.config import final_model_dir, method_spec, run_root
from sodctl.errors import SodctlUsageError
from sodctl.runinfo import use_cpu_capability


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
    # the run from start to end; with engine.jobs > 1 less than the stages' summed times
    wall_seconds: float = 0.0

    def render(self) -> Table:
        t = Table(title="stage wall times")
        for col in ("stage", "experiment", "status", "seconds"):
            t.add_column(col, justify="right" if col == "seconds" else "left")
        for s in self.stages:
            t.add_row(s.command, s.experiment, s.status, f"{s.seconds:.1f}")
        t.add_row("total", "", "", f"{sum(s.seconds for s in self.stages):.1f}")
        return t


def _has_checkpoint(cfg: DictConfig) -> bool:
    """An interrupted run: a local checkpoint, or a verl one (verl resumes it by itself)."""
    root = run_root(cfg)
    return any((root / "run" / "checkpoints").glob("step-*")) or any(
        (root / "verl" / "checkpoints").glob("global_step_*")
    )


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


def step_done(command: str, experiment: str, cfg: DictConfig, *, seed_subdir: bool) -> bool:
    """Whether a step's output is already there (a trained model; complete eval records)."""
    if command in ("sft", "train"):
        return final_model_dir(cfg).exists()
    if not _evaluated_model(cfg).exists():
        return False
    path, label = _eval_target(cfg, experiment, seed_subdir)
    return eval_done(cfg, label, path)


def _evaluated_model(cfg: DictConfig) -> Path:
    """The model an eval step of ``cfg`` reads (its trained model; the base for vanilla)."""
    return final_model_dir(cfg) if cfg.method.stage != "base" else Path(cfg.model.path)


def _eval_target(cfg: DictConfig, experiment: str, seed_subdir: bool):
    from sodctl.commands.evaluate import eval_target

    path, label = eval_target(cfg, experiment=experiment, model_opt=None)
    return path, type(label)(label.preset, label.model, label.method, label.seed, seed_subdir)


def run_step(
    command: str, experiment: str, cfg: DictConfig, *, seed_subdir: bool, console: Console
) -> str:
    """Run one step unless it is done; returns ran / resumed / cached."""
    if step_done(command, experiment, cfg, seed_subdir=seed_subdir):
        return "cached"
    if command in ("sft", "train"):
        resume = _has_checkpoint(cfg)
        if cfg.engine.name == "verl":
            from sodctl.engines.verl.compose import check_inputs
            from sodctl.engines.verl.launch import prepare, run

            stage = "sft" if command == "sft" else "rl"
            check_inputs(cfg, stage)
            run(cfg, prepare(cfg, stage))
            return "resumed" if resume else "ran"
        if command == "sft":
            from sodctl.engines.local.sft import train_sft

            train_sft(cfg, resume=resume)
        else:
            from sodctl.engines.local.rl import train_rl

            train_rl(cfg, method_spec(cfg), resume=resume)
        return "resumed" if resume else "ran"
    from sodctl.eval.runner import run_eval

    path, label = _eval_target(cfg, experiment, seed_subdir)
    run_eval(cfg, model_path=path, label=label, console=console)
    return "ran"


def _resolved(path: str | Path) -> Path:
    return Path(path).expanduser().resolve()


def step_makes(command: str, cfg: DictConfig) -> Path | None:
    """The model directory a step writes (None for an evaluation)."""
    return _resolved(final_model_dir(cfg)) if command in ("sft", "train") else None


def step_needs(command: str, experiment: str, cfg: DictConfig) -> set[Path]:
    """The model directories a step reads: the model it starts from or evaluates, and the
    teacher of a method that has an external one."""
    if command == "eval":
        return {_resolved(_evaluated_model(cfg))}
    needs = {_resolved(cfg.model.path)}
    if command == "train" and method_spec(cfg).teacher == "external":
        needs.add(_resolved(cfg.teacher.path))
    return needs


@dataclass
class _Job:
    """One step of a parallel run: what it is, and the steps it waits for."""

    index: int
    command: str
    experiment: str
    overrides: list[str]
    seed: int | None
    after: set[int]
    log: Path
    size: str | None = None  # pretrain: the zoo slot


def _child_step(
    command: str,
    experiment: str,
    overrides: list[str],
    preset: str | None,
    seed: int | None,
    seed_subdir: bool,
    log: str,
    size: str | None = None,
) -> tuple[str, float]:
    """A step in a process of its own (``engine.jobs`` > 1), its output to ``log``."""
    Path(log).parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as f:
        os.dup2(f.fileno(), 1)  # the tool's sandbox processes write here too
        os.dup2(f.fileno(), 2)
    sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115 - lives with the process
    sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
    t0 = time.monotonic()
    cfg = load(experiment, overrides, preset=preset, options=option_overrides(seed=seed))
    console = Console(file=sys.stderr, width=120)
    if command == "pretrain":
        from sodctl.engines.local.sft import train_pretrain

        train_pretrain(cfg, size=size, console=console)
        return "ran", time.monotonic() - t0
    status = run_step(command, experiment, cfg, seed_subdir=seed_subdir, console=console)
    return status, time.monotonic() - t0


def run_parallel(
    jobs: list[_Job], *, preset: str | None, seed_subdir: bool, workers: int, console: Console
) -> list[StageTime]:
    """Run ``jobs`` (in plan order, each after the jobs it waits for) on ``workers``
    processes. A failed step stops new ones from starting; the running ones finish,
    and the error is raised with the step's log named."""
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    times: dict[int, StageTime] = {}
    pending = {j.index: j for j in jobs}
    finished: set[int] = set()
    running: dict = {}
    failure: tuple[_Job, BaseException] | None = None
    spawn = multiprocessing.get_context("spawn")  # never fork a process that holds torch threads
    with ProcessPoolExecutor(max_workers=workers, mp_context=spawn) as pool:
        while pending or running:
            if failure is None:
                for j in [j for j in pending.values() if j.after <= finished]:
                    if len(running) >= workers:
                        break
                    del pending[j.index]
                    console.print(f"[bold]start[/] {j.command} {_name(j)}{_seed_note(j)}")
                    args = (
                        j.command,
                        j.experiment,
                        j.overrides,
                        preset,
                        j.seed,
                        seed_subdir,
                        str(j.log),
                        j.size,
                    )
                    running[pool.submit(_child_step, *args)] = j
            if not running:
                break
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in done:
                j = running.pop(fut)
                try:
                    status, seconds = fut.result()
                except BaseException as e:  # noqa: BLE001 - reported below, after the others
                    failure = failure or (j, e)
                    console.print(
                        f"[red]failed[/] {j.command} {_name(j)}{_seed_note(j)}: see {j.log}"
                    )
                    continue
                finished.add(j.index)
                times[j.index] = StageTime(j.command, _name(j), seconds, status)
                console.print(
                    f"[bold]done[/]  {j.command} {_name(j)}{_seed_note(j)}: {status}, {seconds:.1f} s"
                )
    if failure is not None:
        j, e = failure
        if isinstance(e, SodctlUsageError):  # bad input: one line, as in a sequential run
            raise SodctlUsageError(f"{j.command} {_name(j)}{_seed_note(j)}: {e.message}") from None
        console.print(f"[red]{j.command} {_name(j)}{_seed_note(j)} raised; its log: {j.log}")
        raise e
    return [times[i] for i in sorted(times)]


def _name(j: _Job) -> str:
    return f"zoo {j.size}" if j.command == "pretrain" else j.experiment


def _seed_note(j: _Job) -> str:
    return f" (seed {j.seed})" if j.seed is not None else ""


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


def preflight(
    plan: Sequence[tuple[str, str]], *, preset: str | None, overrides: Sequence[str]
) -> None:
    """Before anything runs: every training step on the verl engine has its data and
    settings, and verl is installed (a plan must not stop after hours for a missing file).
    The models are checked when their step comes (earlier steps make them)."""
    verl_steps = []
    for command, experiment in plan:
        if command not in ("sft", "train"):
            continue
        cfg = load(experiment, overrides, preset=preset)
        if cfg.engine.name == "verl":
            verl_steps.append((cfg, "sft" if command == "sft" else "rl"))
    if not verl_steps:
        return
    from sodctl.engines.verl import require_verl
    from sodctl.engines.verl.compose import check_inputs

    for cfg, stage in verl_steps:
        check_inputs(cfg, stage, models=False)
    require_verl()


def seed_overrides(
    base: DictConfig, seed: int | None, multi: bool, overrides: Sequence[str]
) -> list[str]:
    """What a seed of a multi-seed run adds to the overrides: its own ``output_dir``, and
    (unless the user set ``teacher_dir``) the common root as ``teacher_dir``, so the
    first seed trains the teacher and the others find it there."""
    if not multi:
        return []
    extra = [f"output_dir={base.output_dir}/seed-{seed}"]
    if not any(o.split("=", 1)[0].lstrip("+") == "teacher_dir" for o in overrides):
        extra.append(f"teacher_dir={base.output_dir}")
    return extra


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
    started = time.monotonic()
    multi = len(seeds) > 1
    for seed in seeds or [None]:
        base = load(plan[0][1], overrides, preset=preset, options=option_overrides(seed=seed))
        report.seeds.append(int(base.seed))
        report.config = base
        # before the world's first tensor operation: ATen picks its kernels once a process,
        # and the steps' processes inherit the choice
        if base.engine.cpu_capability is not None:
            use_cpu_capability(base.engine.cpu_capability)
        extra = seed_overrides(base, seed, multi, overrides)
        sizes = plan_sizes(plan, preset, [*overrides, *extra])
        if int(base.engine.jobs) > 1:
            report.stages += _run_seed_parallel(
                plan, base, sizes, preset, [*overrides, *extra], seed, multi, console
            )
            report.table_paths = render_tables(base, multi)
            continue
        report.stages += prepare_world(base, sizes, console)
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
    report.wall_seconds = time.monotonic() - started
    return report


def _run_seed_parallel(
    plan: Sequence[tuple[str, str]],
    base: DictConfig,
    sizes: Sequence[str],
    preset: str | None,
    overrides: list[str],
    seed: int | None,
    multi: bool,
    console: Console,
) -> list[StageTime]:
    """One seed's plan on ``engine.jobs`` processes: the world (here), then the zoo's
    pretraining and every step, each once the steps that make its models are done."""
    from sodctl.engines.local.sft import PRETRAINED_MARKER

    stages = prepare_world(base, [], console)
    logs = Path(base.output_dir) / "logs" / (f"seed-{seed}" if multi else "")
    jobs: list[_Job] = []
    makers: dict[Path, int] = {}

    def add(
        command: str, experiment: str, after: set[int], name: str, size: str | None = None
    ) -> int:
        jobs.append(
            _Job(len(jobs), command, experiment, overrides, seed, after, logs / f"{name}.log", size)
        )
        return len(jobs) - 1

    for size in sizes if base.preset in ("tiny", "smoke") else ():
        if (Path(base.zoo[size]) / PRETRAINED_MARKER).is_file():
            stages.append(StageTime("pretrain", f"zoo {size}", 0.0, "cached"))
            continue
        makers[_resolved(base.zoo[size])] = add(
            "pretrain", plan[0][1], set(), f"pretrain-{size}", size
        )
    for command, experiment in plan:
        cfg = load(experiment, overrides, preset=preset, options=option_overrides(seed=seed))
        if step_done(command, experiment, cfg, seed_subdir=multi):
            stages.append(StageTime(command, experiment, 0.0, "cached"))
            continue
        after = {makers[p] for p in step_needs(command, experiment, cfg) if p in makers}
        index = add(command, experiment, after, f"{command}-{experiment.replace('/', '_')}")
        made = step_makes(command, cfg)
        if made is not None:
            makers[made] = index
    workers = int(base.engine.jobs)
    console.rule(f"[bold]{len(jobs)} steps on {workers} processes[/] (each step's output: {logs}/)")
    return stages + run_parallel(
        jobs, preset=preset, seed_subdir=multi, workers=workers, console=console
    )


# --- planning (``--dry-run``) -----------------------------------------------------------------


@dataclass
class PlannedStep:
    """One step of a plan as ``--dry-run`` shows it: what runs it, whether it is done, and
    its GPU-hours from the paper's Table 4 where the paper has them (8 x H20: hours x 8)."""

    command: str
    experiment: str
    engine: str
    status: str  # done | resume | to run | by seed N (a model an earlier seed's step makes)
    gpu_hours: float | None
    basis: str  # where the GPU-hours come from


def gpu_hours(cfg: DictConfig) -> tuple[float | None, str]:
    """GPU-hours of one RL run at the paper's scale: Table 4's total hours x 8 GPUs for
    GRPO, OPD (gated) and SOD; the other OPD-family rows are estimated by SOD's (same
    rollouts, one teacher pass more or less), pure GRPO rows by GRPO's; none otherwise."""
    from sodctl.results.paper import paper_value

    method, size = method_spec(cfg), str(cfg.model.size)
    if method.stage != "rl":
        return None, "not in the paper"
    row = method.name if method.name in ("grpo", "opd-gated", "sod") else None
    basis = "Table 4"
    if row is None:
        row, basis = ("sod", "≈ SOD's (Table 4)") if method.opd else ("grpo", "≈ GRPO's (Table 4)")
    hours = paper_value("table4", size, row, "total_h")
    if hours is None:
        return None, f"not in the paper ({size})"
    return hours.value * 8, basis


def plan_steps(
    plan: Sequence[tuple[str, str]],
    *,
    preset: str | None,
    overrides: Sequence[str],
    seeds: Sequence[int],
) -> list[PlannedStep]:
    """The plan's steps, seed by seed, each with its engine, status and GPU-hours."""
    out: list[PlannedStep] = []
    multi = len(seeds) > 1
    planned: dict[Path, str] = {}  # a model an earlier seed's step makes (the shared teacher)
    for seed in seeds or [None]:
        base = load(plan[0][1], overrides, preset=preset, options=option_overrides(seed=seed))
        extra = seed_overrides(base, seed, multi, overrides)
        for command, experiment in plan:
            cfg = load(
                experiment, [*overrides, *extra], preset=preset, options=option_overrides(seed=seed)
            )
            if command in ("sft", "train"):
                final = final_model_dir(cfg)
                status = (
                    "done"
                    if final.exists()
                    else planned.get(final)
                    or ("resume" if _has_checkpoint(cfg) else "to run")
                )
                planned.setdefault(final, f"by seed {seed}")
                engine = str(cfg.engine.name)
                hours, basis = gpu_hours(cfg) if command == "train" else (None, "not in the paper")
            else:
                status, engine, hours, basis = (
                    _eval_status(cfg, experiment, multi),
                    f"eval ({cfg.rollout.engine})",
                    None,
                    "not in the paper",
                )
            name = experiment if seed is None else f"{experiment} (seed {seed})"
            out.append(PlannedStep(command, name, engine, status, hours, basis))
    return out


def _eval_status(cfg: DictConfig, experiment: str, multi: bool) -> str:
    from sodctl.commands.evaluate import eval_target
    from sodctl.errors import SodctlUsageError

    try:
        path, label = eval_target(cfg, experiment=experiment, model_opt=None)
        label = type(label)(label.preset, label.model, label.method, label.seed, multi)
        return "done" if eval_done(cfg, label, path) else "to run"
    except (SodctlUsageError, OSError):  # its data or model is not there yet
        return "to run"


def render_plan(steps: Sequence[PlannedStep]) -> str:
    """The plan as a markdown table, with the known GPU-hours summed."""
    lines = [
        "| # | stage | experiment | engine | status | GPU-hours | basis |",
        "|---:|---|---|---|---|---:|---|",
    ]
    for i, s in enumerate(steps, 1):
        hours = "" if s.gpu_hours is None else f"{s.gpu_hours:,.0f}"
        lines.append(
            f"| {i} | {s.command} | {s.experiment} | {s.engine} | {s.status} | {hours} | {s.basis} |"
        )
    pending = [s for s in steps if s.status in ("to run", "resume")]  # not done, nor shared
    total = sum(s.gpu_hours for s in pending if s.gpu_hours is not None)
    unknown = sum(1 for s in pending if s.gpu_hours is None and s.command == "train")
    lines.append(
        f"\nGPU-hours still to spend on the RL runs: {total:,.0f} (H20-hours, Table 4's 8-GPU node)"
        + (f"; {unknown} RL run(s) with no figure in the paper" if unknown else "")
        + "; SFT and evaluation are not costed by the paper."
    )
    return "\n".join(lines)
