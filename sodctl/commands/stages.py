"""The pipeline stages: sft, train, eval, reproduce, ablate, table, plot, report (``data``: its
own command group, ``sodctl.commands.data``).

Each command loads and validates its configuration first, so bad input is
reported before anything else happens. ``sft`` and ``train`` run on the local engine
or, with ``engine.name=verl`` (the ``paper`` preset's), on verl
(``sodctl.engines.verl.launch``).
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Annotated, Literal

import typer

from sodctl.commands.common import (
    ExperimentArg,
    MethodOpt,
    ModelOpt,
    OverridesArg,
    PresetOpt,
    SeedOpt,
    load,
    option_overrides,
    require_stage,
    split_args,
)
from sodctl.config import SIZES, available_experiments
from sodctl.data.benchmarks import BENCHMARKS, PAPER_BENCHES
from sodctl.errors import SodctlUsageError
from sodctl.methods import ABLATIONS, TABLE_ROWS, canonical_name

EngineOpt = Annotated[
    Literal["local", "verl"] | None,
    typer.Option(
        "--engine",
        help="Training driver: local (PyTorch, CPU or one GPU) or verl (Ray + vLLM cluster).",
        show_default=False,
    ),
]
DryRunOpt = Annotated[
    bool,
    typer.Option(
        "--dry-run",
        help="verl engine: write the composed verl config, print its path and the launch "
        "command; run nothing.",
    ),
]
MaxStepsOpt = Annotated[
    int | None,
    typer.Option("--max-steps", help="Stop after this many optimiser steps.", show_default=False),
]


def sft(
    experiment: ExperimentArg = None,
    overrides: OverridesArg = None,
    preset: PresetOpt = None,
    model: ModelOpt = None,
    engine: EngineOpt = None,
    seed: SeedOpt = None,
    max_steps: MaxStepsOpt = None,
    resume: Annotated[
        bool,
        typer.Option("--resume", help="Continue an interrupted run from its latest checkpoint."),
    ] = False,
    pretrain: Annotated[
        bool,
        typer.Option(
            "--pretrain",
            help="Tiny world: pretrain the zoo model of --model SIZE (default: every zoo model) "
            "on data.pretrain_path with the 'pretrain' section's recipe, in place.",
        ),
    ] = False,
    dry_run: DryRunOpt = False,
) -> None:
    """Supervised fine-tuning of the student (or the teacher) on the multi-turn tool-use corpus."""
    named = split_args(experiment, overrides)[0]  # EXPERIMENT may really be a key=value
    if pretrain and (named is not None or (model is not None and model not in SIZES)):
        raise SodctlUsageError(
            "--pretrain takes no EXPERIMENT and no model path: it pretrains the zoo model of "
            f"--model SIZE ({', '.join(SIZES)}), or every zoo model without --model"
        )
    section = "pretrain" if pretrain else "sft"
    cfg = load(
        experiment,
        overrides,
        preset=preset,
        model=model,
        method=None if named else "sft",
        options=option_overrides(
            engine__name=engine, seed=seed, **{f"{section}__max_steps": max_steps}
        ),
    )
    require_stage(cfg, "sft", ("sft",))
    if cfg.engine.name == "verl":
        if pretrain:
            raise SodctlUsageError("--pretrain is the tiny world's stage: use --engine local")
        _verl(cfg, "sft", dry_run=dry_run)
        return
    if dry_run:
        raise SodctlUsageError("--dry-run prepares a verl run: add --engine verl")
    import time

    from sodctl.engines.local.sft import train_pretrain, train_sft

    t0 = time.perf_counter()
    if pretrain:
        for size in [cfg.model.size] if model else list(cfg.zoo):
            where = train_pretrain(cfg, size=size, resume=resume)
            typer.echo(f"pretrain {size}: {where} holds the pretrained model")
        typer.echo(f"pretrain finished in {time.perf_counter() - t0:.1f} s")
        return
    where = train_sft(cfg, resume=resume)
    typer.echo(f"sft finished in {time.perf_counter() - t0:.1f} s: final model {where}")


def train(
    experiment: ExperimentArg = None,
    overrides: OverridesArg = None,
    preset: PresetOpt = None,
    model: ModelOpt = None,
    method: MethodOpt = None,
    teacher: Annotated[
        str | None,
        typer.Option(
            "--teacher", help="Teacher model path or hub id (teacher.path).", show_default=False
        ),
    ] = None,
    engine: EngineOpt = None,
    seed: SeedOpt = None,
    max_steps: MaxStepsOpt = None,
    resume: Annotated[
        bool,
        typer.Option("--resume", help="Continue an interrupted run from its latest checkpoint."),
    ] = False,
    dry_run: DryRunOpt = False,
) -> None:
    """RL / on-policy distillation from the SFT checkpoint: grpo, opd, sod, opsd-*, ablations."""
    cfg = load(
        experiment,
        overrides,
        preset=preset,
        model=model,
        method=method,
        options=option_overrides(
            teacher__path=teacher, engine__name=engine, seed=seed, train__max_steps=max_steps
        ),
    )
    require_stage(cfg, "train", ("rl",))
    if cfg.engine.name == "verl":
        _verl(cfg, "rl", dry_run=dry_run)
        return
    if dry_run:
        raise SodctlUsageError("--dry-run prepares a verl run: add --engine verl")
    import time

    from sodctl.config import method_spec
    from sodctl.engines.local.rl import train_rl

    t0 = time.monotonic()
    final = train_rl(cfg, method_spec(cfg), resume=resume)
    typer.echo(
        f"sodctl train {cfg.experiment}: done in {time.monotonic() - t0:.1f} s; model -> {final}"
    )


def _verl(cfg, stage: str, *, dry_run: bool) -> None:
    """A verl run of ``cfg``: compose and write its config, print the launch command, and
    (without ``dry_run``) launch it and install the final model."""
    from sodctl.engines.verl import require_verl
    from sodctl.engines.verl.compose import check_inputs

    check_inputs(cfg, stage)
    require_verl()
    from sodctl.engines.verl.launch import prepare, run

    plan = prepare(cfg, stage)
    typer.echo(plan.describe())
    if dry_run:
        return
    final = run(cfg, plan)
    typer.echo(f"sodctl {'sft' if stage == 'sft' else 'train'} {cfg.experiment}: model -> {final}")


def parse_benches(text: str) -> list[str]:
    """``"all"`` or ``"aime24,gpqa"`` -> benchmark names (checked against the registry)."""
    if text.strip() == "all":
        return list(PAPER_BENCHES)
    names = [n.strip() for n in text.split(",") if n.strip()]
    for name in names:
        if name not in BENCHMARKS:
            raise SodctlUsageError(
                f"--bench: unknown benchmark {name!r}; choose from {', '.join(BENCHMARKS)} or 'all'"
            )
    if not names:
        raise SodctlUsageError("--bench: name at least one benchmark (or 'all')")
    return names


def eval_(
    experiment: ExperimentArg = None,
    overrides: OverridesArg = None,
    preset: PresetOpt = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            help="What to evaluate: a model path or hub id, or a size from the zoo (default: the "
            "experiment's trained model).",
            show_default=False,
        ),
    ] = None,
    method: MethodOpt = None,
    bench: Annotated[
        str | None,
        typer.Option(
            "--bench",
            help="Benchmarks, comma-separated (aime24,aime25,gpqa,lcb,tiny-arith) or 'all' for the paper's four.",
            show_default=False,
        ),
    ] = None,
    k: Annotated[
        int | None,
        typer.Option("--k", help="Samples per problem for avg@k (paper: 32).", show_default=False),
    ] = None,
    engine: Annotated[
        Literal["hf", "vllm"] | None,
        typer.Option(
            "--engine", help="Generation engine: hf (transformers) or vllm.", show_default=False
        ),
    ] = None,
    grader: Annotated[
        Literal["strict", "math-verify", "both"] | None,
        typer.Option(
            "--grader",
            help="Answer grader; 'both' reports the two side by side.",
            show_default=False,
        ),
    ] = None,
    temperature: Annotated[
        float | None,
        typer.Option(
            "--temperature", help="Sampling temperature (paper: 1.0).", show_default=False
        ),
    ] = None,
    top_p: Annotated[
        float | None,
        typer.Option("--top-p", help="Nucleus sampling (paper: 0.6).", show_default=False),
    ] = None,
    max_turns: Annotated[
        int | None,
        typer.Option(
            "--max-turns", help="Assistant turns per problem (paper: 16).", show_default=False
        ),
    ] = None,
    max_response_tokens: Annotated[
        int | None,
        typer.Option(
            "--max-response-tokens",
            help="Response budget, tool tokens included (paper: 20480).",
            show_default=False,
        ),
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option(
            "--limit", help="Evaluate only the first N problems of each bench.", show_default=False
        ),
    ] = None,
    seed: SeedOpt = None,
    out: Annotated[
        str | None,
        typer.Option("--out", help="Results directory (eval.results_dir).", show_default=False),
    ] = None,
) -> None:
    """Evaluate a model with the tool loop: avg@k on AIME24/25, GPQA-Diamond, LiveCodeBench."""
    cfg = load(
        experiment,
        overrides,
        preset=preset,
        model=model,
        method=method,
        options=option_overrides(
            eval__benches=parse_benches(bench) if bench is not None else None,
            eval__k=k,
            rollout__engine=engine,
            eval__grader=grader,
            eval__temperature=temperature,
            eval__top_p=top_p,
            eval__max_turns=max_turns,
            eval__max_response_tokens=max_response_tokens,
            eval__limit=limit,
            seed=seed,
            eval__results_dir=out,
        ),
    )
    from sodctl.commands import evaluate
    from sodctl.commands.common import split_args

    evaluate.run(cfg, experiment=split_args(experiment, overrides)[0], model_opt=model)


# --- whole tables ------------------------------------------------------------------------------


def table_plan(table: str) -> list[tuple[str, str]]:
    """The (command, experiment) steps that produce a table's rows, prerequisites first, no repeats."""
    sizes = ("0.6b", "1.7b") if table == "table1" else ("1.7b",)
    known = set(available_experiments())
    steps: list[tuple[str, str]] = [("sft", "teacher/sft-4b"), ("train", "teacher/grpo-4b")]
    if table == "table1":
        steps.append(("eval", "teacher/grpo-4b"))  # the teacher's own row
    for size in sizes:
        steps += [("sft", f"table1/sft-{size}")]
        for name, _label in TABLE_ROWS[table]:
            experiment = _row_experiment(name, size, known)
            command = {"vanilla": "eval", "sft": None}.get(canonical_name(name), "train")
            if command:
                steps.append((command, experiment))
            if command != "eval":
                steps.append(("eval", experiment))
    return list(dict.fromkeys(steps))  # first occurrence wins, order kept


