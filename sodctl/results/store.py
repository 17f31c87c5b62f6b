"""Reading what evaluation and training wrote (the layout is ``sodctl.results.schema``).

``load_results(dir)`` finds every ``BenchSummary`` under a results directory and indexes it
by (preset, model label, method, bench, seed); ``load_runs(dir)`` finds every training run
(a directory holding ``metrics.jsonl``) and places it by its resolved ``config.yaml``.

Where a summary sits comes from its ``label`` (preset, model, method, seed), falling back
to its path (``<preset>/<model>/<method>[/seed-<n>]/<bench>.json``) for missing keys.
Method names are canonicalised through the registry, so a summary labelled
``uniform-weighting`` and one labelled ``opd`` are the same row.

Several seeds of one (preset, model, method, bench) aggregate to their mean and the sample
standard deviation across seeds (ddof 1, ``n`` kept); a single run keeps the summary's
standard error over problems. Files that cannot be read are skipped and listed in
``skipped`` with the reason, never fatal: a table shows what exists.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from sodctl.errors import SodctlUsageError
from sodctl.methods import METHODS, UnknownMethodError, canonical_name

# What a number's "±" is: the standard error over problems of one run (from the summary),
# the sample std across n seeds / runs, or nothing.
ErrKind = Literal["stderr", "seed-std", "none"]

SUMMARY_LAYOUT = "BenchSummary files <preset>/<model>/<method>/<bench>.json from 'sodctl eval'"
RUN_LAYOUT = "run directories <experiment>/<run-id>/ with metrics.jsonl and config.yaml"
_PRUNE = {"checkpoints", "wandb", "final", "samples", "__pycache__"}


@dataclass(frozen=True)
class Value:
    """A number we measured, its "±" and how many seeds / runs it aggregates."""

    mean: float
    err: float | None
    n: int = 1
    kind: ErrKind = "stderr"


def aggregate(values: Iterable[float], *, single_err: float | None = None) -> Value | None:
    """Mean ± sample std across several values; one value keeps ``single_err`` (its stderr)."""
    xs = [float(x) for x in values]
    if not xs:
        return None
    if len(xs) == 1:
        return Value(xs[0], single_err, 1, "stderr" if single_err is not None else "none")
    mean = math.fsum(xs) / len(xs)
    std = math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (len(xs) - 1))
    return Value(mean, std, len(xs), "seed-std")


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The JSON objects of a JSONL file; a torn (unparseable) last line is dropped.

    A bad line anywhere else is an error (``ValueError`` naming the line): that is
    corruption, not an interrupted append.
    """
    lines = [(i, line) for i, line in enumerate(path.read_text().splitlines(), 1) if line.strip()]
    out: list[dict[str, Any]] = []
    for pos, (lineno, line) in enumerate(lines):
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            if pos == len(lines) - 1:
                break  # a run killed mid-write
            raise ValueError(f"{path}:{lineno}: not a JSON line") from None
        if not isinstance(obj, dict):
            raise ValueError(f"{path}:{lineno}: expected a JSON object")
        out.append(obj)
    return out


def canonical_method(method: str) -> str:
    """The registry name of a method or alias; other names (``teacher``, ``external``) as is."""
    try:
        return canonical_name(method)
    except UnknownMethodError:  # "teacher", "external", or a name of the user's own
        return method


