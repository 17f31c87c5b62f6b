"""Run metadata and seeding (sodctl.runinfo)."""

from __future__ import annotations

import json
import random
import re
import sys
from datetime import datetime

import numpy as np
import pytest
import torch

from sodctl.config import load_config, resolved_dict
from sodctl.runinfo import git_info, package_versions, run_metadata, seed_everything

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def _restore_env(monkeypatch):
    monkeypatch.setenv("PYTHONHASHSEED", "0")  # seed_everything sets it; monkeypatch restores it


def test_run_metadata_records_config_code_and_environment():
    cfg = load_config("table1/sod-1.7b", preset="tiny", overrides=["seed=7"])
    meta = run_metadata(cfg, argv=["sodctl", "train", "table1/sod-1.7b"])
    json.dumps(meta)  # serialisable as is
    assert meta["config"] == resolved_dict(cfg)
    assert meta["seed"] == 7 and meta["experiment"] == "table1/sod-1.7b"
    assert meta["argv"] == ["sodctl", "train", "table1/sod-1.7b"]
    assert meta["hostname"]
    assert datetime.fromisoformat(meta["timestamp"]).tzinfo is not None
    versions = meta["versions"]
    assert versions["python"] == ".".join(map(str, sys.version_info[:3]))
    assert versions["torch"] and versions["sodctl"]
    assert {"transformers", "verl", "vllm"} <= set(versions)


def test_run_metadata_defaults_to_sys_argv(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["sodctl", "inspect"])
    assert run_metadata(load_config())["argv"] == ["sodctl", "inspect"]


def test_versions_never_import_heavy_packages():
    before = set(sys.modules)
    versions = package_versions()
    assert not {"transformers", "verl", "vllm"} & (set(sys.modules) - before)
    assert all(v is None or isinstance(v, str) for v in versions.values())


def test_git_info_in_and_out_of_a_checkout(tmp_path):
    info = git_info()
    if info is not None:  # running from a git checkout of sodctl
        assert re.fullmatch(r"[0-9a-f]{40}", info["commit"]) and isinstance(info["dirty"], bool)
    assert git_info(tmp_path) is None


def test_rewritten_results_do_not_make_a_checkout_dirty(tmp_path):
    """Runs rewrite committed result files; only code changes count as uncommitted."""
    import subprocess

    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "t.md").write_text("a\n")
    (tmp_path / "code.py").write_text("x = 1\n")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    assert git_info(tmp_path)["dirty"] is False
    (tmp_path / "results" / "t.md").write_text("b\n")
    assert git_info(tmp_path)["dirty"] is False
    (tmp_path / "code.py").write_text("x = 2\n")
    assert git_info(tmp_path)["dirty"] is True


def _draws() -> tuple[float, float, list[float]]:
    return random.random(), float(np.random.rand()), torch.rand(3).tolist()


def test_seed_everything_makes_draws_repeat():
    seed_everything(123)
    first = _draws()
    seed_everything(123)
    assert _draws() == first
    seed_everything(124)
    assert _draws() != first


def test_deterministic_algorithms_are_off_unless_asked():
    try:
        seed_everything(0, deterministic=True)
        assert torch.are_deterministic_algorithms_enabled()
        seed_everything(0)
        assert not torch.are_deterministic_algorithms_enabled()
    finally:
        torch.use_deterministic_algorithms(False)


_STEPS_FAULTS = """
import resource, sys
import torch
if sys.argv[1] == "keep":
    from sodctl.runinfo import keep_freed_memory
    assert keep_freed_memory()
def step():  # a small model's step: blocks of many sizes (1-23 MiB), all freed at its end
    xs = [torch.ones(n << 18) for n in (3, 17, 5, 9, 23, 1)]
    return sum(float(x[0]) for x in xs)
step()
f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    step()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_keep_freed_memory_stops_steps_faulting_their_memory_in_again():
    import subprocess

    def faults(mode: str) -> int:
        out = subprocess.run(
            [sys.executable, "-c", _STEPS_FAULTS, mode], capture_output=True, text=True, check=True
        )
        return int(out.stdout)

    kept, default = faults("keep"), faults("default")
    # 20 steps of 58 MiB: by default most of it is mapped and faulted in again each step
    assert kept * 3 < default, (kept, default)


_CAPABILITY = """
import logging, subprocess, sys
import torch
from sodctl.runinfo import machine_info, use_cpu_capability
logging.basicConfig(level=logging.WARNING, format="%(message)s")
chosen = use_cpu_capability("default")  # before any tensor operation: taken
torch.ones(8).sum()
late = use_cpu_capability(sys.argv[1])  # after one: ATen has chosen, a warning says so
child = subprocess.run(  # a step's process runs what was asked, from its first operation
    [sys.executable, "-c", "import torch; print(torch.backends.cpu.get_cpu_capability())"],
    capture_output=True, text=True, check=True,
).stdout.strip()
print(chosen, late, torch.backends.cpu.get_cpu_capability(), child, machine_info()["cpu_capability"])
"""


def test_cpu_capability_is_taken_before_the_first_operation_and_inherited():
    import subprocess

    best = subprocess.run(
        [sys.executable, "-c", "import torch; print(torch.backends.cpu.get_cpu_capability())"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    if best == "DEFAULT":
        pytest.skip("this CPU has no vector kernels to choose between")
    out = subprocess.run(
        [sys.executable, "-c", _CAPABILITY, best.lower()], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "False", "DEFAULT", best, "default"]
    assert f"engine.cpu_capability={best.lower()}: this process runs ATen's default" in out.stderr
