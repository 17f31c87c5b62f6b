"""The paper's tables from our results, beside the paper's numbers: markdown, LaTeX, CSV.

``build_table(name, results_dir, runs_dir, grader)`` collects a ``TableData``: the rows of
``sodctl.methods.TABLE_ROWS`` (Table 1 adds the teacher row and one block per student
size; Table 4 has GRPO, OPD and SOD per size), and per column three things: our number
with its "±", the paper's number with the "±" it prints, and the difference (ours − paper).
``render(table, fmt)`` writes it out.

* Tables 1, 2 and 5 read evaluation summaries: avg@k in percent under one grader, ``±`` the
  standard error over problems of a single run, or the sample std across seeds (``n`` shown).
  Columns are AIME24, AIME25, GPQA, LCB and Average (the mean of those four, only when all
  four exist), then any other bench the rows were evaluated on (the tiny world's
  ``tiny-arith``), which never enters the Average.
* Table 4 reads training runs (``perf/step_time_s``, ``perf/peak_mem_gb``), mapped to rows
  by their resolved ``config.yaml`` (``preset``, ``method.name``, ``model.size``).

A cell with no result is missing ("—" in markdown and LaTeX, empty in CSV): never zero,
never invented.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sodctl.errors import SodctlUsageError
from sodctl.methods import TABLE_ROWS
from sodctl.results.paper import (
    BENCH_TITLES,
    PAPER_BENCHES,
    TABLE4_ROWS,
    TABLE_SIZES,
    TEACHER_ROW,
    TEACHER_SIZE,
    PaperValue,
    paper_value,
)
from sodctl.results.schema import GRADERS
from sodctl.results.store import (
    ResultStore,
    RunStore,
    SummaryRecord,
    TrainRun,
    Value,
    aggregate,
    load_results,
    load_runs,
)

TABLES: tuple[str, ...] = ("table1", "table2", "table4", "table5")
FORMATS: tuple[str, ...] = ("markdown", "latex", "csv")
MISSING = "—"

TITLES: dict[str, str] = {
    "table1": "Table 1: avg@k (%) of the 4B teacher and the distilled Qwen3 students",
    "table2": "Table 2: ablations of SOD on the 1.7B student, avg@k (%)",
    "table4": "Table 4: training cost per method (s/step, peak memory, total time)",
    "table5": "Table 5: naive OPD beside the distillation variants, 1.7B student, avg@k (%)",
}
# Distillation rows of Tables 1, 2 and 5 use the 4B teacher; summaries from other teacher
# sizes (Figure 3's 14B) are left out of them.
TABLE_TEACHER = "4b"
# The teacher row reads this model label, with the first of these methods that has results.
TEACHER_METHODS: tuple[str, ...] = ("teacher", "grpo")


@dataclass(frozen=True)
class Column:
    key: str  # a bench, "average", or a Table 4 quantity
    title: str
    decimals: int = 2


@dataclass(frozen=True)
class Cell:
    ours: Value | None
    paper: PaperValue | None

    @property
    def diff(self) -> float | None:
        """ours − paper, when both exist."""
        if self.ours is None or self.paper is None:
            return None
        return self.ours.mean - self.paper.value


@dataclass(frozen=True)
class Row:
    group: str  # the Params column: "4B", "0.6B", "1.7B"
    label: str  # the paper's row label
    name: str  # the TABLE_ROWS name (or "teacher")
    model: str  # model size label
    cells: tuple[Cell, ...]


@dataclass
class TableData:
    name: str
    title: str
    source: str  # the directory the numbers came from
    preset: str
    grader: str | None  # None for Table 4
    columns: tuple[Column, ...]
    rows: list[Row]
    notes: list[str]

    def cell(self, group: str, name: str, column: str) -> Cell:
        """The cell of row (group, name) in column ``column`` (KeyError if there is none)."""
        index = [c.key for c in self.columns].index(column)
        for row in self.rows:
            if (row.group, row.name) == (group, name):
                return row.cells[index]
        raise KeyError(f"no row {name!r} in group {group!r}")

    @property
    def n_present(self) -> int:
        return sum(cell.ours is not None for row in self.rows for cell in row.cells)

    @property
    def n_cells(self) -> int:
        return len(self.rows) * len(self.columns)


def _group(size: str) -> str:
    return size.upper()


def choose_preset(found: Sequence[str], preset: str | None, where: str) -> str:
    """The preset a table is built for: the one asked for, or the only one found."""
    if preset is not None:
        if preset not in found:
            raise SodctlUsageError(
                f"{where} holds no results for preset '{preset}' (found: {', '.join(found)})"
            )
        return preset
    if len(found) == 1:
        return found[0]
    raise SodctlUsageError(
        f"{where} holds results of several presets ({', '.join(found)}); choose one with --preset"
    )


def build_table(
    name: str,
    results_dir: str | Path,
    runs_dir: str | Path | None = None,
    grader: str = "strict",
    *,
    preset: str | None = None,
) -> TableData:
    """Collect one paper table from a results directory (Table 4: from a runs directory)."""
    if name not in TABLES:
        raise SodctlUsageError(f"unknown table {name!r}; choose one of: {', '.join(TABLES)}")
    if name == "table4":
        if runs_dir is None:
            raise SodctlUsageError(
                "table4 is built from training runs: name the runs directory (--runs DIR)"
            )
        runs = load_runs(runs_dir)
        runs.require()
        chosen = choose_preset(runs.presets(), preset, f"runs directory '{runs_dir}'")
        return cost_table(runs, chosen)
    if grader not in GRADERS:
        raise SodctlUsageError(f"unknown grader {grader!r}; choose one of: {', '.join(GRADERS)}")
    store = load_results(results_dir)
    store.require()
    chosen = choose_preset(store.presets(), preset, f"results directory '{results_dir}'")
    return eval_table(name, store, chosen, grader)


# --- Tables 1, 2, 5: evaluation ---------------------------------------------------------------


def _table_rows(name: str) -> list[tuple[str, str, str, str]]:
    """(group, label, row name, model) per row; the method to read is ``row name``."""
    rows: list[tuple[str, str, str, str]] = []
    if name == "table1":
        rows.append((_group(TEACHER_SIZE), TEACHER_ROW[1], TEACHER_ROW[0], TEACHER_SIZE))
    for size in TABLE_SIZES[name]:
        rows += [(_group(size), label, row, size) for row, label in TABLE_ROWS[name]]
    return rows


def _teacher_method(store: ResultStore, preset: str) -> str:
    for method in TEACHER_METHODS:
        if any(
            (r.preset, r.model, r.method) == (preset, TEACHER_SIZE, method) for r in store.records
        ):
            return method
    return TEACHER_METHODS[0]


def seed_averages(
    store: ResultStore, preset: str, model: str, method: str, grader: str
) -> dict[str, float]:
    """The Average of each seed that has all four paper benches: their mean (seeds sorted)."""
    per_bench = [
        store.seed_values(preset, model, method, b, grader, TABLE_TEACHER) for b in PAPER_BENCHES
    ]
    complete = set.intersection(*(set(d) for d in per_bench))
    return {s: math.fsum(d[s] for d in per_bench) / len(per_bench) for s in sorted(complete)}


def combined_stderr(errs: Sequence[float]) -> float:
    """The standard error of a mean of independent estimates: sqrt of the summed squares / n."""
    return math.sqrt(math.fsum(e * e for e in errs)) / len(errs)


def _average(
    store: ResultStore, preset: str, model: str, method: str, grader: str, bench_cells: list[Cell]
) -> Value | None:
    """Mean of the four paper benches, only when all four exist.

    Its "±": for single runs the four standard errors combined as for a mean of independent
    estimates (sqrt of the summed squares / 4); with seeds, the sample std of the per-seed
    averages over the seeds that have all four benches (``n`` of them).
    """
    values = [c.ours for c in bench_cells]
    if any(v is None for v in values):
        return None
    present = [v for v in values if v is not None]
    mean = math.fsum(v.mean for v in present) / len(present)
    if all(v.n == 1 for v in present):
        errs = [v.err for v in present]
        if all(e is not None for e in errs):
            return Value(mean, combined_stderr([e for e in errs if e is not None]), 1, "stderr")
        return Value(mean, None, 1, "none")
    per_seed = list(seed_averages(store, preset, model, method, grader).values())
    spread = aggregate(per_seed)
    if spread is None or spread.n < 2:
        return Value(mean, None, max(v.n for v in present), "none")
    return Value(mean, spread.err, spread.n, "seed-std")


def eval_table(name: str, store: ResultStore, preset: str, grader: str) -> TableData:
    """Table 1, 2 or 5 of one preset from a loaded results store."""
    spec = _table_rows(name)
    teacher_method = _teacher_method(store, preset)

    def method_of(row: str) -> str:
        return teacher_method if row == TEACHER_ROW[0] else row

    extra = sorted(
        {
            b
            for _, _, row, model in spec
            for b in store.benches_of(preset, model, method_of(row), TABLE_TEACHER)
        }
        - set(PAPER_BENCHES)
    )
    columns = (
        *(Column(b, BENCH_TITLES[b]) for b in PAPER_BENCHES),
        Column("average", BENCH_TITLES["average"]),
        *(Column(b, b) for b in extra),
    )
    rows: list[Row] = []
    ks: set[int | None] = set()
    for group, label, row, model in spec:
        method = method_of(row)
        for bench in (*PAPER_BENCHES, *extra):
            ks |= {
                _k(r)
                for r in store.select(preset, model, method, bench, TABLE_TEACHER)
                if r.grader(grader)
            }
        bench_cells = [
            Cell(
                store.value(preset, model, method, b, grader, TABLE_TEACHER),
                paper_value(name, model, row, b),
            )
            for b in PAPER_BENCHES
        ]
        average = Cell(
            _average(store, preset, model, method, grader, bench_cells),
            paper_value(name, model, row, "average"),
        )
        extra_cells = [
            Cell(store.value(preset, model, method, b, grader, TABLE_TEACHER), None) for b in extra
        ]
        rows.append(Row(group, label, row, model, (*bench_cells, average, *extra_cells)))
    table = TableData(name, TITLES[name], str(store.root), preset, grader, columns, rows, notes=[])
    table.notes = _eval_notes(table, teacher_method, extra, ks)
    return table


def _k(record: SummaryRecord) -> int | None:
    k = record.summary.get("k")
    return k if isinstance(k, int) and not isinstance(k, bool) else None


def _eval_notes(
    table: TableData, teacher_method: str, extra: list[str], ks: set[int | None]
) -> list[str]:
    known = sorted(k for k in ks if k is not None)
    k = "/".join(str(k) for k in known) if known else "k"
    notes = [
        f"Ours: avg@{k} in percent under the {table.grader} grader, preset {table.preset}, "
        f"from {table.source} (the paper: avg@32, strict grader).",
        "Ours ± is the standard error over problems of one run (the summary's stderr); "
        "'(n=K)' marks a mean ± sample std across K seeds.",
        "Paper ± is the value the paper prints after each number; the paper does not define it, "
        "so it is shown as printed and not compared with ours.",
        "Δ = ours − paper, in points.",
        "Average: the mean of AIME24, AIME25, GPQA and LCB, only when all four are present; its ± "
        "combines the four standard errors (root of the summed squares, divided by 4), or with "
        "seeds is the std of the per-seed averages.",
        f"{MISSING}: no result found (missing, never filled in).",
        f"Distillation rows use the {TABLE_TEACHER.upper()} teacher: summaries whose "
        "config.teacher.size names another size are left out (see the teacher-scale figure).",
    ]
    if table.name == "table1":
        notes.append(
            f"The teacher row reads model '{TEACHER_SIZE}', method '{teacher_method}' "
            f"(a summary labelled 'teacher' is preferred, else 'grpo')."
        )
    if table.name == "table2":
        notes.append(
            "(1.1) is the OPD run and (2.2) the GRPO run of Table 1; the paper prints other "
            "numbers for (1.1) than for Table 1's OPD, and they are compared as printed."
        )
    if extra:
        notes.append(f"{', '.join(extra)}: not a paper benchmark; not part of the Average.")
    return notes


# --- Table 4: training cost -------------------------------------------------------------------

COST_COLUMNS: tuple[Column, ...] = (
    Column("step_time_s", "Time/step (s)", 1),
    Column("peak_mem_gb", "Peak memory (GB)", 1),
    Column("total_h", "Total time (h)", 2),
    Column("steps", "Steps", 0),
)


def run_cost(run: TrainRun) -> dict[str, float]:
    """One run's Table 4 quantities (only those its metrics allow)."""
    out: dict[str, float] = {"steps": float(len(run.metrics))}
    _, times = run.series("perf/step_time_s")
    if times:
        out["step_time_s"] = math.fsum(times) / len(times)
        out["total_h"] = math.fsum(times) / 3600.0
    _, mem = run.series("perf/peak_mem_gb")
    if mem:
        out["peak_mem_gb"] = max(mem)
    return out


