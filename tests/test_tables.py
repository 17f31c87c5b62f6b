"""Tables 1, 2, 4, 5 from a fixture results/runs directory, the paper's numbers, and the CLI."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from results_fixtures import (
    COST,
    GRPO_SEEDS,
    N_STEPS,
    SOD,
    bench_summary,
    build_fixture,
    expected_run_cost,
    std,
    write_summary,
)

from sodctl.cli import main
from sodctl.errors import SodctlUsageError
from sodctl.methods import TABLE_ROWS
from sodctl.results.paper import PAPER, PAPER_BENCHES, paper_value
from sodctl.results.schema import BenchSummary
from sodctl.results.store import load_results, load_runs, read_jsonl
from sodctl.results.tables import FORMATS, TABLES, build_table, render

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def dirs(tmp_path_factory) -> tuple[Path, Path]:
    return build_fixture(tmp_path_factory.mktemp("fixture"))


@pytest.fixture(scope="module")
def results(dirs) -> Path:
    return dirs[0]


@pytest.fixture(scope="module")
def runs(dirs) -> Path:
    return dirs[1]


def _csv_rows(text: str) -> dict[str, dict[str, str]]:
    return {f"{r['params']}/{r['row']}": r for r in csv.DictReader(io.StringIO(text))}


# --- the paper's numbers ------------------------------------------------------------------------

# REFERENCE.md §10, Table 1, verbatim: AIME24, AIME25, GPQA, LCB, Average.
REFERENCE_TABLE1 = """
4b teacher 67.60 60.42 55.19 63.13 61.59
0.6b vanilla 7.71 12.81 13.24 14.89 12.16
0.6b sft 5.67 5.42 15.20 9.61 8.97
0.6b grpo 4.06 4.90 20.38 15.95 11.32
0.6b opd-gated 16.82 22.95 17.76 22.65 20.04
0.6b opsd-gt 12.63 17.04 17.32 16.73 15.93
0.6b opsd-hint 9.77 14.12 15.98 12.65 13.13
0.6b sod 20.84 26.13 22.19 27.72 24.22
1.7b vanilla 9.90 8.96 26.80 22.73 17.10
1.7b sft 26.77 22.40 29.85 24.63 25.91
1.7b grpo 25.63 21.67 33.55 20.70 25.39
1.7b opd-gated 43.86 37.04 31.73 32.45 36.27
1.7b opsd-gt 33.85 24.69 35.02 22.73 29.07
1.7b opsd-hint 34.42 21.43 33.46 23.12 28.11
1.7b sod 50.83 41.72 38.72 40.63 42.98
"""


def test_paper_table1_matches_reference_every_row():
    lines = [line.split() for line in REFERENCE_TABLE1.strip().splitlines()]
    assert len(lines) == 1 + 2 * len(TABLE_ROWS["table1"])
    for size, row, *numbers in lines:
        for column, number in zip((*PAPER_BENCHES, "average"), numbers):
            assert paper_value("table1", size, row, column).value == float(number), (size, row)


@pytest.mark.parametrize(
    ("key", "value", "pm"),
    [
        (("table1", "4b", "teacher", "aime24"), 67.60, 1.34),
        (("table1", "4b", "teacher", "lcb"), 63.13, 0.93),
        (("table1", "0.6b", "vanilla", "gpqa"), 13.24, 0.24),
        (("table1", "0.6b", "sod", "aime25"), 26.13, 1.07),
        (("table1", "1.7b", "sod", "aime24"), 50.83, 1.15),
        (("table1", "1.7b", "opsd-hint", "lcb"), 23.12, 0.52),
        (("table2", "1.7b", "uniform-weighting", "aime24"), 41.68, 0.95),
        (("table2", "1.7b", "mask-after-wrong", "gpqa"), 26.56, 0.67),
        (("table2", "1.7b", "no-clipping", "average"), 38.10, None),
        (("table2", "1.7b", "no-stepwise-opd", "lcb"), 20.70, 0.87),
        (("table5", "1.7b", "naive-opd", "lcb"), 29.81, 0.74),
        (("table5", "1.7b", "no-grpo", "average"), 40.78, None),
        (("table4", "0.6b", "opd-gated", "step_time_s"), 1090.5, None),
        (("table4", "1.7b", "sod", "peak_mem_gb"), 88.7, None),
        (("table4", "1.7b", "grpo", "total_h"), 32.7, None),
        (("table4", "0.6b", "sod", "steps"), 120, None),
    ],
)
def test_paper_spot_values_and_printed_pm(key, value, pm):
    got = PAPER[key]
    assert (got.value, got.pm) == (value, pm)


def test_paper_covers_every_table_row_and_averages_are_consistent():
    for table in ("table1", "table2", "table5"):
        sizes = ("0.6b", "1.7b") if table == "table1" else ("1.7b",)
        for size in sizes:
            for row, _ in TABLE_ROWS[table]:
                benches = [paper_value(table, size, row, b) for b in PAPER_BENCHES]
                average = paper_value(table, size, row, "average")
                assert all(b is not None and b.pm is not None for b in benches), (table, row)
                assert average is not None and average.pm is None
                assert abs(sum(b.value for b in benches) / 4 - average.value) < 0.006


# --- the store ---------------------------------------------------------------------------------------


def test_fixture_summaries_are_schema_valid():
    summary = bench_summary("aime24", 1.0)
    assert set(summary) == set(BenchSummary.__annotations__)


def test_store_indexes_summaries_and_skips_what_is_not_one(results):
    store = load_results(results)
    assert len(store) == 8 + 12 + 1 + 1 + 1 + 2
    assert store.presets() == ["paper"]
    assert any("notes.json" in s and "not a BenchSummary" in s for s in store.skipped)
    # the alias label lands in the canonical method
    assert {r.method for r in store.select("paper", "1.7b", "opd", "aime24")} == {"opd"}
    assert (
        store.select("paper", "1.7b", "uniform-weighting", "aime24")[0].summary["label"]["method"]
        == "uniform-weighting"
    )


def test_seed_aggregation_is_mean_and_sample_std(results):
    store = load_results(results)
    value = store.value("paper", "1.7b", "grpo", "aime24", "strict")
    assert value.n == 3 and value.kind == "seed-std"
    assert value.mean == pytest.approx(32.0)
    assert value.err == pytest.approx(std(GRPO_SEEDS["aime24"]))
    single = store.value("paper", "1.7b", "sod", "aime24", "strict", teacher="4b")
    assert (single.mean, single.err, single.n, single.kind) == (50.0, 1.0, 1, "stderr")


def test_read_jsonl_drops_a_torn_last_line_only(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text('{"step": 0}\n{"step": 1}\n{"step": 2, "x": ')
    assert read_jsonl(path) == [{"step": 0}, {"step": 1}]
    path.write_text('{"step": 0}\nnot json\n{"step": 2}\n')
    with pytest.raises(ValueError, match=":2: not a JSON line"):
        read_jsonl(path)


def test_runs_are_placed_by_config_and_broken_ones_skipped(runs):
    store = load_runs(runs)
    assert sorted((r.experiment, r.run_id) for r in store.runs) == [
        ("table1/grpo-0.6b", "run-1"),
        ("table1/opd-gated-1.7b", "run-1"),
        ("table1/sod-1.7b", "run-1"),
        ("table1/sod-1.7b", "run-2"),
    ]
    grpo = store.select("paper", "0.6b", "grpo")[0]
    assert grpo.torn and len(grpo.metrics) == 10
    assert any("broken" in s and "config.yaml" in s for s in store.skipped)


# --- Tables 1, 2, 5 -----------------------------------------------------------------------------------

TABLE5_MARKDOWN = """\
**Table 5: naive OPD beside the distillation variants, 1.7B student, avg@k (%)** (preset paper, grader strict)

