"""Paired differences over seeds: each method against SOD on the Average, seed by seed.

For Tables 1, 2 and 5, ``paired_comparisons(store, table, preset, grader)`` pairs two rows
of one student size by seed: for every seed where both rows have an Average (the table's
Average, ``sodctl.results.tables.seed_averages``: the mean of the four paper benches), the
difference ``row − reference`` in points. The comparisons are every row against SOD (Table
2: the ablations; Table 5: naive OPD, OPD, SOD w/o GRPO), and where the table has an SFT row
(Table 1) also OPD − SFT and GRPO − SFT. Table 1's teacher row is not compared (another
model, in no student block).

Over the paired seeds: the mean difference, the sample std (ddof 1), and a 95% interval
``mean ± t · std / √n`` with Student's t quantile ``t(0.975, n − 1)`` (``scipy.stats.t`` when
scipy is installed, else ``T975``: the quantiles for df 1..30 and 1.96 beyond). An interval
"excludes 0" when it lies wholly on one side of zero. One paired seed gives its difference
and no interval.

``render_paired_markdown`` / ``render_paired_csv`` write them out; ``paired_outputs`` is what
``sodctl table``, ``sodctl reproduce`` and the report append, and it is empty unless some
comparison pairs at least two seeds, so single-seed tables read as before.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sodctl.results.paper import TEACHER_ROW
from sodctl.results.store import ResultStore, load_results
from sodctl.results.tables import (
    MISSING,
    TITLES,
    TableData,
    _csv_num,
    _diff,
    _table_rows,
    seed_averages,
)

PAIRED_TABLES: tuple[str, ...] = ("table1", "table2", "table5")
REFERENCE = "sod"
# Extra comparisons, made where the table has both rows: (row, reference).
SFT_PAIRS: tuple[tuple[str, str], ...] = (("opd-gated", "sft"), ("grpo", "sft"))
DECIMALS = 2
LEVEL = 0.95

# Student's t quantile t(0.975, df), df = 1..30 (beyond: the normal quantile).
T975: dict[int, float] = {
    1: 12.706205,
    2: 4.302653,
    3: 3.182446,
    4: 2.776445,
    5: 2.570582,
    6: 2.446912,
    7: 2.364624,
    8: 2.306004,
    9: 2.262157,
    10: 2.228139,
    11: 2.200985,
    12: 2.178813,
    13: 2.160369,
    14: 2.144787,
    15: 2.131450,
    16: 2.119905,
    17: 2.109816,
    18: 2.100922,
    19: 2.093024,
    20: 2.085963,
    21: 2.079614,
    22: 2.073873,
    23: 2.068658,
    24: 2.063899,
    25: 2.059539,
    26: 2.055529,
    27: 2.051831,
    28: 2.048407,
    29: 2.045230,
    30: 2.042272,
}
Z975 = 1.96


def _scipy_t():
    try:
        from scipy.stats import t  # type: ignore[import-untyped]
    except ImportError:
        return None
    return t


def t_source() -> str:
    """Where the t quantiles come from, in words."""
    if _scipy_t() is not None:
        return "scipy.stats.t"
    return "a built-in table for df 1–30, 1.96 beyond"


def t_quantile(df: int) -> float:
    """Student's t quantile t(0.975, df) for df ≥ 1."""
    if df < 1:
        raise ValueError(f"t quantile needs df >= 1, got {df}")
    t = _scipy_t()
    if t is not None:
        return float(t.ppf(0.5 + LEVEL / 2, df))
    return T975.get(df, Z975)


