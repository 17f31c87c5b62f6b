"""What every local training stage shares: its run directory, checkpoints, and logging.

Layout (ARCHITECTURE.md)::

    <output_dir>/<experiment>/
      run/                   the run (one per experiment; ``--resume`` continues it)
        config.yaml          resolved configuration
        run.json             seed, argv, versions, git commit
        metrics.jsonl        one line per optimiser step (also sent to W&B)
        samples.jsonl        a bounded sample of trajectories (d_k, w_k, pattern)
        checkpoints/step-N/  model + tokenizer (HF format) and trainer.pt
        wandb/               the offline W&B run, unless W&B is disabled
      final/                 the finished model, HF format: what later stages load

A checkpoint is written to a temporary directory and renamed into place, so a
run killed mid-save keeps its previous checkpoint. ``trainer.pt`` holds the
optimiser, the scheduler, the step, the data cursor and every RNG state, so a
resumed CPU run ends with exactly the weights an uninterrupted one would.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import sys
import time
import weakref
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from sodctl.config import final_model_dir, run_root
from sodctl.errors import SodctlUsageError
from sodctl.runinfo import run_metadata

try:
    import numpy as np
except ImportError:  # pragma: no cover
    np = None  # type: ignore[assignment]


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"python": random.getstate(), "torch": torch.get_rng_state()}
    if np is not None:
        state["numpy"] = np.random.get_state()
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    random.setstate(state["python"])
    torch.set_rng_state(state["torch"])
    if np is not None and "numpy" in state:
        np.random.set_state(state["numpy"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise SodctlUsageError(
            f"engine.device={name} but no CUDA device is available; use engine.device=cpu"
        )
    return torch.device(name)


_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def require_model(path: str | Path) -> None:
    """A one-line ``SodctlUsageError`` unless ``path`` is a directory or shaped like a hub id."""
    path = str(path)
    if not (Path(path).is_dir() or (path.count("/") == 1 and not path.startswith((".", "/")))):
        raise SodctlUsageError(
            f"model {path!r} is not a directory with a Hugging Face checkpoint (nor a hub id like "
            "Qwen/Qwen3-1.7B): train or build it first (see the experiment file's header)"
        )


def load_model(path: str | Path, dtype: str, device: torch.device):
    """``(model, tokenizer)`` from a local Hugging Face directory or a hub id.

    ``dtype`` is ``model.dtype``: ``auto`` keeps the checkpoint's. A missing model or
    weights that cannot be loaded are a one-line ``SodctlUsageError``.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    require_model(path)
    path = str(path)
    try:
        model = AutoModelForCausalLM.from_pretrained(path, dtype=_DTYPES.get(dtype, "auto"))
        tokenizer = AutoTokenizer.from_pretrained(path)
    except OSError as e:  # e.g. a hub id that cannot be fetched offline
        raise SodctlUsageError(f"cannot load model {path!r}: {str(e).splitlines()[0]}") from None
    return model.to(device), tokenizer