def _row_experiment(name: str, size: str, known: set[str]) -> str:
    # A row that is the same run as a Table 1 row (uniform-weighting = opd) reuses that run.
    for candidate in (f"table1/{canonical_name(name)}-{size}", f"table2/{name}", f"table5/{name}"):
        if candidate in known:
            return candidate
    raise SodctlUsageError(f"no experiment file for table row {name!r} ({size})")


def parse_seeds(text: str | None) -> list[int]:
    if text is None:
        return []
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise SodctlUsageError(
            f"--seeds: expected comma-separated integers, got {text!r}"
        ) from None
    if not seeds:
        raise SodctlUsageError("--seeds: name at least one seed")
    return seeds


JobsOpt = Annotated[
    int | None,
    typer.Option(
        "--jobs",
        min=1,
        help="Steps run at once on the local engine, each in its own process (config key "
        "engine.jobs; default 1).",
        show_default=False,
    ),
]

SeedsOpt = Annotated[
    str | None,
    typer.Option(
        "--seeds",
        help="Comma-separated seeds, one full run each, reported as mean ± std (paper: 5 seeds).",
        show_default=False,
    ),
]


def reproduce(
    table: Annotated[
        Literal["table1", "table2", "table5"],
        typer.Argument(
            metavar="TABLE", help="The paper table to reproduce: table1, table2 or table5."
        ),
    ],
    overrides: OverridesArg = None,
    preset: PresetOpt = None,
    seeds: SeedsOpt = None,
    jobs: JobsOpt = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Validate every config and print the plan; run nothing."),
    ] = False,
) -> None:
    """Run every stage a paper table needs, in order, then render the table."""
    seed_list = parse_seeds(seeds)
    overrides = [*(overrides or []), *option_overrides(engine__jobs=jobs)]
    plan = table_plan(table)
    lines = []
    for seed in seed_list or [None]:
        for command, experiment in plan:
            options = option_overrides(seed=seed)
            cfg = load(experiment, overrides, preset=preset, options=options)
            lines.append(
                " ".join(
                    [
                        "sodctl",
                        command,
                        experiment,
                        "--preset",
                        str(cfg.preset),
                        *options,
                        *(overrides or []),
                    ]
                )
            )
    if dry_run:
        _print_plan(
            plan,
            overrides,
            preset,
            seed_list,
            [*lines, f"sodctl table {table} --preset {cfg.preset}"],
        )
        return
    _run_plan(plan, [table], overrides, preset, seed_list)


