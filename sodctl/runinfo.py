"""What every run records about itself, and the one place seeds are set.

``run_metadata`` is written next to a run's outputs (and to the tracker) at
start: the resolved config, the command line, the code version and the library
versions. Versions come from installed package metadata, so recording them
never imports torch, transformers, verl or vLLM.
"""

from __future__ import annotations

import logging
import os
import platform
import random
import socket
import subprocess
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

import sodctl

_VERSIONED = ("sodctl", "torch", "transformers", "verl", "vllm", "omegaconf", "wandb")


def package_versions() -> dict[str, str | None]:
    """Installed versions of the packages that shape a run (``None`` when not installed)."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in _VERSIONED:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_info(path: Path | None = None) -> dict[str, Any] | None:
    """``{"commit", "dirty"}`` of the sodctl checkout, or ``None`` outside a git checkout.

    ``dirty``: tracked files differ from the commit, outside ``results/`` (where runs
    rewrite the committed result tables and summaries: outputs, not code)."""
    where = path if path is not None else Path(sodctl.__file__).resolve().parent

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=where, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()

    try:
        top = Path(git("rev-parse", "--show-toplevel"))
        if path is None and not (top / "sodctl" / "__init__.py").is_file():
            return None  # sodctl installed inside some other repository
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no", "--", ".", ":!results"))
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": dirty}


def cpu_model() -> str:
    """The CPU's model name (Linux: /proc/cpuinfo; else what ``platform`` knows)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict[str, Any]:
    """The machine a result came from: OS, architecture, CPU (and the ATen kernels this
    process runs, once torch is imported: CPU results depend on them), accelerators."""
    info: dict[str, Any] = {
        "system": f"{platform.system()} {platform.machine()}",
        "cpu": cpu_model(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "hostname": socket.gethostname(),
        "gpus": [],
    }
    torch = sys.modules.get("torch")
    if torch is not None:
        info["cpu_capability"] = torch.backends.cpu.get_cpu_capability().lower()
    if torch is not None and torch.cuda.is_available():
        info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return info


def run_metadata(cfg: DictConfig, argv: list[str] | None = None) -> dict[str, Any]:
    """A JSON-serialisable record of what is about to run and with which code."""
    return {
        "config": OmegaConf.to_container(cfg, resolve=True, enum_to_str=True),
        "experiment": cfg.get("experiment"),
        "seed": cfg.get("seed"),
        "argv": list(sys.argv if argv is None else argv),
        "git": git_info(),
        "versions": package_versions(),
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "hostname": socket.gethostname(),
    }


def use_threads(n: int | None, capability: str | None = None) -> None:
    """Let torch use ``n`` CPU threads (``engine.threads``; None leaves torch's default) and
    ATen's ``capability`` kernels (``engine.cpu_capability``; ``use_cpu_capability``), and
    keep the memory a step frees for the next step (``keep_freed_memory``)."""
    keep_freed_memory()
    if capability is not None:
        use_cpu_capability(capability)
    if n is not None:
        import torch

        torch.set_num_threads(int(n))


def use_cpu_capability(capability: str) -> bool:
    """Run ATen's ``capability`` CPU kernels (e.g. avx2) in this process and its children;
    True if they are the ones it runs.

    ATen picks its kernels once, at the process's first tensor operation, from
    ``ATEN_CPU_CAPABILITY`` (else the best the CPU has), so this must come before any. A
    float sum's order, hence the last bit of every result, depends on the choice: a seed on
    an AVX-512 machine reproduces an AVX2 machine's numbers only under avx2. A warning says
    when the kernels could not be had (too late, or not this CPU's), not an error: the run
    is sound, only not bit-identical to runs made with them.
    """
    import torch

    os.environ["ATEN_CPU_CAPABILITY"] = capability
    running = torch.backends.cpu.get_cpu_capability().lower()
    if running == capability.lower():
        return True
    logging.getLogger(__name__).warning(
        "engine.cpu_capability=%s: this process runs ATen's %s kernels (the CPU lacks the "
        "ones asked for, or a tensor operation came first), so its results will differ bit "
        "for bit from runs made with them",
        capability,
        running,
    )
    return False


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)


def keep_freed_memory() -> bool:
    """Tell glibc's allocator to keep freed memory in the process (True if it could).

    By default glibc maps every block above a threshold afresh and hands it back on free,
    and trims the heap's top: a training or decoding step of a small model then
    faults in and zeroes its activations anew each time (an SFT step of the tiny 4b
    slot: 9,000-17,000 page faults, 4-10% of its time; <300 kept). With blocks up to 32 MiB
    (glibc's largest threshold) kept on the heap and the heap never trimmed, the
    process holds its peak memory instead. Results do not change: torch aligns every
    buffer itself. A no-op off glibc.
    """
    try:
        import ctypes

        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (macOS, musl without mallopt)
        return False
    # the mmap threshold first: setting either one fixes both (no dynamic threshold),
    # and a trim threshold alone would leave every large block mapped afresh
    kept = mallopt(_M_MMAP_THRESHOLD, 32 << 20)
    return bool(kept and mallopt(_M_TRIM_THRESHOLD, 1 << 30))


def seed_everything(seed: int, *, deterministic: bool = False) -> None:
    """Seed Python, NumPy (if installed) and torch.

    ``deterministic=True`` also asks torch for deterministic kernels (slower, and
    some CUDA ops then raise); it is off by default, as in the paper's runs.
    """
    random.seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)  # for subprocesses (tool sandboxes, workers)
    try:
        import numpy as np
    except ImportError:
        pass
    else:
        np.random.seed(seed)
    import torch

    torch.manual_seed(seed)  # also seeds every CUDA device
    torch.use_deterministic_algorithms(deterministic)
