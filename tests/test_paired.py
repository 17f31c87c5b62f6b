"""Paired differences over seeds (row − SOD, OPD − SFT, GRPO − SFT on the Average), hand-computed."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from types import SimpleNamespace

import pytest
from results_fixtures import bench_summary, build_fixture, write_summary

from sodctl.cli import main
from sodctl.results import paired as paired_mod
from sodctl.results.paired import (
    T975,
    has_paired,
    paired_comparisons,
    paired_outputs,
    render_paired_csv,
    render_paired_markdown,
    t_quantile,
    t_source,
)
from sodctl.results.report import write_report
from sodctl.results.store import load_results
from sodctl.results.tables import build_table, render

pytestmark = pytest.mark.unit

# Every bench of a seed is its Average plus one of these offsets (they sum to 0), so the
# per-seed Average is the number below exactly.
OFFSETS = {"aime24": 2.0, "aime25": -2.0, "gpqa": 1.0, "lcb": -1.0}
AVERAGES: dict[tuple[str, str], dict[int, float]] = {
    ("1.7b", "sod"): {1: 40.0, 2: 42.0, 3: 44.0},
    ("1.7b", "opd-gated"): {1: 41.0, 2: 44.0, 3: 47.0},  # − SOD: 1, 2, 3 (CI holds 0)
    ("1.7b", "sft"): {1: 30.0, 2: 31.0, 3: 32.0},
    ("1.7b", "grpo"): {1: 34.0, 2: 36.0, 3: 38.0},  # − SFT: 4, 5, 6 (CI excludes 0)
    ("1.7b", "no-grpo"): {1: 39.0, 2: 41.0, 3: 43.0},  # − SOD: −1 each (Table 5)
    ("1.7b", "vanilla"): {1: 20.0, 2: 25.0},  # seed 3: AIME24 only, no Average
    ("0.6b", "sod"): {1: 20.0},
    ("0.6b", "opd-gated"): {1: 23.0},  # one paired seed
}
T2 = 4.302653  # t(0.975, 2)
T1 = 12.706205  # t(0.975, 1)


def build_seeds(results: Path) -> Path:
    for (model, method), per_seed in AVERAGES.items():
        for seed, avg in per_seed.items():
            for bench, offset in OFFSETS.items():
                summary = bench_summary(bench, avg + offset, model=model, method=method, seed=seed)
                write_summary(results, summary, seed_dir=True)
    write_summary(results, bench_summary("aime24", 30.0, method="vanilla", seed=3), seed_dir=True)
    return results


@pytest.fixture(scope="module")
def seeds_dir(tmp_path_factory) -> Path:
    return build_seeds(tmp_path_factory.mktemp("paired") / "results")


@pytest.fixture(scope="module")
def single_dir(tmp_path_factory) -> Path:
    return build_fixture(tmp_path_factory.mktemp("single"))[0]


def _by_label(comparisons, group: str = "1.7B"):
    return {c.label: c for c in comparisons if c.group == group}


def _run(capsys, *args: str) -> tuple[int, str, str]:
    rc = main(list(args))
    out, err = capsys.readouterr()
    return rc, out, err


# --- t quantiles ------------------------------------------------------------------------------


def _t_cdf(x: float, df: int, steps: int = 20000) -> float:
    """P(T ≤ x) for x > 0 by Simpson's rule on the t density (independent of the table)."""
    c = math.exp(math.lgamma((df + 1) / 2) - math.lgamma(df / 2)) / math.sqrt(df * math.pi)

    def pdf(t: float) -> float:
        return c * (1 + t * t / df) ** (-(df + 1) / 2)

    h = x / steps
    total = pdf(0) + pdf(x) + sum((4 if i % 2 else 2) * pdf(i * h) for i in range(1, steps))
    return 0.5 + total * h / 3


@pytest.mark.parametrize("df", [1, 2, 3, 5, 10, 20, 30])
def test_t_table_is_the_975_quantile(df):
    assert _t_cdf(T975[df], df) == pytest.approx(0.975, abs=2e-6)


def test_t_quantile_table_and_normal_beyond(monkeypatch):
    monkeypatch.setattr(paired_mod, "_scipy_t", lambda: None)
    assert sorted(T975) == list(range(1, 31))
    assert t_quantile(2) == T2 and t_quantile(30) == 2.042272
    assert t_quantile(31) == t_quantile(500) == 1.96
    assert "built-in table" in t_source()
    with pytest.raises(ValueError):
        t_quantile(0)


# --- the comparisons --------------------------------------------------------------------------


