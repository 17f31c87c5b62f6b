"""One markdown page with every table and figure that the results and runs allow.

The page opens with what was found (summaries per preset, runs, skipped files) and what is
missing (per table, the cells with no result and the rows with none at all; figures that
could not be drawn, and why), then the tables (markdown, the paper's numbers beside ours),
with seeds the paired differences per table (``sodctl.results.paired``), and the figures
(relative image links to ``<report stem>-figures/`` beside the page, each with its CSV).
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

from sodctl import __version__
from sodctl.errors import SodctlUsageError
from sodctl.results.paired import has_paired, paired_comparisons, render_paired_markdown
from sodctl.results.plots import PLOTS, plot_stores
from sodctl.results.schema import GRADERS
from sodctl.results.store import (
    RUN_LAYOUT,
    SUMMARY_LAYOUT,
    ResultStore,
    RunStore,
    load_results,
    load_runs,
)
from sodctl.results.tables import TableData, cost_table, eval_table, render_markdown

EVAL_TABLES: tuple[str, ...] = ("table1", "table2", "table5")
_MAX_LISTED = 20


def _counts(items: list[str]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in sorted(Counter(items).items()))


def _found(results: ResultStore, runs: RunStore | None, grader: str) -> list[str]:
    lines = ["## What was found", ""]
    per_preset = _counts([r.preset for r in results.records])
    lines.append(
        f"- Results `{results.root}`: {len(results)} evaluation summaries"
        + (f" (per preset: {per_preset})" if per_preset else "")
        + f"; grader shown: {grader}."
    )
    if runs is None:
        lines.append("- Runs: no runs directory given (Table 4 and the training figures need one).")
    else:
        per = _counts([f"{r.preset}/{r.size}/{r.method}" for r in runs.runs])
        lines.append(
            f"- Runs `{runs.root}`: {len(runs)} training runs" + (f" ({per})" if per else "") + "."
        )
        torn = [f"{r.experiment}/{r.run_id}" for r in runs.runs if r.torn]
        if torn:
            lines.append(f"- Runs with a torn last metrics line (dropped): {', '.join(torn)}.")
    return lines


def _missing_rows(table: TableData) -> list[str]:
    return [
        f"{row.group} {row.label}"
        for row in table.rows
        if all(cell.ours is None for cell in row.cells)
    ]


def _missing(
    tables: list[TableData],
    figure_gaps: dict[str, str],
    results: ResultStore,
    runs: RunStore | None,
) -> list[str]:
    lines = ["## What is missing", ""]
    for t in tables:
        text = f"- {t.title.split(':')[0]} (preset {t.preset}): {t.n_present} of {t.n_cells} cells"
        text += " have results"
        rows = _missing_rows(t)
        if rows:
            text += f"; rows with no result: {', '.join(rows)}"
        lines.append(text + ".")
    if not any(t.name == "table4" for t in tables):
        lines.append(f"- Table 4: no training runs (expected {RUN_LAYOUT}).")
    if not results.records:
        lines.append(f"- Tables 1, 2, 5: no evaluation summaries (expected {SUMMARY_LAYOUT}).")
    for kind in PLOTS:
        if kind in figure_gaps:
            lines.append(f"- Figure `{kind}`: not drawn ({figure_gaps[kind]}).")
    skipped = results.skipped + (runs.skipped if runs is not None else [])
    if skipped:
        lines.append(f"- Skipped {len(skipped)} unreadable file(s) or run(s):")
        lines += [f"  - {s}" for s in skipped[:_MAX_LISTED]]
        if len(skipped) > _MAX_LISTED:
            lines.append(f"  - ... and {len(skipped) - _MAX_LISTED} more")
    if len(lines) == 2:
        lines.append("- Nothing: every table cell has a result and every figure was drawn.")
    return lines


def _all_evaluations(results: ResultStore) -> list[str]:
    """Every summary, in or out of the paper's tables (external checkpoints, tiny benches)."""
    graders = [g for g in GRADERS if any(r.grader(g) for r in results.records)]
    head = ["preset", "model", "method", "seed", "bench", "k", "problems"]
    head += [f"avg@k {g} (± stderr)" for g in graders] + ["tool err %", "turns"]
    lines = ["## All evaluations", "", "| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    order = sorted(results.records, key=lambda r: (r.preset, r.model, r.method, r.seed, r.bench))
    for r in order:
        s = r.summary
        cells = [
            r.preset,
            r.model,
            r.method,
            r.seed or "—",
            r.bench,
            str(s.get("k", "—")),
            str(s.get("n_problems", "—")),
        ]
        for g in graders:
            m = r.grader(g)
            cells.append(f"{m['avg_at_k']:.2f} ± {m.get('stderr', float('nan')):.2f}" if m else "—")
        cells += [
            f"{s['tool_error_rate']:.1f}" if "tool_error_rate" in s else "—",
            f"{s['mean_turns']:.2f}" if "mean_turns" in s else "—",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def write_report(
    results_dir: str | Path,
    runs_dir: str | Path | None,
    out: str | Path,
    *,
    grader: str = "strict",
) -> Path:
    """Write the report page to ``out`` (figures under ``<out stem>-figures/``); returns ``out``.

    Refuses (``SodctlUsageError``) only when there is nothing at all: no evaluation
    summary under ``results_dir`` and no training run under ``runs_dir``.
    """
    if grader not in GRADERS:
        raise SodctlUsageError(f"unknown grader {grader!r}; choose one of: {', '.join(GRADERS)}")
    results = load_results(results_dir)
    runs = load_runs(runs_dir) if runs_dir is not None else None
    if not results.records and not (runs is not None and runs.runs):
        if runs is None:
            results.require()
        raise SodctlUsageError(
            f"nothing to report: results directory '{results_dir}' holds no evaluation summaries "
            f"(expected {SUMMARY_LAYOUT}) and runs directory '{runs_dir}' no training runs "
            f"(expected {RUN_LAYOUT})"
        )
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig_dir = out.parent / f"{out.stem}-figures"

    tables = [
        eval_table(name, results, preset, grader)
        for preset in results.presets()
        for name in EVAL_TABLES
    ]
    if runs is not None:
        tables += [cost_table(runs, preset) for preset in runs.presets()]
    figures, gaps = plot_stores("all", results, runs, fig_dir, grader)

    lines = [f"# sodctl report (sodctl {__version__})", ""]
    lines += _found(results, runs, grader) + [""]
    lines += _missing(tables, gaps, results, runs) + [""]
    if tables:
        lines += ["## Tables", ""]
        for t in tables:
            lines += [render_markdown(t)]
    paired = [
        comparisons
        for t in tables
        if has_paired(comparisons := paired_comparisons(results, t.name, t.preset, grader))
    ]
    if paired:
        lines += ["## Paired differences over seeds", ""]
        lines += [render_paired_markdown(comparisons) for comparisons in paired]
    if results.records:
        lines += _all_evaluations(results) + [""]
    if figures:
        lines += ["## Figures", ""]
        for png in figures:
            link = Path(os.path.relpath(png, out.parent)).as_posix()
            data = Path(os.path.relpath(png.with_suffix(".csv"), out.parent)).as_posix()
            lines += [f"![{png.stem}]({link})", "", f"`{png.stem}`: [data (CSV)]({data})", ""]
    out.write_text("\n".join(lines).rstrip() + "\n")
    return out
