"""The supervised training loop shared by SFT and the tiny world's pretraining stage.

Next-token cross-entropy on the tokens an example's ``loss_mask`` marks, averaged
over every marked token of the optimiser batch (verl's SFT "token-mean"): each
micro-batch's summed loss is divided by the whole batch's token count before
``backward``, so gradient accumulation gives the gradient of one big batch.

Data order: every epoch is a fresh permutation drawn from its own generator
(seeded by ``seed`` and the epoch), so the data cursor (epoch, position) is all a
checkpoint needs to continue the order, and a resumed CPU run ends with exactly
the weights of an uninterrupted one. Each epoch holds ``len(examples) //
batch_size`` batches (the remainder is left out, as with a drop-last sampler). A run
is ``max_steps`` steps long when that is set (epochs follow one another as long as
needed, as in the RL loop), else ``epochs`` epochs; the schedule spans the run.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from rich.console import Console
from rich.progress import Progress

from sodctl.config.schema import max_steps_of
from sodctl.engines.local.run import (
    MetricsLogger,
    RunDir,
    load_model,
    logits_at,
    make_scheduler,
    peak_mem_gb,
    require_model,
    resolve_device,
)
from sodctl.errors import SodctlUsageError
from sodctl.progress import progress_bar
from sodctl.runinfo import seed_everything, use_threads

OnStep = Callable[[int, dict[str, float]], None]


@dataclass(frozen=True)
class Example:
    """One training sequence; ``loss_mask[t] = 1`` where token t is a target."""

    input_ids: list[int]
    loss_mask: list[int]

    @property
    def n_targets(self) -> int:
        return sum(self.loss_mask[1:])  # the first token is never predicted


def truncate(
    ids: list[int], mask: list[int], max_length: int, how: str
) -> tuple[list[int], list[int]]:
    """Fit a sequence to ``max_length`` tokens: keep its start (right), its end (left), or refuse."""
    if len(ids) <= max_length:
        return ids, mask
    if how == "error":
        raise SodctlUsageError(
            f"a training sequence has {len(ids)} tokens, more than max_length={max_length} "
            "(raise it, or set truncation=right)"
        )
    if how == "left":
        return ids[-max_length:], mask[-max_length:]
    return ids[:max_length], mask[:max_length]


def epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    """The shuffled example order of one epoch (independent of every global RNG)."""
    gen = torch.Generator().manual_seed(seed * 100_003 + epoch)
    return torch.randperm(n, generator=gen).tolist()


def collate(
    examples: Sequence[Example], pad_id: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ``(ids_BT, mask_BT)``, T the longest example (dynamic padding)."""
    T = max(len(e.input_ids) for e in examples)
    ids_BT = torch.full((len(examples), T), pad_id, dtype=torch.long)
    mask_BT = torch.zeros((len(examples), T), dtype=torch.long)
    for b, e in enumerate(examples):
        n = len(e.input_ids)
        ids_BT[b, :n] = torch.tensor(e.input_ids)
        mask_BT[b, :n] = torch.tensor(e.loss_mask)
    return ids_BT.to(device), mask_BT.to(device)


def summed_loss(model, ids_BT: torch.Tensor, mask_BT: torch.Tensor):
    """Sum of the cross-entropies of the masked targets, from right-padded ``ids_BT``.

    Logits only where a target is (``logits_at``: the output layer on ~40% of a tiny-world
    batch's positions).
    """
    on_cuda = ids_BT.device.type == "cuda"
    keep_BT = mask_BT[:, 1:].bool()  # position t predicts token t + 1
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=on_cuda):
        logits_NV = logits_at(model, ids_BT, lambda x_BTD: x_BTD[:, :-1][keep_BT])
    return F.cross_entropy(logits_NV.float(), ids_BT[:, 1:][keep_BT], reduction="sum")


def accumulate_gradients(
    model, batch: Sequence[Example], micro_batch_size: int | None, pad_id: int, device
) -> float:
    """Forward/backward over ``batch`` in micro-batches; returns the batch's mean loss."""
    n_targets = max(sum(e.n_targets for e in batch), 1)
    by_length = sorted(batch, key=lambda e: len(e.input_ids))  # less padding per micro-batch
    size = micro_batch_size or len(batch)
    total = 0.0
    for i in range(0, len(by_length), size):
        ids_BT, mask_BT = collate(by_length[i : i + size], pad_id, device)
        loss = summed_loss(model, ids_BT, mask_BT) / n_targets
        loss.backward()
        total += loss.item()
    return total


@contextmanager
def _quiet_transformers() -> Iterator[None]:
    """No tqdm bars from transformers' loading and saving under our own progress bar."""
    from transformers.utils import logging as hf_logging

    was = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            hf_logging.enable_progress_bar()