def _print_plan(plan, overrides, preset, seeds, commands: list[str]) -> None:
    """``--dry-run``: every step with its engine, status and GPU-hours, then the commands."""
    from sodctl.pipeline import plan_steps, render_plan

    steps = plan_steps(plan, preset=preset, overrides=list(overrides or []), seeds=seeds)
    typer.echo(render_plan(steps))
    typer.echo("\ncommands (each verl step writes its composed config with --dry-run):")
    typer.echo("\n".join(commands))


def _run_plan(
    plan: list[tuple[str, str]],
    tables: list[str],
    overrides: list[str] | None,
    preset: str | None,
    seeds: list[int],
) -> None:
    """Run a plan with the pipeline driver, then write and print its tables."""
    from rich.console import Console

    from sodctl.pipeline import preflight, run_pipeline
    from sodctl.results.paired import paired_outputs
    from sodctl.results.tables import build_table, render

    preflight(plan, preset=preset, overrides=list(overrides or []))
    console = Console()

    def render_tables(cfg, multi: bool) -> list[Path]:
        out_dir = Path(cfg.eval.results_dir) / str(cfg.preset)
        paths = []
        for name in tables:
            data = build_table(name, cfg.eval.results_dir, preset=str(cfg.preset))
            # with seeds: the paired differences after the markdown, and in <table>.paired.csv
            paired_md, paired_csv = paired_outputs(cfg.eval.results_dir, data)
            texts = {"md": render(data, "markdown") + paired_md, "csv": render(data, "csv")}
            if paired_csv is not None:
                texts["paired.csv"] = paired_csv
            for ext, text in texts.items():
                path = out_dir / f"{name}.{ext}"
                _write_out(text, str(path))
                paths.append(path)
            console.print(texts["md"])
        return paths

    report = run_pipeline(
        plan,
        preset=preset,
        overrides=list(overrides or []),
        seeds=seeds,
        console=console,
        render_tables=render_tables,
    )
    console.print(report.render())
    _write_provenance(report, report.seeds, report.config)
    for path in report.table_paths:
        console.print(f"wrote {path}")


