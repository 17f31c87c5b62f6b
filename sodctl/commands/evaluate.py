"""The body of ``sodctl eval``: pick what to evaluate, run it, print the summary."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig
from rich.console import Console
from rich.table import Table

from sodctl.config import final_model_dir
from sodctl.config.schema import SIZES
from sodctl.errors import SodctlUsageError
from sodctl.eval.runner import EvalLabel, model_label, run_eval


def eval_target(
    cfg: DictConfig, *, experiment: str | None, model_opt: str | None
) -> tuple[str, EvalLabel]:
    """What to evaluate and where its results go.

    ``--model PATH|HUB_ID`` evaluates that model (labelled by its name, method
    ``external`` unless an experiment names the method); an experiment without
    ``--model`` evaluates its trained model (``runs/<experiment>/final``; the base
    model for ``vanilla``); neither evaluates the base model of ``model.size``.
    """
    if model_opt is not None and model_opt not in SIZES:
        method = cfg.method.name if experiment else "external"
        return model_opt, EvalLabel(cfg.preset, model_label(model_opt), method, cfg.seed)
    if experiment and cfg.method.stage != "base":
        path = final_model_dir(cfg)
        if not path.exists():
            raise SodctlUsageError(
                f"no trained model at {path}: run the experiment first (sodctl {'sft' if cfg.method.stage == 'sft' else 'train'} {experiment}) or pass --model"
            )
        return str(path), EvalLabel(cfg.preset, cfg.model.size, cfg.method.name, cfg.seed)
    return cfg.model.path, EvalLabel(cfg.preset, cfg.model.size, "vanilla", cfg.seed)


def check_model_path(path: str) -> None:
    looks_local = path.startswith((".", "/", "~")) or Path(path).exists() or path.count("/") != 1
    if looks_local and not Path(path).expanduser().is_dir():
        raise SodctlUsageError(
            f"model {path!r} is not a directory with a Hugging Face checkpoint (nor a hub id like Qwen/Qwen3-1.7B)"
        )


def run(
    cfg: DictConfig,
    *,
    experiment: str | None,
    model_opt: str | None,
    console: Console | None = None,
) -> None:
    import sys

    console = console or Console(width=None if sys.stdout.isatty() else 160)
    path, label = eval_target(cfg, experiment=experiment, model_opt=model_opt)
    check_model_path(path)
    try:
        results = run_eval(cfg, model_path=path, label=label, console=console)
    except OSError as e:  # e.g. a hub id that cannot be fetched offline
        raise SodctlUsageError(f"cannot load model {path!r}: {str(e).splitlines()[0]}") from None
    table = Table(title=f"avg@{cfg.eval.k} of {path}")
    for col in (
        "bench",
        "grader",
        "avg@k %",
        "± stderr",
        "maj@k %",
        "turns",
        "tool err %",
        "tokens",
        "records",
    ):
        table.add_column(col, justify="right" if col not in ("bench", "grader") else "left")
    for r in results:
        s = r.summary
        for g, m in s["graders"].items():
            table.add_row(
                r.bench,
                g,
                f"{m['avg_at_k']:.2f}",
                f"{m['stderr']:.2f}",
                f"{m.get('maj_at_k', float('nan')):.2f}",
                f"{s['mean_turns']:.2f}",
                f"{s['tool_error_rate']:.1f}",
                f"{s['mean_response_tokens']:.0f}",
                str(s["n_records"]),
            )
    console.print(table)
    for r in results:
        console.print(
            f"{r.bench}: {r.new_records} new records -> {r.records_path}; summary {r.summary_path}; {r.summary['tokens_per_s']:.1f} generated tokens/s"
        )
