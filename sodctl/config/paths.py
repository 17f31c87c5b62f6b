"""Where a resolved experiment keeps its outputs (ARCHITECTURE.md, "Run directory").

``<output_dir>/<experiment>/`` holds one directory per run; a training stage
also exports its finished model to ``<output_dir>/<experiment>/final``, the
path later experiments name (``model.path: ${output_dir}/table1/sft-1.7b/final``).
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

TEACHER_RECIPE = "teacher/"  # the experiments that make the teacher (experiments/teacher/*)


def run_root(cfg: DictConfig) -> Path:
    """The experiment's directory: ``<output_dir>/<experiment>``; the teacher recipe's
    experiments live under ``<teacher_dir>`` instead (``${output_dir}`` unless a
    multi-seed run shares one teacher between its seeds)."""
    experiment = str(cfg.experiment)
    root = cfg.teacher_dir if experiment.startswith(TEACHER_RECIPE) else cfg.output_dir
    return Path(root) / experiment


def final_model_dir(cfg: DictConfig) -> Path:
    """Where the experiment's trained model is exported for later stages."""
    return run_root(cfg) / "final"