| Params | Method | AIME24 (ours) | paper | Δ | AIME25 (ours) | paper | Δ | GPQA (ours) | paper | Δ | LCB (ours) | paper | Δ | Average (ours) | paper | Δ |
| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
| 1.7B | naive OPD | — | 40.54 ± 1.05 | — | — | 35.83 ± 1.11 | — | — | 28.96 ± 0.58 | — | — | 29.81 ± 0.74 | — | — | 33.79 | — |
|  | OPD | — | 43.86 ± 1.23 | — | — | 37.04 ± 1.31 | — | — | 31.73 ± 0.55 | — | — | 32.45 ± 0.93 | — | — | 36.27 | — |
|  | SOD (w/o GRPO) | 48.00 ± 1.00 | 48.87 ± 0.93 | -0.87 | — | 39.73 ± 1.02 | — | 36.00 ± 1.00 | 35.89 ± 0.62 | +0.11 | — | 38.62 ± 0.71 | — | — | 40.78 | — |
|  | SOD | 50.00 ± 1.00 | 50.83 ± 1.15 | -0.83 | 40.00 ± 1.00 | 41.72 ± 1.24 | -1.72 | 38.00 ± 1.00 | 38.72 ± 0.73 | -0.72 | 41.00 ± 1.00 | 40.63 ± 0.91 | +0.37 | 42.25 ± 0.50 | 42.98 | -0.73 |

