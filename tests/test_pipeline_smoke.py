"""The whole paper pipeline in miniature: sodctl reproduce table1 --preset smoke, then again (all cached)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sodctl.cli import main

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_reproduce_table1_smoke_end_to_end_and_cached(tmp_path, capsys):
    args = [
        "reproduce", "table1", "--preset", "smoke", f"data.out_dir={tmp_path / 'world'}",
        f"output_dir={tmp_path / 'runs'}", f"eval.results_dir={tmp_path / 'results'}", "logging.wandb_mode=disabled",
    ]  # fmt: skip
    assert main(args) == 0
    first = capsys.readouterr().out
    results = tmp_path / "results" / "smoke"
    summaries = sorted(
        p for p in results.rglob("*.json") if not p.name.endswith(".provenance.json")
    )
    # the teacher, and 7 rows for each of the two student sizes, on the four tiny benches
    assert len(summaries) == (1 + 2 * 7) * 4
    for s in summaries:
        data = json.loads(s.read_text())
        assert data["n_records"] == data["n_problems"] * data["k"]
    table = (results / "table1.md").read_text()
    rows = [
        line
        for line in table.splitlines()
        if line.startswith("| ") and not line.startswith(("| ---", "| Params"))
    ]
    assert len(rows) == 15 and not any("| — |" in row for row in rows)  # every cell has our number
    assert (results / "table1.csv").exists()
    # where the table came from: seeds, commit, machine, every stage's wall time
    prov = json.loads((results / "table1.provenance.json").read_text())
    assert prov["seeds"] == [42] and prov["preset"] == "smoke" and prov["machine"]["cpus"]
    assert prov["machine"]["cpu"] and prov["machine"]["cpu_capability"]  # CPU results hang on it
    assert {s["command"] for s in prov["stages"]} >= {"data", "pretrain", "sft", "train", "eval"}
    assert prov["total_seconds"] == pytest.approx(
        sum(s["seconds"] for s in prov["stages"]), abs=0.2
    )
    # one process: the run lasts at least as long as its stages, and the footer gives it
    assert prov["wall_seconds"] >= prov["total_seconds"] - 0.5
    footer = table.strip().splitlines()[-1]
    assert f"wall time of the run {prov['wall_seconds'] / 60:.1f} min (" in footer
    assert footer.startswith("_Seed 42 · sodctl commit ") and "CPUs" in footer
    for exp in ("teacher/grpo-4b", "table1/sod-0.6b", "table1/opsd-hint-1.7b"):
        run = tmp_path / "runs" / exp
        assert (run / "final" / "config.json").exists()
        assert len((run / "run" / "metrics.jsonl").read_text().splitlines()) == 2
    assert "ran" in first and "total" in first
    # a second run finds every stage done
    assert main(args) == 0
    second = capsys.readouterr().out
    stage_lines = [line for line in second.splitlines() if "table1/" in line or "teacher/" in line]
    assert stage_lines and all("cached" in line for line in stage_lines if "│" in line)
    # a model saved after its results (retrained, or results checked out of git): re-evaluated,
    # the old results kept aside
    import os

    weights = tmp_path / "runs" / "table1" / "sod-0.6b" / "final" / "config.json"
    os.utime(weights)
    assert main(args) == 0
    third = capsys.readouterr().out
    assert any(
        "eval" in ln and "table1/sod-0.6b" in ln and "ran" in ln for ln in third.splitlines()
    )
    assert (results / "0.6b" / "sod" / "aime24.json.stale-1").exists()


def test_seeds_share_one_teacher_trained_by_the_first_seed(tmp_path, capsys):
    """--seeds: every seed's students distil from one teacher (as the paper's all do),
    trained by the first seed under the common root; the other seeds find it done."""
    from omegaconf import OmegaConf

    runs = tmp_path / "runs"
    args = [
        "ablate", "no-grpo", "--preset", "smoke", "--seeds", "1,2", f"data.out_dir={tmp_path / 'world'}",
        f"output_dir={runs}", f"eval.results_dir={tmp_path / 'results'}", "logging.wandb_mode=disabled",
    ]  # fmt: skip
    assert main(args) == 0
    capsys.readouterr()
    teacher = runs / "teacher" / "grpo-4b" / "final"
    assert (teacher / "config.json").exists()
    for seed in (1, 2):
        assert not (runs / f"seed-{seed}" / "teacher").exists()
        run_dirs = list((runs / f"seed-{seed}" / "table2" / "no-grpo").glob("*/config.yaml"))
        assert run_dirs, seed
        cfg = OmegaConf.load(run_dirs[0])
        assert Path(cfg.teacher.path).resolve() == teacher.resolve() and cfg.seed == seed
    prov = json.loads((tmp_path / "results" / "smoke" / "table2.provenance.json").read_text())
    teacher_steps = [s for s in prov["stages"] if s["experiment"].startswith("teacher/")]
    assert [s["status"] for s in teacher_steps] == ["ran", "ran", "cached", "cached"]
