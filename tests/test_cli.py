"""The sodctl CLI: help, working inspect commands, and one-line errors (exit 2) for bad input."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sodctl import __version__
from sodctl.cli import main
from sodctl.config import load_config, resolved_dict
from sodctl.data.benchmarks import BENCHMARKS
from sodctl.methods import ABLATIONS, METHODS

STAGES = (
    "data",
    "sft",
    "train",
    "eval",
    "table",
    "plot",
    "report",
    "reproduce",
    "ablate",
    "inspect",
)

# Each stage's --help must mention these options.
STAGE_OPTIONS = {
    "data": ["fetch", "rl", "sft", "hints", "inspect", "stats", "tiny"],
    "sft": [
        "EXPERIMENT",
        "--preset",
        "--model",
        "--engine",
        "--seed",
        "--max-steps",
        "--resume",
        "--pretrain",
        "KEY=VALUE",
    ],
    "train": [
        "EXPERIMENT",
        "--preset",
        "--model",
        "--method",
        "--teacher",
        "--engine",
        "--seed",
        "--max-steps",
        "KEY=VALUE",
    ],
    "eval": [
        "EXPERIMENT",
        "--model",
        "--bench",
        "--k",
        "--engine",
        "--grader",
        "--temperature",
        "--top-p",
        "--max-turns",
        "--max-response-tokens",
        "--seed",
        "--out",
        "--limit",
    ],
    "table": ["TABLE", "--results", "--runs", "--format", "--grader", "--preset", "--out"],
    "plot": ["FIGURE", "--results", "--runs", "--out", "--grader"],
    "report": ["RESULTS_DIR", "--runs", "--out", "--grader"],
    "reproduce": ["TABLE", "--preset", "--seeds", "--dry-run"],
    "ablate": ["NAME", "--preset", "--seed", "--seeds"],
    "inspect": ["methods", "presets", "benches", "config", "experiments"],
}


@pytest.fixture(autouse=True)
def _wide_terminal(monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")  # rich tables: no wrapping in assertions


def run(capsys, *args: str) -> tuple[int, str, str]:
    rc = main(list(args))
    out, err = capsys.readouterr()
    return rc, out, err


def assert_one_line_error(rc: int, out: str, err: str) -> str:
    assert rc == 2
    assert "Traceback" not in out + err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert ": error: " in lines[0]
    return lines[0]


# --- help and version -------------------------------------------------------------------------


@pytest.mark.unit
def test_version(capsys):
    rc, out, _ = run(capsys, "--version")
    assert rc == 0 and out.strip() == f"sodctl {__version__}"


@pytest.mark.unit
def test_help_lists_every_stage(capsys):
    rc, out, _ = run(capsys, "--help")
    assert rc == 0
    for stage in STAGES:
        assert f"  {stage} " in out


@pytest.mark.unit
def test_no_arguments_shows_help(capsys):
    rc, out, _ = run(capsys)
    assert rc == 0 and "Commands:" in out


@pytest.mark.unit
@pytest.mark.parametrize("stage", STAGES)
def test_stage_help_documents_options(capsys, stage):
    rc, out, err = run(capsys, stage, "--help")
    assert rc == 0, err
    for option in STAGE_OPTIONS[stage]:
        assert option in out, f"{stage} --help lacks {option}"


# --- inspect ------------------------------------------------------------------------------------


@pytest.mark.unit
def test_inspect_methods(capsys):
    rc, out, _ = run(capsys, "inspect", "methods")
    assert rc == 0
    for name, spec in METHODS.items():
        assert name in out and spec.label in out
    for col in ("stage", "grpo", "opd", "weighting", "clip", "teacher", "privileged", "ablation"):
        assert col in out
    assert "uniform-weighting" in out and "2.2" in out


@pytest.mark.unit
def test_inspect_presets(capsys):
    rc, out, _ = run(capsys, "inspect", "presets")
    assert rc == 0
    for name in ("paper", "tiny", "smoke"):
        assert name in out
    assert "every hyper-parameter" in out


@pytest.mark.unit
def test_inspect_benches(capsys):
    rc, out, _ = run(capsys, "inspect", "benches")
    assert rc == 0
    for name in BENCHMARKS:
        assert name in out
    assert (
        "198" in out and "30" in out and "unknown" in out and "Gen-Verse/Open-AgentRL-Eval" in out
    )


@pytest.mark.unit
def test_inspect_experiments(capsys):
    rc, out, _ = run(capsys, "inspect", "experiments")
    assert rc == 0 and "table1/sod-1.7b" in out and "teacher/grpo-4b" in out


@pytest.mark.unit
def test_inspect_config_prints_the_resolved_yaml(capsys):
    rc, out, _ = run(
        capsys, "inspect", "config", "table1/sod-0.6b", "train.lr=2e-6", "--preset", "tiny"
    )
    assert rc == 0
    expected = resolved_dict(
        load_config("table1/sod-0.6b", preset="tiny", overrides=["train.lr=2e-6"])
    )
    assert yaml.safe_load(out) == expected
    assert expected["train"]["lr"] == 2e-6 and expected["preset"] == "tiny"


@pytest.mark.unit
def test_inspect_config_without_a_file(capsys):
    rc, out, _ = run(
        capsys, "inspect", "config", "rollout.n=8", "--method", "opd", "--model", "0.6b"
    )
    assert rc == 0
    cfg = yaml.safe_load(out)
    assert cfg["rollout"]["n"] == 8 and cfg["method"]["name"] == "opd"
    assert cfg["model"]["path"] == "Qwen/Qwen3-0.6B" and cfg["experiment"] == "opd-0.6b"


@pytest.mark.unit
def test_inspect_config_key(capsys):
    assert run(capsys, "inspect", "config", "--key", "sod.delta")[1] == "0.2\n"
    assert run(capsys, "inspect", "config", "--key", "train.max_steps")[1] == "null\n"
    rc, out, _ = run(capsys, "inspect", "config", "--key", "eval")
    assert rc == 0 and yaml.safe_load(out)["top_p"] == 0.6


@pytest.mark.unit
def test_reproduce_dry_run_prints_a_validated_plan(capsys):
    rc, out, _ = run(
        capsys, "reproduce", "table2", "--dry-run", "--preset", "tiny", "--seeds", "1,2"
    )
    assert rc == 0
    table, commands = out.split(
        "\ncommands (each verl step writes its composed config with --dry-run):\n"
    )
    assert "| 1 | sft | teacher/sft-4b (seed 1) | local | to run |" in table
    # seed 2 reads seed 1's teacher: its teacher steps are not run again
    assert "| sft | teacher/sft-4b (seed 2) | local | by seed 1 |" in table
    assert "| sft | table1/sft-1.7b (seed 2) | local | to run |" in table
    lines = commands.splitlines()
    assert lines[0] == "sodctl sft teacher/sft-4b --preset tiny seed=1"
    assert "sodctl train table2/heuristic-weighting --preset tiny seed=2" in lines
    # (1.1) uniform weighting is its own run, not Table 1's (gated) OPD
    assert "sodctl train table2/uniform-weighting --preset tiny seed=1" in lines
    assert not any("opd-gated" in line for line in lines)
    assert lines[-1] == "sodctl table table2 --preset tiny"
    assert len(lines) == len(set(lines))


@pytest.mark.unit
def test_reproduce_paper_dry_run_plans_on_verl_with_table4_gpu_hours(capsys):
    rc, out, err = run(capsys, "reproduce", "table1", "--dry-run", "--preset", "paper")
    assert rc == 0, err
    assert "| train | table1/sod-1.7b | verl | to run | 369 | Table 4 |" in out  # 46.1 h x 8
    assert "| train | table1/grpo-0.6b | verl | to run | 182 | Table 4 |" in out  # 22.7 h x 8
    assert "| train | table1/opsd-gt-1.7b | verl | to run | 369 | ≈ SOD's (Table 4) |" in out
    assert "| train | teacher/grpo-4b | verl | to run |  | not in the paper (4b) |" in out
    assert "GPU-hours still to spend on the RL runs:" in out


# --- bad input: one line, exit 2, no traceback -----------------------------------------------------

BAD_INPUT = {
    "unknown key": (["train", "table1/sod-1.7b", "train.lrr=1e-5"], "did you mean 'train.lr'?"),
    "wrong type": (["train", "train.lr=abc"], "expects a float, got 'abc'"),
    "bad literal": (["sft", "model.size=3b"], "'0.6b', '1.7b', '4b', '14b'"),
    "missing file": (["train", "table1/sod-3b"], "experiments/table1/sod-3b.yaml"),
    "missing path": (["train", "/nonexistent/exp.yaml"], "no such experiment file"),
    "unknown preset": (["train", "--preset", "huge"], "unknown preset 'huge'"),
    "unknown method": (["train", "--method", "sodd"], "unknown method 'sodd'"),
    "unknown ablation": (["ablate", "no-grp"], "choose one of: uniform-weighting"),
    "malformed override": (["train", "table1/sod-1.7b", "lr"], "malformed override 'lr'"),
    "invalid switches": (["train", "method.weighting=none"], "invalid method switches"),
    "unknown option": (["train", "--foo"], "sodctl train: error: No such option: --foo"),
    "missing argument": (["ablate"], "Missing argument 'NAME'"),
    "bad choice": (["eval", "--engine", "tgi"], "'tgi' is not one of 'hf', 'vllm'"),
    "bad table": (["table", "table9"], "'table9' is not one of"),
    "bad plot": (["plot", "scatter"], "'scatter' is not one of"),
    "bad table format": (["table", "table1", "--format", "html"], "'html' is not one of"),
    "unknown command": (["trian"], "No such command 'trian'"),
    "unknown bench": (["eval", "--bench", "aime23"], "unknown benchmark 'aime23'"),
    "bad seeds": (["reproduce", "table1", "--seeds", "a,b"], "--seeds"),
    "bad ablate seeds": (["ablate", "no-grpo", "--seeds", "1,x"], "--seeds"),
    "seed and seeds": (["ablate", "no-grpo", "--seed", "1", "--seeds", "1,2"], "not both"),
    "wrong stage": (["train", "table1/sft-1.7b"], "use 'sodctl sft table1/sft-1.7b'"),
    "unknown key to inspect": (["inspect", "config", "--key", "nope"], "no config key 'nope'"),
}


@pytest.mark.unit
@pytest.mark.parametrize("case", sorted(BAD_INPUT))
def test_bad_input_is_one_line_and_exit_2(capsys, case):
    args, expected = BAD_INPUT[case]
    line = assert_one_line_error(*run(capsys, *args))
    assert expected in line


@pytest.mark.unit
def test_unknown_ablation_lists_every_choice(capsys):
    line = assert_one_line_error(*run(capsys, "ablate", "nope"))
    for name in ABLATIONS:
        assert name in line


# --- the verl engine stops with one line before anything is written -----------------------------------

VERL_STOPS = [
    (["sft", "table1/sft-1.7b", "--engine", "verl"], "set data.sft_path"),
    (["train", "table1/sod-1.7b", "--engine", "verl"], "set data.rl_path"),
    (
        [
            "train",
            "table1/sod-1.7b",
            "--engine",
            "verl",
            "data.rl_path=x.parquet",
            "train.log_ratio_clamp=5",
        ],
        "log_ratio_clamp",
    ),
    (["ablate", "no-grpo"], "set data.sft_path"),  # the paper preset runs on verl
    (
        ["train", "table1/sod-1.7b", "--dry-run", "--engine", "local"],
        "--dry-run prepares a verl run",
    ),
]


@pytest.mark.unit
@pytest.mark.parametrize(("args", "needle"), VERL_STOPS, ids=[" ".join(a) for a, _ in VERL_STOPS])
def test_verl_engine_stops_with_one_line(capsys, tmp_path, monkeypatch, args, needle):
    monkeypatch.chdir(tmp_path)
    line = assert_one_line_error(*run(capsys, *args))
    assert needle in line
    assert not list(tmp_path.iterdir())  # nothing written


EVAL_ERRORS = [
    (["eval", "table1/vanilla-1.7b", "--bench", "all", "--k", "4"], "eval.data_dir"),
    (
        [
            "eval",
            "--model",
            "Qwen/Qwen3-0.6B",
            "--bench",
            "aime24,gpqa",
            "eval.data_dir=/nonexistent",
        ],
        "no data at /nonexistent",
    ),
    (["eval", "table1/sod-1.7b"], "no trained model at runs/table1/sod-1.7b/final"),
    (["train", "table1/sod-1.7b", "output_dir=/nonexistent-runs"], "set data.rl_path"),
    (
        ["eval", "--model", "/nonexistent/ckpt", "--bench", "aime25"],
        "is not a directory with a Hugging Face checkpoint",
    ),
]


@pytest.mark.unit
@pytest.mark.parametrize(("args", "needle"), EVAL_ERRORS, ids=[" ".join(a) for a, _ in EVAL_ERRORS])
def test_eval_bad_input_is_one_line(capsys, monkeypatch, args, needle):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    line = assert_one_line_error(*run(capsys, *args))
    assert needle in line


@pytest.mark.unit
def test_train_without_its_sft_model_is_one_line(capsys, tmp_path):
    from rl_fixtures import write_rl_parquet

    rl = write_rl_parquet(tmp_path / "rl.parquet")
    line = assert_one_line_error(
        *run(
            capsys,
            "train",
            "table1/sod-1.7b",
            f"data.rl_path={rl}",
            f"output_dir={tmp_path / 'runs'}",
        )
    )
    assert "train or build it first" in line
    assert not (tmp_path / "runs").exists()  # bad input leaves nothing behind


@pytest.mark.unit
def test_config_errors_come_before_anything_else(capsys):
    line = assert_one_line_error(*run(capsys, "train", "table1/sod-1.7b", "train.lr=-1"))
    assert "'train.lr' must be a positive number" in line


# --- the real console script --------------------------------------------------------------------------


def _script() -> list[str]:
    # The console script installed beside this interpreter (a venv's bin/), never another
    # `sodctl` that PATH happens to find first (a stale one of another Python, say).
    exe = shutil.which("sodctl", path=str(Path(sys.executable).parent))
    if exe:
        return [exe]
    return [sys.executable, "-c", "import sys; from sodctl.cli import main; sys.exit(main())"]


@pytest.mark.integration
@pytest.mark.parametrize(
    "args",
    [["train", "--foo"], ["train", "table1/sod-1.7b", "train.lrr=1"], ["train", "table1/sod-1.7b"]],
    ids=" ".join,
)
def test_console_script_prints_one_line_and_exits_2(args):
    proc = subprocess.run([*_script(), *args], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stdout + proc.stderr
    assert len(proc.stderr.splitlines()) == 1 and proc.stderr.startswith("sodctl")


@pytest.mark.integration
def test_console_script_version():
    proc = subprocess.run([*_script(), "--version"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == f"sodctl {__version__}"


@pytest.mark.integration
def test_python_dash_m_sodctl():
    proc = subprocess.run(
        [sys.executable, "-m", "sodctl", "train", "--foo"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and proc.stderr.startswith("sodctl train: error: No such option")


@pytest.mark.parametrize(
    ("command", "key", "role"),
    [
        (("train", "table1/sod-1.7b"), "data.rl_path", "RL data (data.rl_path)"),
        (("sft", "table1/sft-1.7b"), "data.sft_path", "SFT corpus"),
    ],
)
@pytest.mark.parametrize("content", [b"", b"not parquet at all", None])
def test_a_data_file_that_is_not_parquet_is_one_line(
    capsys, tmp_path, monkeypatch, command, key, role, content
):
    monkeypatch.chdir(tmp_path)  # the tiny preset's output_dir is relative: runs/tiny
    path = tmp_path / "data.parquet"
    if content is not None:
        path.write_bytes(content)
    rc, out, err = run(capsys, *command, "--preset", "tiny", f"{key}={path}")
    message = assert_one_line_error(rc, out, err)
    assert role in message and str(path) in message
    assert ("no such file" if content is None else "cannot read") in message
    assert not (tmp_path / "runs" / "tiny" / "table1").exists()  # no run directory left behind


@pytest.mark.unit
def test_readme_fidelity_table_is_the_codes():
    from pathlib import Path

    from sodctl.engines.verl.compose import fidelity_markdown

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert fidelity_markdown() in readme


@pytest.mark.unit
def test_library_progress_bars_are_quiet_unless_verbose(capsys, monkeypatch):
    import os

    monkeypatch.delenv("HF_HUB_DISABLE_PROGRESS_BARS", raising=False)
    from transformers.utils import logging as hf_logging

    assert run(capsys, "inspect", "presets")[0] == 0
    assert os.environ.get("HF_HUB_DISABLE_PROGRESS_BARS") == "1"
    assert not hf_logging.is_progress_bar_enabled()
    assert run(capsys, "--verbose", "inspect", "presets")[0] == 0
    assert "HF_HUB_DISABLE_PROGRESS_BARS" not in os.environ
    assert hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