def test_differences_mean_std_and_t_interval(seeds_dir):
    comparisons = paired_comparisons(load_results(seeds_dir), "table1", "paper")
    c = _by_label(comparisons)
    opd = c["OPD − SOD (Ours)"]
    assert (opd.row, opd.reference, opd.model) == ("opd-gated", "sod", "1.7b")
    assert opd.seeds == ("1", "2", "3") and opd.diffs == (1.0, 2.0, 3.0)
    assert opd.n == 3 and opd.mean == 2.0 and opd.std == pytest.approx(1.0)
    assert opd.t == pytest.approx(T2, abs=1e-6)
    half = T2 / math.sqrt(3)  # 2.484
    assert opd.ci == pytest.approx((2.0 - half, 2.0 + half), abs=1e-5)
    assert opd.excludes_zero is False  # [-0.48, 4.48] holds 0
    grpo_sft = c["GRPO − SFT"]
    assert grpo_sft.diffs == (4.0, 5.0, 6.0) and grpo_sft.mean == 5.0
    assert grpo_sft.ci == pytest.approx((5.0 - half, 5.0 + half), abs=1e-5)
    assert grpo_sft.excludes_zero is True  # [2.52, 7.48]
    opd_sft = c["OPD − SFT"]
    assert opd_sft.diffs == (11.0, 13.0, 15.0) and opd_sft.std == pytest.approx(2.0)
    assert opd_sft.ci == pytest.approx((13.0 - 2 * half, 13.0 + 2 * half), abs=1e-5)
    grpo = c["GRPO − SOD (Ours)"]  # the same difference every seed: a zero-width interval
    assert grpo.std == 0.0 and grpo.ci == (-6.0, -6.0) and grpo.excludes_zero is True
    # every method row against SOD, then OPD and GRPO against SFT; no teacher row
    assert list(c) == [
        "Vanilla − SOD (Ours)",
        "SFT − SOD (Ours)",
        "GRPO − SOD (Ours)",
        "OPD − SOD (Ours)",
        "OPSD (w/ GT) − SOD (Ours)",
        "OPSD (w/ Hint) − SOD (Ours)",
        "OPD − SFT",
        "GRPO − SFT",
    ]
    assert {x.group for x in comparisons} == {"0.6B", "1.7B"}


def test_a_seed_missing_a_row_is_left_out(seeds_dir):
    c = _by_label(paired_comparisons(load_results(seeds_dir), "table1", "paper"))
    vanilla = c["Vanilla − SOD (Ours)"]
    assert vanilla.seeds == ("1", "2") and vanilla.n == 2 and vanilla.left_out == ("3",)
    assert vanilla.diffs == (-20.0, -17.0) and vanilla.mean == -18.5
    assert vanilla.std == pytest.approx(math.sqrt(4.5))
    half = T1 * math.sqrt(4.5) / math.sqrt(2)  # 12.706205 · 1.5
    assert vanilla.ci == pytest.approx((-18.5 - half, -18.5 + half), abs=1e-5)
    assert vanilla.excludes_zero is False
    none = c["OPSD (w/ GT) − SOD (Ours)"]
    assert none.n == 0 and none.mean is None and none.ci is None and none.excludes_zero is None


def test_one_paired_seed_has_no_interval(seeds_dir):
    c = _by_label(paired_comparisons(load_results(seeds_dir), "table1", "paper"), "0.6B")
    opd = c["OPD − SOD (Ours)"]
    assert opd.diffs == (3.0,) and opd.mean == 3.0
    assert opd.std is None and opd.t is None and opd.ci is None and opd.excludes_zero is None


def test_table2_and_table5_compare_against_sod_only(seeds_dir):
    store = load_results(seeds_dir)
    t2 = _by_label(paired_comparisons(store, "table2", "paper"))
    assert len(t2) == 6 and all(label.endswith(" − SOD (Ours)") for label in t2)
    assert t2["(2.2) w/o Step-wise OPD − SOD (Ours)"].diffs == (-6.0, -6.0, -6.0)  # = GRPO
    assert t2["(2.1) w/o GRPO − SOD (Ours)"].diffs == (-1.0, -1.0, -1.0)
    assert t2["(1.1) w/ Uniform Weighting − SOD (Ours)"].n == 0  # opd, not opd-gated
    t5 = _by_label(paired_comparisons(store, "table5", "paper"))
    assert list(t5) == ["naive OPD − SOD", "OPD − SOD", "SOD (w/o GRPO) − SOD"]
    assert t5["OPD − SOD"].diffs == (1.0, 2.0, 3.0)
    assert paired_comparisons(store, "table4", "paper") == []