def cost_table(runs: RunStore, preset: str) -> TableData:
    """Table 4 of one preset from loaded training runs."""
    rows: list[Row] = []
    for size in TABLE_SIZES["table4"]:
        for method, label in TABLE4_ROWS:
            costs = [run_cost(r) for r in runs.select(preset, size, method) if r.metrics]
            cells = tuple(
                Cell(
                    aggregate(c[col.key] for c in costs if col.key in c),
                    paper_value("table4", size, method, col.key),
                )
                for col in COST_COLUMNS
            )
            rows.append(Row(_group(size), label, method, size, cells))
    notes = [
        f"Ours: training runs of preset {preset} under {runs.root}; per run, the mean of "
        "perf/step_time_s, the largest perf/peak_mem_gb, the sum of perf/step_time_s in hours, "
        "and the number of logged steps.",
        "'(n=K)': mean ± sample std across K runs (seeds) of the row; one run has no ±.",
        "Paper: 8 × H20 GPUs, 120 steps (0.6B) or 150 steps (1.7B); Δ = ours − paper.",
        f"{MISSING}: no run, or the runs logged no such metric (missing, never filled in).",
    ]
    return TableData(
        "table4", TITLES["table4"], str(runs.root), preset, None, COST_COLUMNS, rows, notes
    )