def _write_provenance(report, seeds: list[int], cfg) -> None:
    """Beside each table: ``<table>.provenance.json`` (seeds, commit, versions, machine,
    the wall time of every stage), and a footer line in its markdown saying the same."""
    import json
    import sys
    from datetime import datetime, timezone

    from sodctl.runinfo import git_info, machine_info, package_versions

    git, machine, versions = git_info(), machine_info(), package_versions()
    record = {
        "preset": str(cfg.preset),
        "seeds": seeds,
        "git": git,
        "versions": versions,
        "machine": machine,
        "argv": sys.argv,
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "stages": [vars(s) for s in report.stages],
        "total_seconds": round(sum(s.seconds for s in report.stages), 1),  # stages summed
        "wall_seconds": round(report.wall_seconds, 1),  # start to end (jobs > 1: less)
    }
    jobs = int(cfg.engine.jobs)
    summed = (
        f", {record['total_seconds'] / 60:.1f} min of stages on {jobs} processes"
        if jobs > 1
        else ""
    )
    commit = (
        (git["commit"][:10] + (" (uncommitted changes)" if git["dirty"] else ""))
        if git
        else "unknown"
    )
    gpus = ", ".join(machine["gpus"]) or "no GPU"
    footer = (
        f"\n_Seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))} · sodctl commit {commit}"
        f" · {machine['system']}, {machine['cpus']} CPUs, {gpus}, Python {machine['python']},"
        f" torch {versions.get('torch')} · {record['finished'][:10]}"
        f" · wall time of the run {record['wall_seconds'] / 60:.1f} min{summed} (per stage: the .provenance.json)_\n"
    )
    for path in report.table_paths:
        if path.suffix == ".md":
            with path.open("a") as f:
                f.write(footer)
            name = path.stem
            path.with_name(f"{name}.provenance.json").write_text(
                json.dumps({"table": name, **record}, indent=2) + "\n"
            )