def test_math_verify_grader_is_paired_too(seeds_dir):
    # the fixture's math-verify scores are strict + 1 everywhere: the same differences
    c = _by_label(paired_comparisons(load_results(seeds_dir), "table1", "paper", "math-verify"))
    assert c["OPD − SOD (Ours)"].diffs == (1.0, 2.0, 3.0)
    assert c["OPD − SOD (Ours)"].grader == "math-verify"


def test_single_seed_results_pair_nothing(single_dir):
    store = load_results(single_dir)
    for name in ("table1", "table2", "table5"):
        assert not has_paired(paired_comparisons(store, name, "paper"))
        assert paired_outputs(store, build_table(name, single_dir)) == ("", None)


# --- rendering --------------------------------------------------------------------------------

TABLE1_PAIRED = """\
**Table 1: paired differences over seeds, Average (points), row − reference** (preset paper, grader strict)

| Params | Comparison | n | Seeds | Per seed | Mean | Std | 95% CI | Excludes 0 |
| --- | --- | ---: | --- | --- | ---: | ---: | --- | --- |
| 0.6B | OPD − SOD (Ours) | 1 | 1 | +3.00 | +3.00 | — | n=1: no interval | — |
| 1.7B | Vanilla − SOD (Ours) | 2 | 1, 2 | -20.00, -17.00 | -18.50 | 2.12 | [-37.56, +0.56] | no |
|  | SFT − SOD (Ours) | 3 | 1, 2, 3 | -10.00, -11.00, -12.00 | -11.00 | 1.00 | [-13.48, -8.52] | yes |
|  | GRPO − SOD (Ours) | 3 | 1, 2, 3 | -6.00, -6.00, -6.00 | -6.00 | 0.00 | [-6.00, -6.00] | yes |
|  | OPD − SOD (Ours) | 3 | 1, 2, 3 | +1.00, +2.00, +3.00 | +2.00 | 1.00 | [-0.48, +4.48] | no |
|  | OPD − SFT | 3 | 1, 2, 3 | +11.00, +13.00, +15.00 | +13.00 | 2.00 | [+8.03, +17.97] | yes |
|  | GRPO − SFT | 3 | 1, 2, 3 | +4.00, +5.00, +6.00 | +5.00 | 1.00 | [+2.52, +7.48] | yes |

- Per seed: the row's Average minus the reference row's Average (the table's Average, the mean of AIME24, AIME25, GPQA and LCB), in points, for each seed where both rows have all four benches; n counts those seeds.
- Mean, Std: the mean and sample std (ddof 1) of the per-seed differences. 95% CI: mean ± t(0.975, n−1) · Std / √n, Student's t from <t source>; Excludes 0: 'yes' when the whole interval lies on one side of zero.
- n=1: one paired seed, its difference only (no spread, no interval).
- Left out of a comparison (only one of its two rows has an Average for that seed): 1.7B Vanilla − SOD (Ours): seed 3.
- Not compared (no seed where both rows have an Average): 0.6B Vanilla − SOD (Ours); 0.6B SFT − SOD (Ours); 0.6B GRPO − SOD (Ours); 0.6B OPSD (w/ GT) − SOD (Ours); 0.6B OPSD (w/ Hint) − SOD (Ours); 0.6B OPD − SFT; 0.6B GRPO − SFT; 1.7B OPSD (w/ GT) − SOD (Ours); 1.7B OPSD (w/ Hint) − SOD (Ours).
"""


def _expected_markdown() -> str:
    return TABLE1_PAIRED.replace("<t source>", t_source())


def test_markdown_snapshot(seeds_dir):
    md = render_paired_markdown(paired_comparisons(load_results(seeds_dir), "table1", "paper"))
    assert md == _expected_markdown()