def make_scheduler(
    optimizer: torch.optim.Optimizer, kind: str, warmup: int, total: int, decay_ratio: float
):
    """A ``LambdaLR`` over ``total`` optimiser steps: linear warm-up to the base rate over
    ``warmup`` steps, then ``constant``, ``linear`` decay or ``cosine`` decay towards 0, or
    ``wsd`` (warm-up, stable, decay): the base rate until the last ``decay_ratio`` of the
    ``total`` steps, then linear decay towards 0 over those (the last step's rate is
    ``1 / (d + 1)`` of the base for ``d`` decay steps) - a fast constant rate's speed with a
    settled final iterate."""
    decay_steps = max(1, round(decay_ratio * total))

    def factor(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        if kind == "constant":
            return 1.0
        if kind == "wsd":
            return min(1.0, (total - step) / (decay_steps + 1))
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return 0.5 * (1.0 + math.cos(math.pi * progress)) if kind == "cosine" else 1.0 - progress

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


_SPLITS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def logits_split(model) -> tuple[Any, Any] | None:
    """``(base, head)`` when ``model``'s logits are exactly ``head(base(ids).last_hidden_state)``
    (Qwen, Llama and most causal LMs; not those that scale or cap their logits), else None.

    Checked once per model, on a probe of a few tokens, so a model that does more to its
    logits falls back to the full forward instead of being trained on other logits.
    """
    if model not in _SPLITS:
        base, head = getattr(model, "base_model", None), model.get_output_embeddings()
        split = None
        if base is not None and base is not model and head is not None:
            device = next(model.parameters()).device
            probe_1T = torch.arange(min(5, head.weight.shape[0]), device=device)[None]
            with torch.no_grad():
                whole = model(input_ids=probe_1T).logits
                parts = head(base(input_ids=probe_1T).last_hidden_state)
            split = (base, head) if torch.equal(whole, parts) else None
        _SPLITS[model] = split
    return _SPLITS[model]


def logits_at(model, ids_BL: torch.Tensor, pick: Callable[[torch.Tensor], torch.Tensor]):
    """``pick(logits)`` for right-padded ``ids_BL``, the output layer run only on what
    ``pick`` keeps. ``pick`` selects positions (it indexes the first two dimensions only),
    so it applies as well to the hidden states before the output layer (``logits_split``).

    No attention mask: in a right-padded batch a causal model's real tokens never attend
    to the padding after them (and SDPA takes its causal fast path); what the padding's
    own positions hold is the caller's to leave out.
    """
    split = logits_split(model)
    if split is None:
        return pick(model(input_ids=ids_BL).logits)
    base, head = split
    return head(pick(base(input_ids=ids_BL).last_hidden_state))


def peak_mem_gb(device: torch.device) -> float:
    """Peak memory so far in GiB: CUDA's max allocated, else the process's max resident set."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux: KiB


class MetricsLogger:
    """metrics.jsonl always; W&B too unless ``logging.wandb_mode=disabled`` (offline by default)."""

    def __init__(self, run_dir: Path, cfg: DictConfig, *, resume: bool) -> None:
        self.path = run_dir / "metrics.jsonl"
        self.samples_path = run_dir / "samples.jsonl"
        self._wandb = None
        if cfg.logging.wandb_mode != "disabled":
            try:
                import wandb

                os.environ.setdefault("WANDB_SILENT", "true")
                self._wandb = wandb.init(
                    project=cfg.logging.project,
                    entity=cfg.logging.entity,
                    name=cfg.logging.run_name or str(cfg.experiment),
                    mode=cfg.logging.wandb_mode,
                    dir=str(run_dir),
                    config=OmegaConf.to_container(cfg, resolve=True, enum_to_str=True),
                    resume="allow" if resume else None,
                    id=_wandb_id(run_dir),
                    reinit=True,
                )
            except Exception as e:  # logging must never take a run down
                print(
                    f"sodctl: W&B disabled for this run ({type(e).__name__}: {e})", file=sys.stderr
                )
                self._wandb = None

    def log(self, step: int, metrics: Mapping[str, float]) -> None:
        row = {"step": step, **{k: float(v) for k, v in metrics.items()}}
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")
        if self._wandb is not None:
            self._wandb.log(dict(metrics), step=step)

    def log_samples(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            with open(self.samples_path, "a") as f:
                f.writelines(json.dumps(r) + "\n" for r in rows)

    def truncate_after(self, step: int) -> None:
        """On resume: drop lines logged after the checkpoint (they will be logged again)."""
        for path in (self.path, self.samples_path):
            if not path.exists():
                continue
            keep = []
            for line in path.read_text().splitlines():
                try:
                    if json.loads(line).get("step", 0) <= step:
                        keep.append(line)
                except json.JSONDecodeError:
                    break  # a torn last line
            path.write_text("".join(k + "\n" for k in keep))

    def close(self) -> None:
        if self._wandb is not None:
            self._wandb.finish()


def _wandb_id(run_dir: Path) -> str:
    f = run_dir / "wandb-id"
    if not f.exists():
        f.write_text(os.urandom(6).hex())
    return f.read_text().strip()


class RunDir:
    """One training run's directory: config, metadata, checkpoints, the final model."""

    def __init__(self, cfg: DictConfig, *, resume: bool = False) -> None:
        self.cfg = cfg
        self.root = run_root(cfg)
        self.path = self.root / "run"
        self.final = final_model_dir(cfg)
        self.ckpt_dir = self.path / "checkpoints"
        if self.final.exists() and not resume:
            raise SodctlUsageError(
                f"{self.final} exists: this stage already finished (delete {self.root} to run it again)"
            )
        if self.path.exists() and not resume and any(self.ckpt_dir.glob("step-*")):
            raise SodctlUsageError(
                f"{self.path} holds an interrupted run: pass --resume to continue it, or delete {self.root}"
            )
        self.path.mkdir(parents=True, exist_ok=True)
        (self.path / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
        meta = run_metadata(cfg)
        meta["wall_start"] = time.time()
        (self.path / "run.json").write_text(json.dumps(meta, indent=2, default=str))

    def latest_checkpoint(self) -> Path | None:
        steps = sorted(
            (int(p.name.split("-")[1]), p) for p in self.ckpt_dir.glob("step-*") if p.is_dir()
        )
        return steps[-1][1] if steps else None

    def save_checkpoint(
        self, step: int, model, tokenizer, trainer_state: dict[str, Any], keep: int = 2
    ) -> Path:
        """Atomically write ``checkpoints/step-<step>``; keep the newest ``keep``."""
        self.ckpt_dir.mkdir(parents=True, exist_ok=True)
        final = self.ckpt_dir / f"step-{step}"
        tmp = self.ckpt_dir / f".tmp-step-{step}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        torch.save({**trainer_state, "step": step, "rng": rng_state()}, tmp / "trainer.pt")
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        olds = sorted(
            (int(p.name.split("-")[1]), p) for p in self.ckpt_dir.glob("step-*") if p.is_dir()
        )
        for _, p in olds[: max(len(olds) - keep, 0)]:
            shutil.rmtree(p, ignore_errors=True)
        return final

    def load_trainer_state(self, ckpt: Path) -> dict[str, Any]:
        state = torch.load(ckpt / "trainer.pt", weights_only=False)
        set_rng_state(state["rng"])
        return state

    def export_final(self, model, tokenizer) -> Path:
        """The finished model, where later stages look for it (atomic)."""
        tmp = self.root / f".tmp-final-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        os.replace(tmp, self.final)
        return self.final