@dataclass(frozen=True)
class PairedComparison:
    """``row − reference`` on the Average, seed by seed, for one student size of one table."""

    table: str
    preset: str
    grader: str
    group: str  # the Params column: "1.7B"
    model: str
    row: str  # TABLE_ROWS name of the row
    reference: str  # TABLE_ROWS name of the row subtracted
    label: str  # "OPD − SOD (Ours)"
    seeds: tuple[str, ...]  # the paired seeds (both rows have an Average)
    diffs: tuple[float, ...]  # row − reference per paired seed, in points
    left_out: tuple[str, ...] = ()  # seeds where only one of the two has an Average

    @property
    def n(self) -> int:
        return len(self.diffs)

    @property
    def mean(self) -> float | None:
        return math.fsum(self.diffs) / self.n if self.diffs else None

    @property
    def std(self) -> float | None:
        """Sample std (ddof 1) of the differences; None under two seeds."""
        mean = self.mean
        if self.n < 2 or mean is None:
            return None
        return math.sqrt(math.fsum((d - mean) ** 2 for d in self.diffs) / (self.n - 1))

    @property
    def t(self) -> float | None:
        return t_quantile(self.n - 1) if self.n >= 2 else None

    @property
    def ci(self) -> tuple[float, float] | None:
        """The 95% interval mean ± t · std / √n (None under two seeds)."""
        mean, std, t = self.mean, self.std, self.t
        if mean is None or std is None or t is None:
            return None
        half = t * std / math.sqrt(self.n)
        return (mean - half, mean + half)

    @property
    def excludes_zero(self) -> bool | None:
        ci = self.ci
        if ci is None:
            return None
        return ci[0] > 0 or ci[1] < 0


def _seed_key(seed: str) -> tuple[int, int, str]:
    return (0, int(seed), "") if seed.isdigit() else (1, 0, seed)


def _pairs(name: str) -> list[tuple[str, str, list[tuple[str, str, str]]]]:
    """Per student size of table ``name``: (group, model, [(row, reference, label)])."""
    out = []
    spec = [r for r in _table_rows(name) if r[2] != TEACHER_ROW[0]]
    for model in dict.fromkeys(r[3] for r in spec):
        rows = {row: (group, label) for group, label, row, m in spec if m == model}
        group = next(iter(rows.values()))[0]
        wanted = [(row, REFERENCE) for row in rows if row != REFERENCE and REFERENCE in rows]
        wanted += [(a, b) for a, b in SFT_PAIRS if a in rows and b in rows]
        out.append((group, model, [(a, b, f"{rows[a][1]} − {rows[b][1]}") for a, b in wanted]))
    return out


def paired_comparisons(
    store: ResultStore, table: str, preset: str, grader: str = "strict"
) -> list[PairedComparison]:
    """Every comparison of ``table`` (Table 1, 2 or 5), including those with no paired seed."""
    if table not in PAIRED_TABLES:
        return []
    out: list[PairedComparison] = []
    for group, model, wanted in _pairs(table):
        names = dict.fromkeys(name for pair in wanted for name in pair[:2])
        averages = {row: seed_averages(store, preset, model, row, grader) for row in names}
        for row, reference, label in wanted:
            a, b = averages[row], averages[reference]
            seeds = sorted(set(a) & set(b), key=_seed_key)
            left_out = sorted(set(a) ^ set(b), key=_seed_key)
            out.append(
                PairedComparison(
                    table=table,
                    preset=preset,
                    grader=grader,
                    group=group,
                    model=model,
                    row=row,
                    reference=reference,
                    label=label,
                    seeds=tuple(seeds),
                    diffs=tuple(a[s] - b[s] for s in seeds),
                    left_out=tuple(left_out),
                )
            )
    return out


def has_paired(comparisons: Sequence[PairedComparison]) -> bool:
    """Does any comparison pair two seeds or more (what makes the section worth showing)?"""
    return any(c.n >= 2 for c in comparisons)


# --- rendering --------------------------------------------------------------------------------


def _signed(x: float | None) -> str:
    return _diff(x, DECIMALS)


def _interval(c: PairedComparison) -> str:
    ci = c.ci
    if ci is None:
        return f"n={c.n}: no interval"
    return f"[{_signed(ci[0])}, {_signed(ci[1])}]"


def _excludes(c: PairedComparison) -> str:
    return {True: "yes", False: "no", None: MISSING}[c.excludes_zero]


def _where(c: PairedComparison) -> str:
    return f"{c.group} {c.label}"