def test_csv_has_one_line_per_comparison(seeds_dir):
    comparisons = paired_comparisons(load_results(seeds_dir), "table1", "paper")
    rows = list(csv.DictReader(io.StringIO(render_paired_csv(comparisons))))
    assert len(rows) == len(comparisons) == 16
    by = {(r["params"], r["comparison"]): r for r in rows}
    opd = by[("1.7B", "OPD − SOD (Ours)")]
    assert (opd["row"], opd["reference"], opd["n"], opd["seeds"]) == (
        "opd-gated",
        "sod",
        "3",
        "1;2;3",
    )
    assert opd["diffs"] == "1.0;2.0;3.0" and float(opd["mean"]) == 2.0
    assert float(opd["std"]) == 1.0 and float(opd["t"]) == pytest.approx(T2, abs=1e-4)
    assert float(opd["ci_low"]) == pytest.approx(-0.4841, abs=1e-4)
    assert float(opd["ci_high"]) == pytest.approx(4.4841, abs=1e-4)
    assert opd["excludes_zero"] == "no" and opd["left_out"] == ""
    assert by[("1.7B", "GRPO − SFT")]["excludes_zero"] == "yes"
    assert by[("1.7B", "Vanilla − SOD (Ours)")]["left_out"] == "3"
    one = by[("0.6B", "OPD − SOD (Ours)")]
    assert (one["n"], one["std"], one["ci_low"], one["excludes_zero"]) == ("1", "", "", "")
    assert by[("0.6B", "SFT − SOD (Ours)")]["n"] == "0"


# --- sodctl table, the report, reproduce ------------------------------------------------------


def test_cli_table_appends_the_section(capsys, seeds_dir, tmp_path):
    out_file = tmp_path / "table1.md"
    rc, out, err = _run(
        capsys, "table", "table1", "--results", str(seeds_dir), "--out", str(out_file)
    )
    assert rc == 0, err
    table = render(build_table("table1", seeds_dir), "markdown")
    assert out == table + "\n" + _expected_markdown() == out_file.read_text()
    rc, out, _ = _run(capsys, "table", "table1", "--results", str(seeds_dir), "--no-paired")
    assert rc == 0 and out == table
    for fmt in ("csv", "latex"):  # the paired section is for markdown only
        rc, out, _ = _run(capsys, "table", "table1", "--results", str(seeds_dir), "--format", fmt)
        assert rc == 0 and out == render(build_table("table1", seeds_dir), fmt)
    rc, out, _ = _run(capsys, "table", "table5", "--results", str(seeds_dir))
    assert rc == 0 and "**Table 5: paired differences over seeds" in out
    assert "| 1.7B | OPD − SOD | 3 | 1, 2, 3 | +1.00, +2.00, +3.00 | +2.00 | 1.00 |" in out


@pytest.mark.parametrize("name", ["table1", "table2", "table5"])
def test_cli_single_seed_table_output_unchanged(capsys, single_dir, name):
    rc, out, err = _run(capsys, "table", name, "--results", str(single_dir))
    assert rc == 0, err
    assert out == render(build_table(name, single_dir), "markdown")
    assert "paired" not in out


def test_report_has_a_paired_section_per_table(seeds_dir, tmp_path):
    text = write_report(seeds_dir, None, tmp_path / "report.md").read_text()
    assert "## Paired differences over seeds" in text
    section = text.split("## Paired differences over seeds", 1)[1].split("## All evaluations")[0]
    assert _expected_markdown() in section
    for name in ("Table 1", "Table 2", "Table 5"):
        assert f"**{name}: paired differences over seeds" in section
    assert text.index("## Tables") < text.index("## Paired") < text.index("## All evaluations")


def test_single_seed_report_has_no_paired_section(single_dir, tmp_path):
    text = write_report(single_dir, None, tmp_path / "report.md").read_text()
    assert "Paired" not in text and "paired" not in text


def test_reproduce_writes_the_section_and_the_paired_csv(monkeypatch, tmp_path):
    from omegaconf import OmegaConf

    from sodctl.commands import stages

    results = build_seeds(tmp_path / "results")
    cfg = OmegaConf.create({"preset": "paper", "eval": {"results_dir": str(results)}})

    def fake_pipeline(plan, *, preset, overrides, seeds, console, render_tables):
        paths = render_tables(cfg, True)
        return SimpleNamespace(table_paths=paths, seeds=seeds, config=cfg, render=lambda: "")

    monkeypatch.setattr("sodctl.pipeline.preflight", lambda *a, **k: None)
    monkeypatch.setattr("sodctl.pipeline.run_pipeline", fake_pipeline)
    monkeypatch.setattr(stages, "_write_provenance", lambda *a: None)
    stages._run_plan([("eval", "table1/sod-1.7b")], ["table1"], None, "paper", [1, 2, 3])
    out = results / "paper"
    table = render(build_table("table1", results), "markdown")
    assert (out / "table1.md").read_text() == table + "\n" + _expected_markdown()
    assert (out / "table1.csv").read_text() == render(build_table("table1", results), "csv")
    comparisons = paired_comparisons(load_results(results), "table1", "paper")
    assert (out / "table1.paired.csv").read_text() == render_paired_csv(comparisons)