# --- rendering --------------------------------------------------------------------------------


def _num(x: float, decimals: int) -> str:
    return f"{x:.{decimals}f}"


def _ours(value: Value | None, decimals: int) -> str:
    if value is None:
        return MISSING
    text = _num(value.mean, decimals)
    if value.err is not None:
        text += f" ± {_num(value.err, decimals)}"
    if value.n > 1:
        text += f" (n={value.n})"
    return text


def _paper(value: PaperValue | None, decimals: int) -> str:
    if value is None:
        return MISSING
    text = _num(value.value, decimals)
    return text + (f" ± {_num(value.pm, decimals)}" if value.pm is not None else "")


def _diff(diff: float | None, decimals: int) -> str:
    if diff is None:
        return MISSING
    rounded = round(diff, decimals) + 0.0  # no "-0.00"
    return f"{rounded:+.{decimals}f}"


def _cells(table: TableData, row: Row) -> list[str]:
    out: list[str] = []
    for col, cell in zip(table.columns, row.cells):
        out += [
            _ours(cell.ours, col.decimals),
            _paper(cell.paper, col.decimals),
            _diff(cell.diff, col.decimals),
        ]
    return out


def _subtitle(table: TableData) -> str:
    grader = f", grader {table.grader}" if table.grader else ""
    return f"preset {table.preset}{grader}"


