"""The paper's figures from our runs and results; each PNG has the plotted data as CSV beside it.

* ``curves``        Figure 4: accuracy (``rollout/acc``), policy entropy (``train/entropy``) and
                    tool-call turns (``rollout/turns``) over training, one line per method, one
                    row of panels per student size. Runs of one (preset, size, method) are
                    averaged step by step.
* ``patterns``      Figure 6 (Appendix C.2): the stable / erroneous / recovery fractions
                    (``sod/pattern_*``) over training, smoothed with a centred 9-step moving
                    average over the logged steps (the window shrinks at the ends); the CSV
                    keeps the raw fractions too.
* ``steps``         Figure 5 / Appendix G: per-step d_k (bars) and w_k (line) of sampled
                    trajectories from ``samples.jsonl`` (``TrainSample``). Per run, one
                    trajectory per pattern: the latest training step's, the one with the most
                    steps on ties, the first in the file after that.
* ``teacher-scale`` Figure 3: Average avg@k per student size, method and teacher size (the
                    summary's ``config.teacher.size``), for the methods distilling from an
                    external teacher. Average = the mean of the four paper benches, only for
                    groups that have all four; a preset without any such group (the tiny
                    world) uses the mean over the benches every group has, and says so.

Figures are drawn on matplotlib's Agg canvas (no display, no pyplot state).
"""

from __future__ import annotations

import csv
import math
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from sodctl.errors import SodctlUsageError
from sodctl.methods import METHODS
from sodctl.results.paper import PAPER_BENCHES
from sodctl.results.schema import GRADERS
from sodctl.results.store import (
    RUN_LAYOUT,
    SUMMARY_LAYOUT,
    ResultStore,
    RunStore,
    TrainRun,
    load_results,
    load_runs,
)

PLOTS: tuple[str, ...] = ("curves", "patterns", "steps", "teacher-scale")
KINDS: tuple[str, ...] = (*PLOTS, "all")
CURVE_METRICS: tuple[tuple[str, str], ...] = (
    ("rollout/acc", "accuracy"),
    ("train/entropy", "entropy"),
    ("rollout/turns", "tool-call turns"),
)
PATTERNS: tuple[str, ...] = ("stable", "erroneous", "recovery")
PATTERN_WINDOW = 9
_SIZE_ORDER = ("0.6b", "1.7b", "4b", "14b")


def _label(method: str) -> str:
    return METHODS[method].label if method in METHODS else method


def _size_key(size: str) -> tuple[int, str]:
    return (_SIZE_ORDER.index(size) if size in _SIZE_ORDER else len(_SIZE_ORDER), size)


def _method_key(method: str) -> tuple[int, str]:
    names = list(METHODS)
    return (names.index(method) if method in names else len(names), method)


def _figure(nrows: int, ncols: int, width: float = 4.2, height: float = 3.2) -> tuple[Any, Any]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * ncols, height * nrows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


