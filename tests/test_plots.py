"""Figures 3-6 from a fixture results/runs directory, the report page, and their CLI commands."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest
from results_fixtures import ERRONEOUS_D, N_STEPS, RECOVERY_D, SOD, SOD_14B, build_fixture

from sodctl.cli import main
from sodctl.errors import SodctlUsageError
from sodctl.results.plots import moving_average, pick_samples, plot
from sodctl.results.report import write_report

pytestmark = pytest.mark.unit

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def dirs(tmp_path_factory) -> tuple[Path, Path]:
    return build_fixture(tmp_path_factory.mktemp("fixture"))


@pytest.fixture(scope="module")
def figures(dirs, tmp_path_factory) -> dict[str, Path]:
    """Every figure, drawn once for the module: {file stem: PNG path}."""
    results, runs = dirs
    paths = plot("all", results, runs, tmp_path_factory.mktemp("figures"))
    return {p.stem: p for p in paths}


def _csv(png: Path) -> list[dict[str, str]]:
    with png.with_suffix(".csv").open() as f:
        return list(csv.DictReader(f))


def test_every_kind_is_drawn_as_png_with_csv(figures):
    assert sorted(figures) == [
        "curves-paper",
        "patterns-paper",
        "steps-paper-1.7b-sod-run-1",
        "steps-paper-1.7b-sod-run-2",
        "teacher-scale-paper",
    ]
    for png in figures.values():
        assert png.read_bytes()[:8] == PNG_MAGIC and png.stat().st_size > 5_000
        assert png.with_suffix(".csv").stat().st_size > 0


def test_curves_csv_holds_the_plotted_series(figures):
    rows = _csv(figures["curves-paper"])
    assert {r["metric"] for r in rows} == {"rollout/acc", "train/entropy", "rollout/turns"}
    sod_acc = [
        r for r in rows if (r["size"], r["method"], r["metric"]) == ("1.7b", "sod", "rollout/acc")
    ]
    assert [int(r["step"]) for r in sod_acc] == list(range(N_STEPS))
    # the two SOD seeds log the same accuracy curve: their mean is that curve
    assert float(sod_acc[-1]["value"]) == pytest.approx(0.6)
    grpo = [r for r in rows if r["method"] == "grpo" and r["metric"] == "rollout/acc"]
    assert len(grpo) == 10  # the torn line is not a step


def test_patterns_are_the_moving_average_of_the_raw_fractions(figures):
    rows = [r for r in _csv(figures["patterns-paper"]) if r["method"] == "sod"]
    raw = [float(r["stable_raw"]) for r in rows]
    assert [float(r["stable"]) for r in rows] == pytest.approx(moving_average(raw, 9))
    assert {r["method"] for r in _csv(figures["patterns-paper"])} == {
        "opd-gated",
        "sod",
    }  # grpo logs none


def test_moving_average_shrinks_at_the_ends():
    assert moving_average([0, 0, 9, 0, 0], 3) == [0, 3, 3, 3, 0]
    assert moving_average([1.0, 2.0, 3.0], 9) == [2.0, 2.0, 2.0]


def test_steps_csv_holds_d_and_w_of_picked_trajectories(figures):
    rows = _csv(figures["steps-paper-1.7b-sod-run-1"])
    assert [r["pattern"] for r in rows if r["k"] == "1"] == ["stable", "erroneous", "recovery"]
    erroneous = [r for r in rows if r["pattern"] == "erroneous"]
    assert [float(r["d"]) for r in erroneous] == ERRONEOUS_D
    assert [round(float(r["w"]), 2) for r in erroneous] == [1.00, 0.71, 0.46, 0.31, 0.17]
    recovery = [r for r in rows if r["pattern"] == "recovery"]
    assert [float(r["d"]) for r in recovery] == RECOVERY_D
    assert {r["train_step"] for r in rows} == {"8"}  # the latest step that sampled


def test_pick_samples_prefers_latest_step_then_most_steps():
    samples = [
        {"step": 5, "traj_id": "a", "d": [1, 2], "w": [1, 0.5], "pattern": "erroneous"},
        {"step": 5, "traj_id": "b", "d": [1, 2, 3], "w": [1, 0.5, 0.3], "pattern": "erroneous"},
        {"step": 3, "traj_id": "c", "d": [1, 2, 3, 4], "w": [1, 1, 1, 1], "pattern": "erroneous"},
        {"step": 9, "traj_id": "d", "d": [1], "w": [1], "pattern": "stable"},
        {"step": 9, "traj_id": "e", "d": [], "w": [], "pattern": None},
    ]
    assert [s["traj_id"] for s in pick_samples(samples)] == ["d", "b"]


def test_teacher_scale_bars(figures):
    rows = {
        (r["student"], r["method"], r["teacher"]): r for r in _csv(figures["teacher-scale-paper"])
    }
    assert set(rows) == {("1.7b", "sod", "4b"), ("1.7b", "sod", "14b")}
    assert float(rows[("1.7b", "sod", "4b")]["value"]) == pytest.approx(sum(SOD.values()) / 4)
    assert float(rows[("1.7b", "sod", "14b")]["value"]) == pytest.approx(sum(SOD_14B.values()) / 4)
    assert rows[("1.7b", "sod", "4b")]["metric"].startswith("Average of aime24")


def test_a_kind_without_data_is_a_usage_error(dirs, tmp_path):
    results, runs = dirs
    with pytest.raises(SodctlUsageError, match="holds no training runs"):
        plot("curves", results, tmp_path, tmp_path / "out")
    with pytest.raises(SodctlUsageError, match="holds no evaluation summaries"):
        plot("teacher-scale", tmp_path, runs, tmp_path / "out")
    with pytest.raises(SodctlUsageError, match="nothing to plot"):
        plot("all", tmp_path, tmp_path, tmp_path / "out")
    with pytest.raises(SodctlUsageError, match="unknown plot"):
        plot("scatter", results, runs, tmp_path / "out")


def test_steps_without_samples_names_what_was_expected(tmp_path):
    (tmp_path / "e" / "r").mkdir(parents=True)
    (tmp_path / "e" / "r" / "config.yaml").write_text(
        "preset: tiny\nmethod: {name: sod}\nmodel: {size: 0.6b}\n"
    )
    (tmp_path / "e" / "r" / "metrics.jsonl").write_text('{"step": 0, "train/loss": 1.0}\n')
    with pytest.raises(SodctlUsageError, match="samples.jsonl"):
        plot("steps", None, tmp_path, tmp_path / "out")


# --- the report ----------------------------------------------------------------------------------


def test_report_links_figures_and_says_what_is_missing(dirs, tmp_path):
    results, runs = dirs
    out = write_report(results, runs, tmp_path / "site" / "report.md")
    text = out.read_text()
    assert "25 evaluation summaries" in text and "4 training runs" in text
    assert "torn last metrics line" in text and "table1/grpo-0.6b/run-1" in text
    assert "not a BenchSummary" in text and "no config.yaml" in text
    assert "rows with no result: 0.6B Vanilla" in text
    for title in ("**Table 1:", "**Table 2:", "**Table 4:", "**Table 5:"):
        assert title in text
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert len(links) == 5
    for link in links:
        assert not Path(link).is_absolute() and (out.parent / link).is_file()
        assert link.startswith("report-figures/")


def test_report_with_runs_only_says_tables_are_missing(dirs, tmp_path):
    _, runs = dirs
    out = write_report(tmp_path / "no-results", runs, tmp_path / "r.md")
    text = out.read_text()
    assert "Tables 1, 2, 5: no evaluation summaries" in text
    assert "Figure `teacher-scale`: not drawn" in text


# --- CLI ------------------------------------------------------------------------------------------


def _run(capsys, *args: str) -> tuple[int, str, str]:
    rc = main(list(args))
    out, err = capsys.readouterr()
    return rc, out, err


def test_cli_plot(capsys, dirs, tmp_path):
    results, _ = dirs
    rc, out, err = _run(
        capsys, "plot", "teacher-scale", "--results", str(results), "--out", str(tmp_path)
    )
    assert rc == 0, err
    assert out.strip() == f"{tmp_path / 'teacher-scale-paper.png'}  (data: teacher-scale-paper.csv)"
    assert (tmp_path / "teacher-scale-paper.png").is_file()


def test_cli_plot_empty_runs_is_one_line_exit_2(capsys, tmp_path):
    rc, out, err = _run(capsys, "plot", "curves", "--runs", str(tmp_path))
    assert rc == 2 and "Traceback" not in out + err
    assert len(err.splitlines()) == 1 and str(tmp_path) in err and "metrics.jsonl" in err


def test_cli_report_default_out(capsys, tmp_path):
    results, runs = build_fixture(tmp_path)
    rc, out, err = _run(capsys, "report", str(results), "--runs", str(runs))
    assert rc == 0, err
    assert out.strip() == str(results / "report.md")
    assert (results / "report.md").is_file() and (results / "report-figures").is_dir()