def render_markdown(table: TableData) -> str:
    header = ["Params", "Method"]
    for col in table.columns:
        header += [f"{col.title} (ours)", "paper", "Δ"]
    lines = [
        f"**{table.title}** ({_subtitle(table)})",
        "",
        "| " + " | ".join(header) + " |",
        "| --- | --- |" + " ---: |" * (3 * len(table.columns)),
    ]
    previous = None
    for row in table.rows:
        group = row.group if row.group != previous else ""
        previous = row.group
        lines.append("| " + " | ".join([group, row.label, *_cells(table, row)]) + " |")
    lines += ["", *(f"- {note}" for note in table.notes)]
    return "\n".join(lines) + "\n"


_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "±": r"$\pm$",
    "Δ": r"$\Delta$",
    "−": r"$-$",
    "—": r"--",
    "×": r"$\times$",
}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)


def render_latex(table: TableData) -> str:
    n = len(table.columns)
    spec = "ll" + "rrr" * n
    top = ["Params", "Method"] + [
        rf"\multicolumn{{3}}{{c}}{{{latex_escape(c.title)}}}" for c in table.columns
    ]
    rules = " ".join(rf"\cmidrule(lr){{{3 + 3 * i}-{5 + 3 * i}}}" for i in range(n))
    sub = ["", ""] + ["ours", "paper", r"$\Delta$"] * n
    lines = [
        r"\begin{table}[t]",
        r"\centering",
        rf"\caption{{{latex_escape(table.title)} ({latex_escape(_subtitle(table))})}}",
        rf"\begin{{tabular}}{{{spec}}}",
        r"\toprule",
        " & ".join(top) + r" \\",
        rules,
        " & ".join(sub) + r" \\",
    ]
    previous = None
    for row in table.rows:
        if row.group != previous:
            lines.append(r"\midrule")
        group = row.group if row.group != previous else ""
        previous = row.group
        cells = [latex_escape(x) for x in (group, row.label, *_cells(table, row))]
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\par\smallskip", r"{\footnotesize"]
    lines += [latex_escape(note) + r"\\" for note in table.notes]
    lines += ["}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def _csv_num(x: float | None) -> str:
    return "" if x is None else repr(round(x, 4))


def render_csv(table: TableData) -> str:
    """One line per row; per column: ours, its ±, n, the paper's value and ±, the difference."""
    header = ["params", "method", "row"]
    for col in table.columns:
        k = col.key
        header += [k, f"{k}_err", f"{k}_n", f"{k}_paper", f"{k}_paper_pm", f"{k}_diff"]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    for row in table.rows:
        line = [row.group, row.label, row.name]
        for cell in row.cells:
            ours, paper = cell.ours, cell.paper
            line += [
                _csv_num(ours.mean if ours else None),
                _csv_num(ours.err if ours else None),
                str(ours.n) if ours else "",
                _csv_num(paper.value if paper else None),
                _csv_num(paper.pm if paper else None),
                _csv_num(cell.diff),
            ]
        writer.writerow(line)
    return buf.getvalue()


_RENDERERS = {"markdown": render_markdown, "latex": render_latex, "csv": render_csv}


def render(table: TableData, fmt: str) -> str:
    """The table as markdown, LaTeX or CSV text."""
    if fmt not in _RENDERERS:
        raise SodctlUsageError(f"unknown format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    return _RENDERERS[fmt](table)