def ablate(
    name: Annotated[str, typer.Argument(metavar="NAME", help=f"Ablation: {', '.join(ABLATIONS)}.")],
    overrides: OverridesArg = None,
    preset: PresetOpt = None,
    seed: SeedOpt = None,
    seeds: SeedsOpt = None,
    engine: EngineOpt = None,
    jobs: JobsOpt = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Validate every config and print the plan; run nothing."),
    ] = False,
) -> None:
    """Train and evaluate one ablation of Table 2 (or Table 5's naive OPD) on the 1.7B student."""
    if seed is not None and seeds is not None:
        raise SodctlUsageError("give --seed N or --seeds A,B,C, not both")
    seed_list = parse_seeds(seeds) if seeds is not None else ([seed] if seed is not None else [])
    if name not in ABLATIONS:
        close = difflib.get_close_matches(name, ABLATIONS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise SodctlUsageError(
            f"unknown ablation {name!r}{hint}; choose one of: {', '.join(ABLATIONS)}"
        )
    experiment = "table5/naive-opd" if name == "naive-opd" else f"table2/{name}"
    cfg = load(
        experiment,
        overrides,
        preset=preset,
        options=option_overrides(seed=seed_list[0] if seed_list else None, engine__name=engine),
    )
    if canonical_name(name) in ("opd", "grpo"):  # (1.1) and (2.2) are Table 1's own runs
        experiment = f"table1/{canonical_name(name)}-1.7b"
    plan = [
        ("sft", "teacher/sft-4b"),
        ("train", "teacher/grpo-4b"),
        ("sft", "table1/sft-1.7b"),
        ("train", experiment),
        ("eval", experiment),
    ]
    extra = [*(overrides or []), *option_overrides(engine__name=engine, engine__jobs=jobs)]
    if dry_run:
        commands = [
            f"sodctl {c} {e} --preset {cfg.preset} {' '.join(extra)}".rstrip() for c, e in plan
        ]
        _print_plan(plan, extra, preset, seed_list, commands)
        return
    _run_plan(
        plan,
        ["table2" if name != "naive-opd" else "table5"],
        extra,
        preset,
        seed_list,
    )


ResultsOpt = Annotated[
    str, typer.Option("--results", help="Results directory written by 'sodctl eval'.")
]
RunsOpt = Annotated[
    str,
    typer.Option("--runs", help="Training runs' root (searched for <experiment>/<run-id>/)."),
]
GraderOpt = Annotated[
    Literal["strict", "math-verify"],
    typer.Option("--grader", help="Whose correctness to show (strict is the paper's)."),
]


def _write_out(text: str, out: str) -> None:
    path = Path(out)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    except OSError as e:
        raise SodctlUsageError(f"--out: cannot write '{out}': {e.strerror or e}") from None


def table(
    which: Annotated[
        Literal["table1", "table2", "table4", "table5"],
        typer.Argument(metavar="TABLE", help="The paper table to render (table4: training cost)."),
    ],
    results: ResultsOpt = "results",
    runs: RunsOpt = "runs",
    fmt: Annotated[
        Literal["markdown", "latex", "csv"],
        typer.Option("--format", help="Output format."),
    ] = "markdown",
    grader: GraderOpt = "strict",
    preset: Annotated[
        str | None,
        typer.Option(
            "--preset",
            help="Which preset's results (default: the only one found).",
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        str | None,
        typer.Option("--out", help="Also write the table to this file.", show_default=False),
    ] = None,
    no_paired: Annotated[
        bool,
        typer.Option(
            "--no-paired",
            help="Markdown: leave out the paired differences over seeds (shown when the "
            "results pair two seeds or more).",
        ),
    ] = False,
) -> None:
    """Render a paper table from evaluation results (table4: training runs), beside the paper's numbers."""
    from sodctl.results.paired import paired_outputs
    from sodctl.results.tables import build_table, render

    data = build_table(which, results, runs, grader, preset=preset)
    text = render(data, fmt)
    if fmt == "markdown" and not no_paired:
        text += paired_outputs(results, data)[0]
    if out is not None:
        _write_out(text, out)
    typer.echo(text, nl=False)


def plot(
    figure: Annotated[
        Literal["curves", "patterns", "steps", "teacher-scale", "all"],
        typer.Argument(
            metavar="FIGURE",
            help="curves: accuracy, entropy, tool-call turns over training (Figure 4); patterns: "
            "stable/erroneous/recovery fractions over training (Figure 6); steps: d_k and w_k of "
            "sampled trajectories (Figure 5); teacher-scale: Average per teacher size (Figure 3); "
            "all: every one the data allows.",
        ),
    ],
    results: ResultsOpt = "results",
    runs: RunsOpt = "runs",
    out: Annotated[str, typer.Option("--out", help="Where to write the figures.")] = "figures",
    grader: GraderOpt = "strict",
) -> None:
    """Plot training dynamics and step weights from run logs, and teacher scale from results."""
    from sodctl.results.plots import plot as draw

    for path in draw(figure, results, runs, out, grader=grader):
        typer.echo(f"{path}  (data: {path.with_suffix('.csv').name})")


def report(
    results: Annotated[
        str,
        typer.Argument(metavar="RESULTS_DIR", help="Results directory written by 'sodctl eval'."),
    ],
    runs: RunsOpt = "runs",
    out: Annotated[
        str | None,
        typer.Option(
            "--out",
            help="The markdown page to write (default: RESULTS_DIR/report.md); figures go to "
            "<its name>-figures/ beside it.",
            show_default=False,
        ),
    ] = None,
    grader: GraderOpt = "strict",
) -> None:
    """Write one markdown page: what was found and what is missing, every table, every figure."""
    from sodctl.results.report import write_report

    typer.echo(write_report(results, runs, out or Path(results) / "report.md", grader=grader))