- Ours: avg@32 in percent under the strict grader, preset paper, from <tmp>/results (the paper: avg@32, strict grader).
- Ours ± is the standard error over problems of one run (the summary's stderr); '(n=K)' marks a mean ± sample std across K seeds.
- Paper ± is the value the paper prints after each number; the paper does not define it, so it is shown as printed and not compared with ours.
- Δ = ours − paper, in points.
- Average: the mean of AIME24, AIME25, GPQA and LCB, only when all four are present; its ± combines the four standard errors (root of the summed squares, divided by 4), or with seeds is the std of the per-seed averages.
- —: no result found (missing, never filled in).
- Distillation rows use the 4B teacher: summaries whose config.teacher.size names another size are left out (see the teacher-scale figure).
"""


def test_table5_markdown_snapshot(results):
    text = render(build_table("table5", results), "markdown")
    assert text.replace(str(results.parent), "<tmp>") == TABLE5_MARKDOWN


@pytest.mark.parametrize("name", TABLES)
@pytest.mark.parametrize("fmt", FORMATS)
def test_every_table_renders_in_every_format(results, runs, name, fmt):
    table = build_table(name, results, runs)
    text = render(table, fmt)
    labels = [row.label for row in table.rows]
    for label in labels:
        assert label in text
    if fmt == "markdown":
        assert "—" in text and "paper" in text
        table_lines = [line for line in text.splitlines() if line.startswith("| ")]
        assert len(table_lines) == 2 + len(labels)  # header, separator, rows
    elif fmt == "latex":
        assert r"\begin{tabular}" in text and r"\bottomrule" in text and "--" in text
        assert "—" not in text and "±" not in text and "Δ" not in text
    else:
        rows = list(csv.DictReader(io.StringIO(text)))
        assert len(rows) == len(labels)
        assert "—" not in text  # missing is an empty field in CSV


def test_table1_cells(results):
    table = build_table("table1", results)
    assert [r.group for r in table.rows].count("0.6B") == len(TABLE_ROWS["table1"])
    assert table.rows[0].label == "4B teacher (GRPO)"
    teacher = table.cell("4B", "teacher", "aime24")
    assert teacher.ours.mean == 66.0 and teacher.paper.value == 67.60
    assert teacher.diff == pytest.approx(66.0 - 67.60)
    # a partial row: present where it exists, missing elsewhere, no Average
    assert table.cell("0.6B", "opd-gated", "aime24").ours.mean == 20.0
    assert table.cell("0.6B", "opd-gated", "aime25").ours is None
    assert table.cell("0.6B", "opd-gated", "average").ours is None
    assert table.cell("0.6B", "opd-gated", "average").paper.value == 20.04
    # a full row: the Average and its combined stderr; the 14B-teacher run is left out
    sod = table.cell("1.7B", "sod", "average")
    assert sod.ours.mean == pytest.approx(sum(SOD.values()) / 4)
    assert sod.ours.err == pytest.approx(0.5)
    assert sod.diff == pytest.approx(42.25 - 42.98)
    assert table.cell("1.7B", "sod", "aime24").ours.n == 1
    # untouched rows stay missing (never zero)
    assert all(c.ours is None for c in table.rows[1].cells)


def test_seeds_in_table_and_average_over_per_seed_averages(results):
    table = build_table("table1", results)
    cell = table.cell("1.7B", "grpo", "aime24")
    assert cell.ours.n == 3 and cell.ours.err == pytest.approx(std(GRPO_SEEDS["aime24"]))
    per_seed = [sum(GRPO_SEEDS[b][i] for b in PAPER_BENCHES) / 4 for i in range(3)]
    average = table.cell("1.7B", "grpo", "average")
    assert average.ours.mean == pytest.approx(sum(per_seed) / 3)
    assert average.ours.err == pytest.approx(std(per_seed)) and average.ours.n == 3
    md = render(table, "markdown")
    assert f"32.00 ± {std(GRPO_SEEDS['aime24']):.2f} (n=3) | 25.63 ± 1.03 | +6.37" in md


def test_difference_sign_and_csv_numbers(results):
    rows = _csv_rows(render(build_table("table1", results), "csv"))
    sod = rows["1.7B/sod"]
    assert float(sod["aime24"]) == 50.0 and float(sod["aime24_err"]) == 1.0
    assert sod["aime24_n"] == "1"
    assert float(sod["aime24_paper"]) == 50.83 and float(sod["aime24_paper_pm"]) == 1.15
    assert float(sod["aime24_diff"]) == pytest.approx(-0.83)
    assert float(sod["lcb_diff"]) == pytest.approx(0.37)
    assert sod["average_paper_pm"] == ""
    assert rows["0.6B/opd-gated"]["aime25"] == "" and rows["0.6B/opd-gated"]["average"] == ""
    assert rows["0.6B/vanilla"]["aime24"] == "" and rows["0.6B/vanilla"]["aime24_paper"] == "7.71"


def test_table2_alias_rows_and_note(results):
    table = build_table("table2", results)
    assert table.cell("1.7B", "uniform-weighting", "aime24").ours.mean == 44.0
    assert table.cell("1.7B", "uniform-weighting", "aime24").paper.value == 41.68
    assert table.cell("1.7B", "no-stepwise-opd", "aime24").ours.n == 3  # the GRPO run
    assert any("(1.1) is the OPD run" in note for note in table.notes)


def test_grader_choice(results):
    strict = build_table("table2", results, grader="strict")
    mv = build_table("table2", results, grader="math-verify")
    a, b = (t.cell("1.7B", "sod", "gpqa").ours.mean for t in (strict, mv))
    assert b == a + 1.0
    assert "math-verify grader" in render(mv, "markdown")
    with pytest.raises(SodctlUsageError, match="unknown grader"):
        build_table("table1", results, grader="lenient")


def test_teacher_row_falls_back_to_grpo_4b(tmp_path):
    write_summary(tmp_path, bench_summary("gpqa", 55.0, model="4b", method="grpo"))
    table = build_table("table1", tmp_path)
    assert table.cell("4B", "teacher", "gpqa").ours.mean == 55.0
    assert any("method 'grpo'" in note for note in table.notes)


def test_extra_bench_becomes_its_own_column(tmp_path):
    write_summary(tmp_path, bench_summary("tiny-arith", 80.0, preset="tiny", method="sod", k=4))
    table = build_table("table1", tmp_path)
    assert [c.key for c in table.columns][-1] == "tiny-arith"
    assert table.cell("1.7B", "sod", "tiny-arith").ours.mean == 80.0
    assert table.cell("1.7B", "sod", "average").ours is None
    text = render(table, "markdown")
    assert "avg@4" in text and "tiny-arith: not a paper benchmark" in text


# --- Table 4 ----------------------------------------------------------------------------------------------


def test_table4_from_runs(results, runs):
    table = build_table("table4", results, runs)
    sod_runs = [expected_run_cost(N_STEPS, t, m) for t, m in COST["sod"]]
    cell = table.cell("1.7B", "sod", "step_time_s")
    assert cell.ours.mean == pytest.approx(12.0) and cell.ours.n == 2
    assert cell.ours.err == pytest.approx(std([10.0, 14.0]))
    assert cell.paper.value == 1105.4 and cell.diff == pytest.approx(12.0 - 1105.4)
    peak = table.cell("1.7B", "sod", "peak_mem_gb").ours.mean
    assert peak == pytest.approx(sum(r["peak_mem_gb"] for r in sod_runs) / 2)
    total = table.cell("1.7B", "sod", "total_h").ours.mean
    assert total == pytest.approx(sum(r["total_h"] for r in sod_runs) / 2)
    # the torn last line (a 1e9 s step) was dropped
    grpo = table.cell("0.6B", "grpo", "step_time_s").ours
    assert (grpo.mean, grpo.err, grpo.n) == (8.0, None, 1)
    assert table.cell("0.6B", "grpo", "steps").ours.mean == 10
    assert table.cell("0.6B", "opd-gated", "step_time_s").ours is None
    assert table.cell("0.6B", "opd-gated", "step_time_s").paper.value == 1090.5
    assert "12.0 ± 2.8 (n=2) | 1105.4 | -1093.4" in render(table, "markdown")


def test_table4_needs_runs(results, tmp_path):
    with pytest.raises(SodctlUsageError, match="--runs"):
        build_table("table4", results)
    with pytest.raises(SodctlUsageError, match="holds no training runs"):
        build_table("table4", results, tmp_path)


# --- errors -------------------------------------------------------------------------------------------------


def test_empty_or_missing_results_dir_is_a_usage_error(tmp_path):
    with pytest.raises(SodctlUsageError, match="holds no evaluation summaries"):
        build_table("table1", tmp_path)
    with pytest.raises(SodctlUsageError, match="does not exist"):
        build_table("table1", tmp_path / "nope")


def test_several_presets_need_a_choice(results, tmp_path):
    write_summary(tmp_path, bench_summary("aime24", 1.0, preset="tiny"))
    write_summary(tmp_path, bench_summary("aime24", 2.0, preset="paper"))
    with pytest.raises(SodctlUsageError, match=r"several presets \(paper, tiny\).*--preset"):
        build_table("table1", tmp_path)
    table = build_table("table1", tmp_path, preset="tiny")
    assert table.cell("1.7B", "sod", "aime24").ours.mean == 1.0
    with pytest.raises(SodctlUsageError, match="no results for preset 'smoke'"):
        build_table("table1", tmp_path, preset="smoke")


def test_unknown_table_and_format(results):
    with pytest.raises(SodctlUsageError, match="unknown table"):
        build_table("table3", results)
    with pytest.raises(SodctlUsageError, match="unknown format"):
        render(build_table("table1", results), "html")


# --- CLI ------------------------------------------------------------------------------------------------------


def _run(capsys, *args: str) -> tuple[int, str, str]:
    rc = main(list(args))
    out, err = capsys.readouterr()
    return rc, out, err


def test_cli_table_prints_and_writes(capsys, results, tmp_path):
    out_file = tmp_path / "t" / "table1.csv"
    rc, out, err = _run(
        capsys,
        "table",
        "table1",
        "--results",
        str(results),
        "--format",
        "csv",
        "--out",
        str(out_file),
    )
    assert rc == 0, err
    assert out == out_file.read_text()
    assert _csv_rows(out)["1.7B/sod"]["aime24"] == "50.0"
    rc, out, _ = _run(
        capsys, "table", "table2", "--results", str(results), "--grader", "math-verify"
    )
    assert rc == 0 and "(2.2) w/o Step-wise OPD" in out and "math-verify" in out


def test_cli_table4_reads_runs(capsys, results, runs):
    rc, out, err = _run(capsys, "table", "table4", "--runs", str(runs), "--format", "latex")
    assert rc == 0, err
    assert r"\multicolumn{3}{c}{Time/step (s)}" in out


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["table", "table1"], "holds no evaluation summaries"),
        (["table", "table4"], "holds no training runs"),
        (["report"], "nothing to report"),
    ],
)
def test_cli_empty_dir_is_one_line_exit_2(capsys, tmp_path, args, expected):
    where = str(tmp_path)
    extra = (
        ["--results", where, "--runs", where] if args[0] == "table" else [where, "--runs", where]
    )
    rc, out, err = _run(capsys, *args, *extra)
    assert rc == 2 and "Traceback" not in out + err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("sodctl: error: ")
    assert expected in lines[0] and where in lines[0]


def test_cli_out_unwritable_is_one_line(capsys, results, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    rc, _, err = _run(
        capsys, "table", "table1", "--results", str(results), "--out", str(blocker / "x.md")
    )
    assert rc == 2 and len(err.splitlines()) == 1 and "--out" in err
