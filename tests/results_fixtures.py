"""Builders of schema-valid results and run directories for the tables, plots and report tests.

``bench_summary`` makes a complete ``BenchSummary``; ``write_summary`` puts it where
``sodctl eval`` would (``<preset>/<model>/<method>[/seed-<n>]/<bench>.json``);
``write_run`` makes a training run directory (config.yaml, metrics.jsonl, samples.jsonl).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import yaml

from sodctl.results.schema import BenchSummary, GraderSummary, TrainMetrics, TrainSample


def grader_summary(avg: float, stderr: float | None = 1.0) -> GraderSummary:
    return GraderSummary(
        avg_at_k=avg,
        stderr=stderr if stderr is not None else float("nan"),
        mean_sample_std=20.0,
        pass_at={"1": avg, "2": min(100.0, avg * 1.5)},
        maj_at_k=avg,
    )


def bench_summary(
    bench: str,
    avg: float,
    *,
    preset: str = "paper",
    model: str = "1.7b",
    method: str = "sod",
    seed: int = 42,
    stderr: float = 1.0,
    math_verify: float | None = None,
    k: int = 32,
    teacher_size: str = "4b",
) -> BenchSummary:
    """A complete summary; the math-verify grader scores ``math_verify`` (default avg + 1)."""
    mv = avg + 1.0 if math_verify is None else math_verify
    return BenchSummary(
        bench=bench,
        bench_version="1",
        model=f"runs/{method}-{model}/final",
        label={"preset": preset, "model": model, "method": method, "seed": str(seed)},
        k=k,
        n_problems=30,
        n_filtered=0,
        filtered_ids=[],
        n_records=30 * k,
        graders={"strict": grader_summary(avg, stderr), "math-verify": grader_summary(mv, stderr)},
        mean_turns=3.0,
        tool_calls_per_sample=2.0,
        tool_error_rate=10.0,
        mean_response_tokens=1000.0,
        stop_reasons={"answer": 30 * k},
        tokens_per_s=100.0,
        wall_time_s=60.0,
        config={
            "preset": preset,
            "seed": seed,
            "method": {"name": method},
            "model": {"size": model},
            "teacher": {"size": teacher_size},
        },
        run={"argv": ["sodctl", "eval"], "git": None},
    )


def write_summary(results: Path, summary: BenchSummary, *, seed_dir: bool = False) -> Path:
    label = summary["label"]
    where = results / label["preset"] / label["model"] / label["method"]
    if seed_dir:
        where = where / f"seed-{label['seed']}"
    where.mkdir(parents=True, exist_ok=True)
    path = where / f"{summary['bench']}.json"
    path.write_text(json.dumps(summary, indent=1))
    return path


def metrics_line(
    step: int, n_steps: int, *, step_time: float, peak_mem: float, patterns: bool = True
) -> TrainMetrics:
    frac = step / max(1, n_steps - 1)
    line: dict[str, Any] = {
        "step": step,
        "epoch": frac,
        "train/loss": 1.0 - 0.5 * frac,
        "train/entropy": 0.8 - 0.3 * frac,
        "rollout/acc": 0.1 + 0.5 * frac,
        "rollout/turns": 4.0 - frac,
        "sod/w_mean": 0.8,
        "sod/pattern_stable": 0.3 + 0.4 * frac,
        "sod/pattern_erroneous": 0.5 - 0.4 * frac,
        "sod/pattern_recovery": 0.2,
        "perf/step_time_s": step_time,
        "perf/peak_mem_gb": peak_mem + 0.01 * step,
    }
    if not patterns:
        line = {k: v for k, v in line.items() if not k.startswith("sod/")}
    return TrainMetrics(**line)  # type: ignore[typeddict-item]


def sample_line(
    step: int, traj_id: str, d: list[float], pattern: str, correct: bool
) -> TrainSample:
    w = [min((d[0] + 1e-6) / (x + 1e-6), 1.2) for x in d]
    return TrainSample(step=step, traj_id=traj_id, d=d, w=w, pattern=pattern, correct=correct)


ERRONEOUS_D = [0.218, 0.305, 0.476, 0.713, 1.284]  # Appendix G
RECOVERY_D = [0.216, 0.298, 0.385, 0.527, 0.285, 0.193, 0.158]
STABLE_D = [0.2, 0.21, 0.19]


def write_run(
    runs: Path,
    experiment: str,
    run_id: str = "run-1",
    *,
    preset: str = "paper",
    method: str = "sod",
    size: str = "1.7b",
    seed: int = 42,
    n_steps: int = 12,
    step_time: float = 10.0,
    peak_mem: float = 5.0,
    torn: bool = False,
    samples: bool = True,
    patterns: bool = True,
) -> Path:
    """A run directory with config.yaml, metrics.jsonl (optionally torn) and samples.jsonl."""
    path = runs / experiment / run_id
    path.mkdir(parents=True, exist_ok=True)
    cfg = {
        "experiment": experiment,
        "preset": preset,
        "seed": seed,
        "method": {"name": method, "stage": "rl"},
        "model": {"size": size, "path": f"runs/{experiment}/final"},
    }
    (path / "config.yaml").write_text(yaml.safe_dump(cfg))
    lines = [
        json.dumps(
            metrics_line(s, n_steps, step_time=step_time, peak_mem=peak_mem, patterns=patterns)
        )
        for s in range(n_steps)
    ]
    text = "\n".join(lines) + "\n"
    if torn:
        text += '{"step": 99, "perf/step_time_s": 1e9, "rollout/a'  # killed mid-write
    (path / "metrics.jsonl").write_text(text)
    if samples:
        rows = []
        for step in range(0, n_steps, 4):
            rows += [
                sample_line(step, f"{step}-0", STABLE_D, "stable", True),
                sample_line(step, f"{step}-1", ERRONEOUS_D, "erroneous", False),
                sample_line(step, f"{step}-2", RECOVERY_D, "recovery", True),
            ]
        (path / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def expected_run_cost(n_steps: int, step_time: float, peak_mem: float) -> dict[str, float]:
    return {
        "step_time_s": step_time,
        "peak_mem_gb": peak_mem + 0.01 * (n_steps - 1),
        "total_h": n_steps * step_time / 3600.0,
        "steps": float(n_steps),
    }


PAPER_BENCHES = ("aime24", "aime25", "gpqa", "lcb")
SOD = {"aime24": 50.0, "aime25": 40.0, "gpqa": 38.0, "lcb": 41.0}  # 1.7B, one seed, stderr 1
SOD_14B = {"aime24": 60.0, "aime25": 50.0, "gpqa": 45.0, "lcb": 47.0}  # 1.7B from a 14B teacher
GRPO_SEEDS = {  # 1.7B, seeds 1, 2, 3
    "aime24": [30.0, 34.0, 32.0],
    "aime25": [20.0, 22.0, 24.0],
    "gpqa": [33.0, 35.0, 31.0],
    "lcb": [18.0, 20.0, 22.0],
}
COST = {"sod": [(10.0, 5.0), (14.0, 6.0)], "opd-gated": [(12.0, 5.5)], "grpo": [(8.0, 4.0)]}
N_STEPS = 12


def build_fixture(root: Path) -> tuple[Path, Path]:
    """A results directory and a runs directory (preset "paper") with partial tables.

    Results: 1.7B SOD on all four benches; the same from a 14B teacher (Figure 3 only);
    1.7B GRPO over three seeds; 0.6B OPD on AIME24 only; the 4B teacher on AIME24; a 1.7B
    summary labelled with the alias "uniform-weighting" (AIME24 44); 1.7B "no-grpo" on
    AIME24 (48) and GPQA (36); and a JSON file that is not a summary.
    Runs: two seeds of SOD 1.7B (with samples), OPD 1.7B, GRPO 0.6B (torn last line, 10
    steps, no patterns), and a run directory without config.yaml.
    """
    results, runs = root / "results", root / "runs"
    for bench, avg in SOD.items():
        write_summary(results, bench_summary(bench, avg))
        write_summary(
            results, bench_summary(bench, SOD_14B[bench], seed=7, teacher_size="14b"), seed_dir=True
        )
    for bench, values in GRPO_SEEDS.items():
        for seed, avg in zip((1, 2, 3), values):
            summary = bench_summary(bench, avg, method="grpo", seed=seed)
            write_summary(results, summary, seed_dir=True)
    write_summary(results, bench_summary("aime24", 20.0, model="0.6b", method="opd-gated", stderr=0.5))
    write_summary(results, bench_summary("aime24", 66.0, model="4b", method="teacher", stderr=1.2))
    write_summary(results, bench_summary("aime24", 44.0, method="uniform-weighting"))
    write_summary(results, bench_summary("aime24", 48.0, method="no-grpo"))
    write_summary(results, bench_summary("gpqa", 36.0, method="no-grpo"))
    (results / "paper" / "notes.json").write_text('{"hello": 1}')

    for i, (step_time, peak) in enumerate(COST["sod"], 1):
        write_run(runs, "table1/sod-1.7b", f"run-{i}", seed=i, step_time=step_time, peak_mem=peak)
    write_run(runs, "table1/opd-gated-1.7b", method="opd-gated", step_time=12.0, peak_mem=5.5, samples=False)
    write_run(
        runs,
        "table1/grpo-0.6b",
        method="grpo",
        size="0.6b",
        n_steps=10,
        step_time=8.0,
        peak_mem=4.0,
        torn=True,
        samples=False,
        patterns=False,
    )
    broken = runs / "broken" / "run-x"
    broken.mkdir(parents=True)
    (broken / "metrics.jsonl").write_text('{"step": 0}\n')
    return results, runs


def std(xs: list[float]) -> float:
    mean = sum(xs) / len(xs)
    return math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - 1))
