"""reproduce with engine.jobs > 1: independent steps at once, in processes of their own.

The order of a plan's steps is set by the models each reads (``step_needs``) and
writes (``step_makes``); a parallel run gives the very table a sequential one gives
with the same ``engine.threads``; a failing step stops the run with one line and
keeps what the other steps wrote.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sodctl.cli import main
from sodctl.commands.common import load
from sodctl.commands.stages import table_plan
from sodctl.pipeline import step_makes, step_needs


def _cfg(experiment: str, tmp_path: Path):
    return load(experiment, [f"output_dir={tmp_path}"], preset="tiny")


def test_steps_wait_for_the_models_they_read(tmp_path):
    sft = (tmp_path / "table1" / "sft-1.7b" / "final").resolve()
    teacher = (tmp_path / "teacher" / "grpo-4b" / "final").resolve()
    grpo, sod = _cfg("table1/grpo-1.7b", tmp_path), _cfg("table1/sod-1.7b", tmp_path)
    assert step_needs("train", "table1/grpo-1.7b", grpo) == {
        sft
    }  # no teacher: need not wait for it
    assert step_needs("train", "table1/sod-1.7b", sod) == {sft, teacher}
    assert step_needs("train", "table1/opsd-gt-1.7b", _cfg("table1/opsd-gt-1.7b", tmp_path)) == {
        sft
    }  # OPSD's teacher is the policy itself
    assert step_needs("eval", "table1/sod-1.7b", sod) == {step_makes("train", sod)}
    vanilla = _cfg("table1/vanilla-1.7b", tmp_path)
    assert step_needs("eval", "table1/vanilla-1.7b", vanilla) == {
        Path(vanilla.zoo["1.7b"]).resolve()
    }
    assert step_makes("eval", sod) is None
    assert (
        step_makes("sft", _cfg("teacher/sft-4b", tmp_path))
        == (tmp_path / "teacher" / "sft-4b" / "final").resolve()
    )
    # every model a Table 1 step reads is made by an earlier step, or is a zoo model
    made: set[Path] = set()
    zoo = {Path(p).resolve() for p in grpo.zoo.values()}
    for command, experiment in table_plan("table1"):
        cfg = _cfg(experiment, tmp_path)
        assert step_needs(command, experiment, cfg) <= made | zoo, (command, experiment)
        if (m := step_makes(command, cfg)) is not None:
            made.add(m)


def _args(tmp_path: Path, name: str, *extra: str) -> list[str]:
    return [
        "reproduce", "table1", "--preset", "smoke", f"data.out_dir={tmp_path / 'world'}",
        f"output_dir={tmp_path / name / 'runs'}", f"eval.results_dir={tmp_path / name / 'results'}",
        "logging.wandb_mode=disabled", "engine.threads=1", *extra,
    ]  # fmt: skip


@pytest.mark.integration
@pytest.mark.slow
def test_two_jobs_print_the_table_one_job_prints(tmp_path, capsys):
    assert main(_args(tmp_path, "one", "--jobs", "1")) == 0
    assert main(_args(tmp_path, "two", "--jobs", "2")) == 0
    out = capsys.readouterr().out
    assert "steps on 2 processes" in out
    one = (tmp_path / "one" / "results" / "smoke" / "table1.csv").read_text()
    two = (tmp_path / "two" / "results" / "smoke" / "table1.csv").read_text()
    assert one == two
    # the footer: the run's own wall time, and the stages' summed time on the two processes
    footer = (tmp_path / "two" / "results" / "smoke" / "table1.md").read_text().strip()
    assert " min of stages on 2 processes (per stage" in footer.splitlines()[-1]
    logs = tmp_path / "two" / "runs" / "logs"
    assert (logs / "train-table1_sod-1.7b.log").stat().st_size > 0
    assert (logs / "eval-teacher_grpo-4b.log").exists()
    # everything done: a second parallel run starts no process
    assert main(_args(tmp_path, "two", "--jobs", "2")) == 0
    assert "0 steps on 2 processes" in capsys.readouterr().out


@pytest.mark.integration
@pytest.mark.slow
def test_a_failing_step_stops_the_run_in_one_line_and_keeps_the_rest(tmp_path, capsys):
    bad = tmp_path / "no-teacher"
    rc = main(_args(tmp_path, "bad", "--jobs", "2", f"teacher.path={bad}"))
    err = capsys.readouterr().err
    assert rc == 2
    line = err.strip().splitlines()[-1]
    assert line.startswith("sodctl: error: train table1/") and str(bad) in line
    runs = tmp_path / "bad" / "runs"
    assert (runs / "teacher" / "sft-4b" / "final" / "config.json").exists()  # kept
    assert not (runs / "table1" / "opd-gated-0.6b" / "final").exists()
