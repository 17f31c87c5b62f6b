"""The tiny world's calibration figures, read from one results tree and its runs.

What makes the miniature's Table 1 evidence rather than luck, each measured:

- ``row_averages``: every row's Average per seed, with one run's standard error;
  the SFT rows' spread across seeds, the teacher's margin over the best student,
  the largest one-run standard error, the problems per benchmark;
- ``tool_error_effect``: from the evaluation records, how often a rollout's first
  tool call fails, and its accuracy after that against rollouts whose first call ran;
- ``sod_patterns``: the erroneous / recovery / stable fractions of the SOD runs'
  trajectories (``sod/pattern_*`` in their metrics, averaged over steps);
- the privileged-context probe is ``sodctl.eval.privileged`` (it runs models).
"""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from sodctl.results.paper import PAPER_BENCHES
from sodctl.results.store import ResultStore, load_results
from sodctl.results.tables import TABLE_TEACHER, combined_stderr, seed_averages


@dataclass
class RowAverage:
    """One table row (model, method): its Average and standard error, per seed."""

    model: str
    method: str
    average: dict[str, float] = field(default_factory=dict)  # seed -> Average
    stderr: dict[str, float] = field(default_factory=dict)  # seed -> one run's stderr
    n_problems: dict[str, int] = field(default_factory=dict)  # bench -> problems

    @property
    def mean(self) -> float:
        return statistics.fmean(self.average.values())

    @property
    def std(self) -> float:
        vals = list(self.average.values())
        return statistics.stdev(vals) if len(vals) > 1 else 0.0


def row_averages(
    store: ResultStore | str | Path, preset: str, *, grader: str = "strict"
) -> dict[tuple[str, str], RowAverage]:
    """Every (model, method) with all four benches for a seed: that seed's Average (the
    table's ``seed_averages``) and one run's standard error (``combined_stderr``)."""
    store = load_results(store) if not isinstance(store, ResultStore) else store
    rows: dict[tuple[str, str], RowAverage] = {}
    for model, method in sorted({(r.model, r.method) for r in store.records if r.preset == preset}):
        averages = seed_averages(store, preset, model, method, grader)
        if not averages:
            continue
        row = rows[(model, method)] = RowAverage(model, method, averages)
        for seed in averages:
            errs = []
            for bench in PAPER_BENCHES:
                cells = store.select(preset, model, method, bench, TABLE_TEACHER)
                record = next(r for r in cells if (r.seed or str(r.path)) == seed)
                errs.append(float((record.grader(grader) or {}).get("stderr") or 0.0))
                row.n_problems[bench] = int(record.summary.get("n_problems", 0))
            row.stderr[seed] = combined_stderr(errs)
    return rows


@dataclass
class ToolErrorEffect:
    """Rollouts whose first tool call failed, and how they ended, against the others."""

    samples: int = 0
    early_error: int = 0  # the first tool call was erroneous
    correct_after_error: int = 0
    no_error: int = 0  # the first tool call ran
    correct_no_error: int = 0
    any_error: int = 0  # at least one erroneous call

    def add(self, record: dict, grader: str) -> None:
        calls = record.get("tool_calls") or []
        ok = bool((record.get("correct") or {}).get(grader))
        self.samples += 1
        self.any_error += any(c.get("erroneous") for c in calls)
        if not calls:
            return
        if calls[0].get("erroneous"):
            self.early_error += 1
            self.correct_after_error += ok
        else:
            self.no_error += 1
            self.correct_no_error += ok

    @property
    def early_error_pct(self) -> float:
        return 100.0 * self.early_error / max(self.samples, 1)

    @property
    def acc_after_error(self) -> float | None:
        return 100.0 * self.correct_after_error / self.early_error if self.early_error else None

    @property
    def acc_no_error(self) -> float | None:
        return 100.0 * self.correct_no_error / self.no_error if self.no_error else None


def tool_error_effect(
    store: ResultStore | str | Path, preset: str, *, grader: str = "strict"
) -> dict[tuple[str, str], ToolErrorEffect]:
    """Per (model, method), pooled over benches and seeds, from the records beside each
    summary (``<bench>.jsonl``)."""
    store = load_results(store) if not isinstance(store, ResultStore) else store
    out: dict[tuple[str, str], ToolErrorEffect] = defaultdict(ToolErrorEffect)
    for r in store.records:
        if r.preset != preset or r.bench not in PAPER_BENCHES:
            continue
        records = r.path.with_suffix(".jsonl")
        if not records.is_file():
            continue
        effect = out[(r.model, r.method)]
        with records.open() as f:
            for line in f:
                if line.strip():
                    effect.add(json.loads(line), grader)
    return dict(out)


PATTERNS = ("stable", "erroneous", "recovery")


def sod_patterns(runs_dir: str | Path) -> dict[str, dict[str, float]]:
    """Per training run that logs step patterns (SOD and its ablations), the mean
    fraction of each pattern over its steps, keyed by the run's directory."""
    out: dict[str, dict[str, float]] = {}
    for metrics in sorted(Path(runs_dir).rglob("run/metrics.jsonl")):
        sums: dict[str, list[float]] = defaultdict(list)
        for line in metrics.read_text().splitlines():
            if not line.strip():
                continue
            row = json.loads(line)
            for p in PATTERNS:
                v = row.get(f"sod/pattern_{p}")
                if isinstance(v, (int, float)):
                    sums[p].append(float(v))
        if sums:
            name = str(metrics.parent.parent.relative_to(runs_dir))
            out[name] = {p: statistics.fmean(v) * 100.0 for p, v in sums.items() if v}
    return out