class _Trainer:
    """The state of one supervised run: model, optimiser, schedule, data cursor."""

    def __init__(self, cfg: DictConfig, section: str, model, pad_id: int, examples: list[Example]):
        self.cfg, self.opt = cfg, cfg[section]
        self.model, self.pad_id, self.examples = model, pad_id, examples
        self.device = next(model.parameters()).device
        self.batch_size = min(self.opt.batch_size, len(examples))
        self.per_epoch = len(examples) // self.batch_size
        self.horizon = max_steps_of(cfg, section) or self.per_epoch * self.opt.epochs
        self.optimizer = torch.optim.AdamW(
            model.parameters(),
            lr=self.opt.lr,
            betas=tuple(self.opt.betas),
            weight_decay=self.opt.weight_decay,
        )
        warmup = int(self.opt.warmup_ratio * self.horizon)
        self.scheduler = make_scheduler(
            self.optimizer, self.opt.lr_schedule, warmup, self.horizon, self.opt.decay_ratio
        )
        self.step, self.epoch, self.pos = 0, 0, 0
        self.order = epoch_order(len(examples), cfg.seed, 0)

    def state(self) -> dict[str, Any]:
        """What a checkpoint holds besides the weights (``RunDir`` adds the step and RNG)."""
        return {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "cursor": {
                "epoch": self.epoch,
                "position": self.pos,
                "n_examples": len(self.examples),
                "batch_size": self.batch_size,
            },
        }

    def restore(self, state: dict[str, Any], where: Path) -> None:
        cursor = state["cursor"]
        if (cursor["n_examples"], cursor["batch_size"]) != (len(self.examples), self.batch_size):
            raise SodctlUsageError(
                f"cannot resume from {where}: it saw {cursor['n_examples']} examples in batches "
                f"of {cursor['batch_size']}, this run has {len(self.examples)} in batches of "
                f"{self.batch_size}"
            )
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.step, self.epoch, self.pos = state["step"], cursor["epoch"], cursor["position"]
        self.order = epoch_order(len(self.examples), self.cfg.seed, self.epoch)

    def train_step(self) -> dict[str, float]:
        """One optimiser step on the next batch; returns its metrics."""
        if self.pos == self.per_epoch:
            self.epoch, self.pos = self.epoch + 1, 0
            self.order = epoch_order(len(self.examples), self.cfg.seed, self.epoch)
        start = self.pos * self.batch_size
        batch = [self.examples[i] for i in self.order[start : start + self.batch_size]]
        lr = self.scheduler.get_last_lr()[0]
        t0 = time.perf_counter()
        loss = accumulate_gradients(
            self.model, batch, self.opt.micro_batch_size, self.pad_id, self.device
        )
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.opt.grad_clip)
        if math.isfinite(grad_norm.item()):
            self.optimizer.step()  # a non-finite gradient skips the update, as verl does
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        dt = time.perf_counter() - t0
        self.step, self.pos = self.step + 1, self.pos + 1
        return {
            "train/loss": loss,
            "train/lr": lr,
            "train/grad_norm": grad_norm.item(),
            "train/tokens": sum(e.n_targets for e in batch),
            "train/epoch": self.epoch + self.pos / self.per_epoch,
            "perf/step_time_s": dt,
            "perf/tokens_per_s": sum(len(e.input_ids) for e in batch) / dt,
            "perf/peak_mem_gb": peak_mem_gb(self.device),
        }


def _progress(console: Console) -> Progress:
    return progress_bar("{task.description}", "loss {task.fields[loss]}", console=console)


def train_supervised(
    cfg: DictConfig,
    section: str,
    make_examples: Callable[[Any], list[Example]],
    *,
    resume: bool = False,
    on_step: OnStep | None = None,
    console: Console | None = None,
) -> Path:
    """Train ``cfg.model.path`` on ``make_examples(tokenizer)`` with the ``cfg[section]`` recipe.

    ``section`` is ``sft`` or ``pretrain`` (both ``SftConfig``). Returns the final model
    directory (``RunDir.final``); with ``resume``, a run whose final model exists
    returns it at once. ``on_step(step, metrics)`` runs after every step.
    """
    console = console or Console(stderr=True)
    require_model(cfg.model.path)
    run = RunDir(cfg, resume=resume)
    if run.final.exists():
        console.print(f"{section}: {run.final} exists: already finished")
        return run.final
    seed_everything(cfg.seed)
    use_threads(cfg.engine.threads, cfg.engine.cpu_capability)
    device = resolve_device(cfg.engine.device)
    ckpt = run.latest_checkpoint() if resume else None
    # "auto" trains float32 master weights (bf16 autocast on CUDA), as verl's SFT does.
    dtype = "float32" if cfg.model.dtype == "auto" else cfg.model.dtype
    with _quiet_transformers():
        model, tokenizer = load_model(ckpt or cfg.model.path, dtype, device)
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        tr = _Trainer(cfg, section, model, pad_id, make_examples(tokenizer))
        if ckpt is not None:
            tr.restore(run.load_trainer_state(ckpt), ckpt)
        logger = MetricsLogger(run.path, cfg, resume=ckpt is not None)
        logger.truncate_after(tr.step)  # lines a killed run logged after its last checkpoint
        console.print(
            f"{section}: {len(tr.examples)} sequences, {tr.horizon} steps of {tr.batch_size} "
            f"({tr.per_epoch} per epoch){f', resuming after step {tr.step}' if tr.step else ''}; "
            f"run dir {run.path}"
        )
        try:
            model.train()
            with _progress(console) as progress:
                task = progress.add_task(section, total=tr.horizon, completed=tr.step, loss="-")
                while tr.step < tr.horizon:
                    metrics = tr.train_step()
                    if tr.step % cfg.logging.log_every == 0 or tr.step == tr.horizon:
                        logger.log(tr.step, metrics)
                    if (
                        tr.opt.save_every
                        and tr.step % tr.opt.save_every == 0
                        and tr.step < tr.horizon
                    ):
                        run.save_checkpoint(
                            tr.step, model, tokenizer, tr.state(), keep=tr.opt.keep_checkpoints
                        )
                    progress.update(task, completed=tr.step, loss=f"{metrics['train/loss']:.4f}")
                    if on_step is not None:
                        on_step(tr.step, metrics)
            return run.export_final(model, tokenizer)
        finally:
            logger.close()