def _walk(root: Path) -> Iterator[tuple[Path, list[str]]]:
    """(directory, file names) under ``root``, sorted, skipping hidden and bulky directories."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d not in _PRUNE)
        yield Path(dirpath), sorted(filenames)


# --- evaluation summaries ---------------------------------------------------------------------


@dataclass(frozen=True)
class SummaryRecord:
    """One ``BenchSummary`` file and where it sits in the tables."""

    path: Path
    preset: str
    model: str
    method: str  # canonical registry name when it is one ("teacher", "external" otherwise)
    bench: str
    seed: str  # "" when neither the label nor the path says
    summary: dict[str, Any]

    @property
    def teacher(self) -> str | None:
        """The teacher size the evaluated model was distilled from (``config.teacher.size``)."""
        config = self.summary.get("config")
        teacher = config.get("teacher") if isinstance(config, dict) else None
        size = teacher.get("size") if isinstance(teacher, dict) else None
        return str(size) if size else None

    def from_teacher(self, teacher: str | None) -> bool:
        """Does this record belong to ``teacher``'s cells? Always, for a method without an
        external teacher, a record that does not say, or ``teacher=None``."""
        spec = METHODS.get(self.method)
        if teacher is None or spec is None or not spec.needs_teacher_model:
            return True
        return self.teacher in (None, teacher)

    def grader(self, grader: str) -> dict[str, Any] | None:
        g = self.summary.get("graders", {}).get(grader)
        return g if isinstance(g, dict) and _is_number(g.get("avg_at_k")) else None


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _place(root: Path, path: Path, summary: dict[str, Any]) -> SummaryRecord | str:
    """Where a summary sits, or why it cannot be placed."""
    parts = path.relative_to(root).parts[:-1]
    from_path: dict[str, str] = {}
    if parts and parts[-1].startswith("seed-"):
        from_path["seed"] = parts[-1][len("seed-") :]
        parts = parts[:-1]
    if len(parts) >= 3:
        from_path.update(zip(("preset", "model", "method"), parts[-3:]))
    label = summary.get("label") if isinstance(summary.get("label"), dict) else {}
    where = {
        key: str(label[key]) if label.get(key) not in (None, "") else from_path.get(key, "")
        for key in ("preset", "model", "method", "seed")
    }
    missing = [key for key in ("preset", "model", "method") if not where[key]]
    if missing:
        return f"no {', '.join(missing)} in its label or path"
    bench = summary.get("bench") or path.stem
    return SummaryRecord(
        path,
        where["preset"],
        where["model"],
        canonical_method(where["method"]),
        str(bench),
        where["seed"],
        summary,
    )


@dataclass
class ResultStore:
    """Every evaluation summary under one results directory."""

    root: Path
    records: list[SummaryRecord] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "path: why"

    def __len__(self) -> int:
        return len(self.records)

    def presets(self) -> list[str]:
        return sorted({r.preset for r in self.records})

    def benches(self, preset: str | None = None) -> list[str]:
        return sorted({r.bench for r in self.records if preset in (None, r.preset)})

    def benches_of(
        self, preset: str, model: str, method: str, teacher: str | None = None
    ) -> set[str]:
        """The benches a (preset, model, method) was evaluated on."""
        method = canonical_method(method)
        return {
            r.bench
            for r in self.records
            if (r.preset, r.model, r.method) == (preset, model, method) and r.from_teacher(teacher)
        }

    def select(
        self, preset: str, model: str, method: str, bench: str, teacher: str | None = None
    ) -> list[SummaryRecord]:
        """Every seed of one cell (``method`` may be an alias); ``teacher`` keeps only the
        distillation runs from that teacher size (see ``SummaryRecord.from_teacher``)."""
        method = canonical_method(method)
        return [
            r
            for r in self.records
            if (r.preset, r.model, r.method, r.bench) == (preset, model, method, bench)
            and r.from_teacher(teacher)
        ]

    def seed_values(
        self,
        preset: str,
        model: str,
        method: str,
        bench: str,
        grader: str,
        teacher: str | None = None,
    ) -> dict[str, float]:
        """avg@k per seed (records without a seed are keyed by their path)."""
        out: dict[str, float] = {}
        for r in self.select(preset, model, method, bench, teacher):
            g = r.grader(grader)
            if g is not None:
                out[r.seed or str(r.path)] = float(g["avg_at_k"])
        return out

    def value(
        self,
        preset: str,
        model: str,
        method: str,
        bench: str,
        grader: str,
        teacher: str | None = None,
    ) -> Value | None:
        """The cell's number: one run with its stderr, or mean ± std across seeds."""
        records = self.select(preset, model, method, bench, teacher)
        graded = [g for r in records if (g := r.grader(grader))]
        if len(graded) == 1 and _is_number(graded[0].get("stderr")):
            return aggregate([graded[0]["avg_at_k"]], single_err=float(graded[0]["stderr"]))
        return aggregate(g["avg_at_k"] for g in graded)

    def require(self) -> None:
        """Refuse an empty store with one line naming the directory and the expected layout."""
        if self.records:
            return
        if not self.root.is_dir():
            raise SodctlUsageError(
                f"results directory '{self.root}' does not exist; expected {SUMMARY_LAYOUT}"
            )
        extra = f" ({len(self.skipped)} unreadable file(s) skipped)" if self.skipped else ""
        raise SodctlUsageError(
            f"results directory '{self.root}' holds no evaluation summaries{extra}; "
            f"expected {SUMMARY_LAYOUT}"
        )


def load_results(results_dir: str | Path) -> ResultStore:
    """Read every ``BenchSummary`` under ``results_dir`` (an empty store if there is none)."""
    root = Path(results_dir)
    store = ResultStore(root)
    if not root.is_dir():
        return store
    seen: dict[tuple[str, str, str, str, str], Path] = {}
    for directory, files in _walk(root):
        for name in files:
            if name.startswith(".") or not name.endswith(".json"):
                continue
            path = directory / name
            try:
                summary = json.loads(path.read_text())
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
                store.skipped.append(f"{path}: unreadable ({type(e).__name__})")
                continue
            if not (isinstance(summary, dict) and isinstance(summary.get("graders"), dict)):
                store.skipped.append(f"{path}: not a BenchSummary (no 'graders')")
                continue
            placed = _place(root, path, summary)
            if isinstance(placed, str):
                store.skipped.append(f"{path}: {placed}")
                continue
            key = (placed.preset, placed.model, placed.method, placed.bench, placed.seed)
            if placed.seed and key in seen:
                store.skipped.append(f"{path}: same cell and seed as {seen[key]}")
                continue
            seen[key] = path
            store.records.append(placed)
    return store