def _save(fig: Any, path: Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    with path.with_suffix(".csv").open("w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "x"


def _mean_series(runs: Sequence[TrainRun], key: str) -> tuple[list[int], list[float]]:
    """Step-by-step mean of one metric over several runs (each step over the runs that have it)."""
    acc: dict[int, list[float]] = defaultdict(list)
    for run in runs:
        for step, value in zip(*run.series(key)):
            acc[step].append(value)
    steps = sorted(acc)
    return steps, [math.fsum(acc[s]) / len(acc[s]) for s in steps]


def moving_average(values: Sequence[float], window: int = PATTERN_WINDOW) -> list[float]:
    """Centred moving average; near the ends the window shrinks to what exists."""
    half = window // 2
    out = []
    for i in range(len(values)):
        chunk = values[max(0, i - half) : i + half + 1]
        out.append(math.fsum(chunk) / len(chunk))
    return out


def _groups(runs: RunStore) -> dict[tuple[str, str, str], list[TrainRun]]:
    out: dict[tuple[str, str, str], list[TrainRun]] = defaultdict(list)
    for run in runs.runs:
        out[(run.preset, run.size, run.method)].append(run)
    return dict(
        sorted(out.items(), key=lambda kv: (kv[0][0], _size_key(kv[0][1]), _method_key(kv[0][2])))
    )


# --- Figure 4: training curves ----------------------------------------------------------------


def plot_curves(runs: RunStore, out_dir: Path) -> list[Path]:
    """One figure per preset: rows = student sizes, columns = accuracy, entropy, turns."""
    data: dict[str, dict[str, dict[str, dict[str, tuple[list[int], list[float]]]]]] = {}
    for (preset, size, method), group in _groups(runs).items():
        for key, _ in CURVE_METRICS:
            steps, values = _mean_series(group, key)
            if steps:
                data.setdefault(preset, {}).setdefault(size, {}).setdefault(method, {})[key] = (
                    steps,
                    values,
                )
    written = []
    for preset, by_size in data.items():
        fig, axes = _figure(len(by_size), len(CURVE_METRICS))
        rows: list[tuple[Any, ...]] = []
        for r, (size, by_method) in enumerate(by_size.items()):
            for c, (key, title) in enumerate(CURVE_METRICS):
                ax = axes[r][c]
                for method, series in by_method.items():
                    if key in series:
                        steps, values = series[key]
                        ax.plot(steps, values, label=_label(method), linewidth=1.4)
                        rows += [(preset, size, method, key, s, v) for s, v in zip(steps, values)]
                ax.set_title(f"({chr(97 + r * len(CURVE_METRICS) + c)}) {title}, {size.upper()}")
                ax.set_xlabel("training step")
                ax.set_ylabel(key)
                ax.grid(alpha=0.3)
                if ax.has_data():
                    ax.legend(fontsize=8)
        fig.suptitle(f"Training dynamics (Figure 4), preset {preset}")
        path = out_dir / f"curves-{_safe(preset)}.png"
        written.append(
            _save(fig, path, ("preset", "size", "method", "metric", "step", "value"), rows)
        )
    return written


# --- Figure 6: pattern fractions --------------------------------------------------------------


def plot_patterns(runs: RunStore, out_dir: Path, window: int = PATTERN_WINDOW) -> list[Path]:
    """One figure per preset, one panel per (size, method) that logged ``sod/pattern_*``."""
    panels: dict[str, list[tuple[str, str, list[int], dict[str, list[float]]]]] = defaultdict(list)
    for (preset, size, method), group in _groups(runs).items():
        raw = {p: _mean_series(group, f"sod/pattern_{p}") for p in PATTERNS}
        steps = sorted(set.intersection(*(set(s) for s, _ in raw.values())))
        if not steps:
            continue
        values = {p: [dict(zip(*raw[p]))[s] for s in steps] for p in PATTERNS}
        panels[preset].append((size, method, steps, values))
    written = []
    for preset, items in panels.items():
        ncols = min(3, len(items))
        nrows = math.ceil(len(items) / ncols)
        fig, axes = _figure(nrows, ncols)
        rows: list[tuple[Any, ...]] = []
        for i, (size, method, steps, values) in enumerate(items):
            ax = axes[i // ncols][i % ncols]
            smooth = {p: moving_average(values[p], window) for p in PATTERNS}
            for p in PATTERNS:
                ax.plot(steps, smooth[p], label=p, linewidth=1.6)
            ax.set_title(f"{_label(method)}, {size.upper()}")
            ax.set_xlabel("training step")
            ax.set_ylabel(f"fraction ({window}-step moving average)")
            ax.set_ylim(0, 1)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
            for j, step in enumerate(steps):
                rows.append(
                    (preset, size, method, step)
                    + tuple(smooth[p][j] for p in PATTERNS)
                    + tuple(values[p][j] for p in PATTERNS)
                )
        for j in range(len(items), nrows * ncols):
            axes[j // ncols][j % ncols].set_visible(False)
        fig.suptitle(f"Distillation patterns over training (Figure 6), preset {preset}")
        header = ("preset", "size", "method", "step", *PATTERNS, *(f"{p}_raw" for p in PATTERNS))
        written.append(_save(fig, out_dir / f"patterns-{_safe(preset)}.png", header, rows))
    return written


# --- Figure 5 / Appendix G: per-step d_k and w_k ----------------------------------------------


def pick_samples(samples: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One trajectory per pattern (stable, erroneous, recovery order; then any other pattern)."""
    best: dict[str, tuple[tuple[float, int, int], dict[str, Any]]] = {}
    for i, s in enumerate(samples):
        if not s["d"] or len(s["d"]) != len(s["w"]):
            continue
        pattern = str(s.get("pattern") or "unclassified")
        rank = (float(s["step"]), len(s["d"]), -i)
        if pattern not in best or rank > best[pattern][0]:
            best[pattern] = (rank, s)
    order = [p for p in PATTERNS if p in best] + sorted(set(best) - set(PATTERNS))
    return [best[p][1] for p in order]


def plot_steps(runs: RunStore, out_dir: Path) -> list[Path]:
    """One figure per run with samples: d_k bars and the w_k line of each picked trajectory."""
    written: list[Path] = []
    names: set[str] = set()
    for run in runs.runs:
        try:
            picked = pick_samples(run.samples())
        except (OSError, ValueError):
            continue
        if not picked:
            continue
        fig, axes = _figure(1, len(picked))
        rows: list[tuple[Any, ...]] = []
        for ax, s in zip(axes[0], picked):
            ks = list(range(1, len(s["d"]) + 1))
            ax.bar(ks, s["d"], color="#9ecae1", label="d_k")
            ax.set_xlabel("step k")
            ax.set_ylabel("d_k (step divergence)")
            ax.set_xticks(ks)
            twin = ax.twinx()
            twin.plot(ks, s["w"], color="#d62728", marker="o", label="w_k")
            twin.set_ylabel("w_k (step weight)")
            twin.set_ylim(0, max(1.3, max(s["w"]) * 1.1))
            verdict = {True: "correct", False: "wrong"}.get(s.get("correct"), "?")
            pattern = s.get("pattern") or "unclassified"
            ax.set_title(f"{pattern}: step {s['step']}, {s['traj_id']} ({verdict})", fontsize=9)
            rows += [
                (
                    run.experiment,
                    run.run_id,
                    s["traj_id"],
                    s["step"],
                    pattern,
                    s.get("correct"),
                    k,
                    d,
                    w,
                )
                for k, d, w in zip(ks, s["d"], s["w"])
            ]
        where = f"{run.experiment}/{run.run_id}"
        title = f"Step divergence d_k and weight w_k: {_label(run.method)} {run.size.upper()}"
        fig.suptitle(f"{title}, {where}")
        name = _safe(f"steps-{run.preset}-{run.size}-{run.method}-{run.run_id}")
        while name in names:
            name += "_"
        names.add(name)
        header = ("experiment", "run", "traj_id", "train_step", "pattern", "correct", "k", "d", "w")
        written.append(_save(fig, out_dir / f"{name}.png", header, rows))
    return written


# --- Figure 3: teacher scale ------------------------------------------------------------------


def teacher_scale_data(
    results: ResultStore, grader: str
) -> dict[str, tuple[str, list[tuple[str, str, str, float, int]]]]:
    """Per preset: (metric name, [(student, method, teacher, value, seeds)])."""
    cells: dict[tuple[str, str, str, str], dict[str, list[float]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for r in results.records:
        spec = METHODS.get(r.method)
        teacher = r.teacher
        g = r.grader(grader)
        if spec is None or not spec.needs_teacher_model or teacher is None or g is None:
            continue
        cells[(r.preset, r.model, r.method, teacher)][r.bench].append(float(g["avg_at_k"]))
    by_preset: dict[str, dict[tuple[str, str, str], dict[str, list[float]]]] = defaultdict(dict)
    for (preset, *rest), benches in cells.items():
        by_preset[preset][tuple(rest)] = benches  # type: ignore[index]
    out: dict[str, tuple[str, list[tuple[str, str, str, float, int]]]] = {}
    for preset, groups in sorted(by_preset.items()):
        complete = {k: v for k, v in groups.items() if all(b in v for b in PAPER_BENCHES)}
        if complete:
            use, metric = complete, "Average of " + ", ".join(PAPER_BENCHES)
            benches: Sequence[str] = PAPER_BENCHES
        else:
            common = set.intersection(*(set(v) for v in groups.values()))
            if not common:
                continue
            benches = sorted(common)
            use, metric = groups, "mean of " + ", ".join(benches)
        bars = []
        for (student, method, teacher), v in use.items():
            per_bench = [math.fsum(v[b]) / len(v[b]) for b in benches]
            seeds = min(len(v[b]) for b in benches)
            bars.append((student, method, teacher, math.fsum(per_bench) / len(per_bench), seeds))
        bars.sort(key=lambda b: (_size_key(b[0]), _method_key(b[1]), _size_key(b[2])))
        out[preset] = (metric, bars)
    return out


def plot_teacher_scale(results: ResultStore, out_dir: Path, grader: str = "strict") -> list[Path]:
    """Bars of the Average per student size, one bar per (method, teacher size)."""
    written = []
    for preset, (metric, bars) in teacher_scale_data(results, grader).items():
        students = sorted({b[0] for b in bars}, key=_size_key)
        series = sorted(
            {(b[1], b[2]) for b in bars}, key=lambda s: (_method_key(s[0]), _size_key(s[1]))
        )
        value = {(b[0], b[1], b[2]): b[3] for b in bars}
        fig, axes = _figure(
            1, 1, width=max(6.0, 1.5 + 0.8 * len(students) * len(series)), height=4.0
        )
        ax = axes[0][0]
        width = 0.8 / len(series)
        for i, (method, teacher) in enumerate(series):
            xs = [
                j + (i - (len(series) - 1) / 2) * width
                for j, s in enumerate(students)
                if (s, method, teacher) in value
            ]
            ys = [value[(s, method, teacher)] for s in students if (s, method, teacher) in value]
            bars_drawn = ax.bar(xs, ys, width, label=f"{_label(method)}, {teacher.upper()} teacher")
            ax.bar_label(bars_drawn, fmt="%.1f", fontsize=7)
        ax.set_xticks(range(len(students)), [f"{s.upper()} student" for s in students])
        ax.set_ylabel("avg@k (%)")
        ax.set_title(
            f"Teacher scale (Figure 3), preset {preset}, grader {grader}\n{metric}", fontsize=10
        )
        ax.margins(y=0.15)
        ax.legend(fontsize=8, loc="lower right")
        ax.grid(axis="y", alpha=0.3)
        rows = [(preset, s, m, t, v, n, metric) for s, m, t, v, n in bars]
        header = ("preset", "student", "method", "teacher", "value", "seeds", "metric")
        written.append(_save(fig, out_dir / f"teacher-scale-{_safe(preset)}.png", header, rows))
    return written


# --- entry point ------------------------------------------------------------------------------

_EXPECTED = {
    "curves": "runs logging rollout/acc, train/entropy or rollout/turns in metrics.jsonl",
    "patterns": "runs logging sod/pattern_stable, sod/pattern_erroneous and sod/pattern_recovery",
    "steps": "runs with samples.jsonl lines holding step, traj_id, d and w",
    "teacher-scale": "evaluation summaries of an external-teacher method (opd, sod, ...) with "
    "config.teacher.size",
}


def plot_stores(
    kind: str,
    results: ResultStore | None,
    runs: RunStore | None,
    out_dir: Path,
    grader: str = "strict",
) -> tuple[list[Path], dict[str, str]]:
    """Draw ``kind`` (or ``all``) from loaded stores: (PNG paths, {kind: why nothing was drawn})."""
    written: list[Path] = []
    missing: dict[str, str] = {}
    for k in PLOTS if kind == "all" else (kind,):
        if k == "teacher-scale":
            paths = plot_teacher_scale(results, out_dir, grader) if results is not None else []
            where = (
                f"results directory '{results.root}'"
                if results is not None
                else "no results directory"
            )
        else:
            fn = {"curves": plot_curves, "patterns": plot_patterns, "steps": plot_steps}[k]
            paths = fn(runs, out_dir) if runs is not None else []
            where = f"runs directory '{runs.root}'" if runs is not None else "no runs directory"
        written += paths
        if not paths:
            missing[k] = f"{where}: no {_EXPECTED[k]}"
    return written, missing


def plot(
    kind: str,
    results_dir: str | Path | None,
    runs_dir: str | Path | None,
    out_dir: str | Path,
    *,
    grader: str = "strict",
) -> list[Path]:
    """Write the figure(s) of ``kind`` (``curves``, ``patterns``, ``steps``, ``teacher-scale`` or
    ``all``) as PNGs under ``out_dir``, each with a CSV of its data beside it; returns the PNGs.

    A kind with no data to draw is a ``SodctlUsageError`` naming the directory and what was
    expected; ``all`` draws what it can and fails only when it can draw nothing.
    """
    if kind not in KINDS:
        raise SodctlUsageError(f"unknown plot {kind!r}; choose one of: {', '.join(KINDS)}")
    if grader not in GRADERS:
        raise SodctlUsageError(f"unknown grader {grader!r}; choose one of: {', '.join(GRADERS)}")
    needs_results = kind in ("teacher-scale", "all")
    needs_runs = kind != "teacher-scale"
    results = load_results(results_dir) if needs_results and results_dir is not None else None
    runs = load_runs(runs_dir) if needs_runs and runs_dir is not None else None
    if kind == "teacher-scale":
        if results is None:
            raise SodctlUsageError(
                "plot teacher-scale reads evaluation results: name --results DIR"
            )
        results.require()
    elif kind != "all":
        if runs is None:
            raise SodctlUsageError(f"plot {kind} reads training runs: name --runs DIR")
        runs.require()
    written, missing = plot_stores(kind, results, runs, Path(out_dir), grader)
    if written:
        return written
    if kind == "all":
        sources = [
            f"results directory '{results_dir}' (expected {SUMMARY_LAYOUT})"
            if results_dir is not None
            else "no results directory",
            f"runs directory '{runs_dir}' (expected {RUN_LAYOUT})"
            if runs_dir is not None
            else "no runs directory",
        ]
        raise SodctlUsageError(f"nothing to plot: {' and '.join(sources)}")
    raise SodctlUsageError(f"plot {kind}: {missing[kind]}")