def render_paired_markdown(comparisons: Sequence[PairedComparison]) -> str:
    """The comparisons of one table as a markdown section (title, table, notes)."""
    shown = [c for c in comparisons if c.n >= 1]
    first = comparisons[0] if comparisons else None
    name = TITLES[first.table].split(":")[0] if first else "Paired differences"
    where = f" (preset {first.preset}, grader {first.grader})" if first else ""
    lines = [
        f"**{name}: paired differences over seeds, Average (points), row − reference**{where}",
        "",
        "| Params | Comparison | n | Seeds | Per seed | Mean | Std | 95% CI | Excludes 0 |",
        "| --- | --- | ---: | --- | --- | ---: | ---: | --- | --- |",
    ]
    previous = None
    for c in shown:
        group = c.group if c.group != previous else ""
        previous = c.group
        std = c.std
        cells = [
            group,
            c.label,
            str(c.n),
            ", ".join(c.seeds),
            ", ".join(_signed(d) for d in c.diffs),
            _signed(c.mean),
            MISSING if std is None else f"{std:.{DECIMALS}f}",
            _interval(c),
            _excludes(c),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    notes = [
        "Per seed: the row's Average minus the reference row's Average (the table's Average, "
        "the mean of AIME24, AIME25, GPQA and LCB), in points, for each seed where both rows "
        "have all four benches; n counts those seeds.",
        "Mean, Std: the mean and sample std (ddof 1) of the per-seed differences. 95% CI: "
        f"mean ± t(0.975, n−1) · Std / √n, Student's t from {t_source()}; Excludes 0: 'yes' "
        "when the whole interval lies on one side of zero.",
    ]
    if any(c.n == 1 for c in comparisons):
        notes.append("n=1: one paired seed, its difference only (no spread, no interval).")
    left = [c for c in comparisons if c.left_out and c.n >= 1]
    if left:
        notes.append(
            "Left out of a comparison (only one of its two rows has an Average for that seed): "
            + "; ".join(f"{_where(c)}: seed {', '.join(c.left_out)}" for c in left)
            + "."
        )
    unpaired = [c for c in comparisons if c.n == 0]
    if unpaired:
        notes.append(
            "Not compared (no seed where both rows have an Average): "
            + "; ".join(_where(c) for c in unpaired)
            + "."
        )
    lines += ["", *(f"- {note}" for note in notes)]
    return "\n".join(lines) + "\n"


CSV_HEADER: tuple[str, ...] = (
    "table",
    "preset",
    "grader",
    "params",
    "comparison",
    "row",
    "reference",
    "n",
    "seeds",
    "diffs",
    "mean",
    "std",
    "t",
    "ci_low",
    "ci_high",
    "excludes_zero",
    "left_out",
)


def render_paired_csv(comparisons: Sequence[PairedComparison]) -> str:
    """One line per comparison; seeds, diffs and left-out seeds are ';'-separated."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for c in comparisons:
        ci = c.ci
        writer.writerow(
            [
                c.table,
                c.preset,
                c.grader,
                c.group,
                c.label,
                c.row,
                c.reference,
                str(c.n),
                ";".join(c.seeds),
                ";".join(_csv_num(d) for d in c.diffs),
                _csv_num(c.mean),
                _csv_num(c.std),
                _csv_num(c.t),
                _csv_num(ci[0] if ci else None),
                _csv_num(ci[1] if ci else None),
                {True: "yes", False: "no", None: ""}[c.excludes_zero],
                ";".join(c.left_out),
            ]
        )
    return buf.getvalue()


def paired_outputs(results: ResultStore | str | Path, table: TableData) -> tuple[str, str | None]:
    """What to append to ``table``'s markdown ("" or a blank line and the section) and the
    paired CSV (None), when some comparison pairs two seeds or more."""
    if table.name not in PAIRED_TABLES or table.grader is None:
        return "", None
    store = results if isinstance(results, ResultStore) else load_results(results)
    comparisons = paired_comparisons(store, table.name, table.preset, table.grader)
    if not has_paired(comparisons):
        return "", None
    return "\n" + render_paired_markdown(comparisons), render_paired_csv(comparisons)