# --- training runs ----------------------------------------------------------------------------


@dataclass
class TrainRun:
    """One training run: its place in the tables and its per-step metrics."""

    path: Path
    experiment: str  # the run directory's parent, relative to the runs root
    preset: str
    method: str  # canonical registry name
    size: str
    seed: str
    metrics: list[dict[str, Any]]  # one dict per step, sorted by step (last line wins)
    torn: bool = False  # the last metrics line was cut off and dropped

    @property
    def run_id(self) -> str:
        return self.path.name

    @property
    def samples_path(self) -> Path:
        return self.path / "samples.jsonl"

    def series(self, key: str) -> tuple[list[int], list[float]]:
        """(steps, values) of one metric, over the steps that logged a number for it."""
        pairs = [(int(m["step"]), float(m[key])) for m in self.metrics if _is_number(m.get(key))]
        return [s for s, _ in pairs], [v for _, v in pairs]

    def samples(self) -> list[dict[str, Any]]:
        """The samples.jsonl lines that have step, traj_id, d and w (empty without the file)."""
        if not self.samples_path.is_file():
            return []
        return [
            s
            for s in read_jsonl(self.samples_path)
            if all(k in s for k in ("step", "traj_id", "d", "w"))
            and isinstance(s["d"], list)
            and isinstance(s["w"], list)
        ]


@dataclass
class RunStore:
    """Every training run under one runs directory."""

    root: Path
    runs: list[TrainRun] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.runs)

    def presets(self) -> list[str]:
        return sorted({r.preset for r in self.runs})

    def select(self, preset: str, size: str, method: str) -> list[TrainRun]:
        method = canonical_method(method)
        return [r for r in self.runs if (r.preset, r.size, r.method) == (preset, size, method)]

    def require(self) -> None:
        if self.runs:
            return
        if not self.root.is_dir():
            raise SodctlUsageError(
                f"runs directory '{self.root}' does not exist; expected {RUN_LAYOUT}"
            )
        extra = f" ({len(self.skipped)} unreadable run(s) skipped)" if self.skipped else ""
        raise SodctlUsageError(
            f"runs directory '{self.root}' holds no training runs{extra}; expected {RUN_LAYOUT}"
        )


def _dig(cfg: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        cfg = cfg.get(key) if isinstance(cfg, dict) else None  # type: ignore[assignment]
    return cfg


def _read_run(root: Path, path: Path) -> TrainRun | str:
    config_path = path / "config.yaml"
    if not config_path.is_file():
        return "no config.yaml beside metrics.jsonl (cannot tell its method and size)"
    try:
        cfg = yaml.safe_load(config_path.read_text()) or {}
    except (OSError, yaml.YAMLError) as e:
        return f"unreadable config.yaml ({type(e).__name__})"
    method, size = _dig(cfg, "method", "name"), _dig(cfg, "model", "size")
    if not method or not size:
        return "config.yaml lacks method.name or model.size"
    try:
        lines = read_jsonl(path / "metrics.jsonl")
    except (OSError, UnicodeDecodeError, ValueError) as e:
        return f"unreadable metrics.jsonl ({e})"
    text = (path / "metrics.jsonl").read_text()
    torn = len(lines) < sum(1 for line in text.splitlines() if line.strip())
    by_step = {int(m["step"]): m for m in lines if _is_number(m.get("step"))}
    return TrainRun(
        path=path,
        experiment=path.parent.relative_to(root).as_posix(),
        preset=str(cfg.get("preset") or ""),
        method=canonical_method(str(method)),
        size=str(size),
        seed=str(cfg.get("seed", "")),
        metrics=[by_step[s] for s in sorted(by_step)],
        torn=torn,
    )


def load_runs(runs_dir: str | Path) -> RunStore:
    """Read every training run under ``runs_dir`` (an empty store if there is none)."""
    root = Path(runs_dir)
    store = RunStore(root)
    if not root.is_dir():
        return store
    for directory, files in _walk(root):
        if "metrics.jsonl" not in files:
            continue
        run = _read_run(root, directory)
        if isinstance(run, str):
            store.skipped.append(f"{directory}: {run}")
        else:
            store.runs.append(run)
    return store
