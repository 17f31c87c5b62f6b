"""CPU speed of the local engine's hot paths, each against the plain way, in one run.

1. Sampling one token per row (``hf_engine.sample_tokens``) against a full sort of the
   vocabulary for top-p and ``torch.multinomial`` (what the engine did before), on a batch
   of rollouts' logits: top-p 0.6 (evaluation) and 1.0 (training rollouts).
2. Decoding: ``HFEngine.generate`` on a tiny model of the tiny world's 0.6b shape, with its
   sampler and with the plain one swapped in (same model, prompts and lengths).
3. Decode steps through ``Qwen3Decoder`` (``HFEngine``'s default for Qwen3 models: the
   same tokens) against the model's own forward, for the 0.6b, 1.7b and 4b slots' shapes,
   on left-padded prompts of mixed lengths.
4. One SFT step (forward + backward over micro-batches) with ``summed_loss`` (no attention
   mask, logits at target positions only) against the full forward with the padding mask
   and every position's logits.
5. One SFT step of the 4b slot's shape with glibc keeping the memory a step frees
   (``runinfo.keep_freed_memory``, as every local-engine process does) against glibc's
   default; each in a fresh process (the setting cannot be undone), with its page faults.

Prints seconds per call and the ratio plain / ours. One torch thread, as the tiny preset
runs. Run: ``python benchmarks/bench_local_speed.py [--batch 64] [--vocab 521]``.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from sodctl.engines.local import supervised
from sodctl.engines.local.supervised import Example, accumulate_gradients
from sodctl.models.tiny import TINY_SPECS, build_model, build_tokenizer
from sodctl.rollout import hf_engine
from sodctl.rollout.engine import SamplingParams
from sodctl.rollout.hf_engine import HFEngine, sample_tokens
from sodctl.runinfo import keep_freed_memory

OURS_LOSS = supervised.summed_loss


def plain_sample(logp_BV: torch.Tensor, top_p: float, top_k: int, generator) -> torch.Tensor:
    """The baseline: sort the whole vocabulary, cut the nucleus, ``torch.multinomial``."""
    if top_p < 1.0:
        sorted_BV, order_BV = torch.sort(logp_BV, dim=-1, descending=True)
        probs_BV = torch.softmax(sorted_BV, dim=-1)
        drop_BV = (torch.cumsum(probs_BV, dim=-1) - probs_BV) >= top_p
        sorted_BV = sorted_BV.masked_fill(drop_BV, float("-inf"))
        logp_BV = torch.empty_like(logp_BV).scatter_(-1, order_BV, sorted_BV)
    probs_BV = torch.softmax(logp_BV, dim=-1)
    return torch.multinomial(probs_BV, 1, generator=generator).squeeze(1)


def plain_summed_loss(model, ids_BT: torch.Tensor, mask_BT: torch.Tensor) -> torch.Tensor:
    """The baseline: the padding mask given, logits at every position, then masked."""
    attn_BT = (ids_BT != model.config.pad_token_id).long()
    logits_BTV = model(input_ids=ids_BT, attention_mask=attn_BT).logits
    keep_BT = mask_BT[:, 1:].bool()
    return F.cross_entropy(logits_BTV[:, :-1][keep_BT], ids_BT[:, 1:][keep_BT], reduction="sum")


def timed(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm-up
    t0 = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - t0) / repeat


def row(name: str, plain_s: float, ours_s: float) -> None:
    print(f"{name:44s} {plain_s * 1e3:9.2f} ms {ours_s * 1e3:9.2f} ms {plain_s / ours_s:6.2f}x")


def sft_step(model, tok) -> Callable[[], None]:
    """One SFT step of 64 tiny-world-like sequences (62-257 tokens, ~40% of them targets)."""
    rng = torch.Generator().manual_seed(1)
    batch = []
    for _ in range(64):
        n = int(torch.randint(62, 258, (1,), generator=rng))
        ids = torch.randint(5, len(tok), (n,), generator=rng).tolist()
        start = n * 3 // 5
        batch.append(Example(ids, [0] * start + [1] * (n - start)))

    def step() -> None:
        accumulate_gradients(model, batch, 8, tok.pad_token_id, torch.device("cpu"))
        model.zero_grad(set_to_none=True)

    return step


def allocator_child(mode: str) -> None:
    """In a fresh process: seconds and page faults of one 4b-shaped SFT step."""
    if mode == "keep":
        keep_freed_memory()
    tok = build_tokenizer()
    step = sft_step(build_model(tok, TINY_SPECS["tiny"]["4b"], seed=0).train(), tok)
    step()
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    seconds = timed(step, 4)
    print(seconds, (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / 5)


def allocator_row(rounds: int = 3) -> None:
    """The two modes' children alternate, ``rounds`` each; the median of each mode."""
    out: dict[str, list[tuple[float, float]]] = {"default": [], "keep": []}
    for _ in range(rounds):
        for mode, runs in out.items():
            child = [sys.executable, __file__, "--allocator-child", mode]
            done = subprocess.run(child, capture_output=True, text=True, check=True)
            seconds, faults = done.stdout.split()
            runs.append((float(seconds), float(faults)))
    (plain_s, plain_f), (ours_s, ours_f) = (sorted(out[m])[rounds // 2] for m in out)
    row(f"SFT step (4b shape), freed memory kept ({rounds} runs)", plain_s, ours_s)
    print(f"{'':44s} page faults a step: {plain_f:,.0f} -> {ours_f:,.0f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=64, help="rows decoded together")
    ap.add_argument("--vocab", type=int, default=521, help="vocabulary (the tiny world: 521)")
    ap.add_argument("--allocator-child", choices=["default", "keep"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.allocator_child:
        return allocator_child(args.allocator_child)
    print(f"{'':44s} {'plain':>12s} {'sodctl':>12s} {'ratio':>7s}")

    gen = torch.Generator().manual_seed(0)
    # peaked rows, as a trained model's are, and flat ones, as an untrained model's
    for label, scale in (("peaked", 4.0), ("flat", 0.5)):
        logp = torch.log_softmax(torch.randn(args.batch, args.vocab, generator=gen) * scale, -1)
        for top_p in (0.6, 1.0):
            row(
                f"sample {args.batch}x{args.vocab}, {label}, top-p {top_p}",
                timed(lambda x=logp, p=top_p: plain_sample(x, p, 0, gen), 200),
                timed(lambda x=logp, p=top_p: sample_tokens(x, p, 0, gen), 200),
            )

    tok = build_tokenizer()
    model = build_model(tok, TINY_SPECS["tiny"]["0.6b"], seed=0)
    engine = HFEngine(model, tok, max_batch_size=args.batch)
    prompts = [tok("Compute 12 * 34 + 5.")["input_ids"]] * args.batch
    params = SamplingParams(temperature=1.0, top_p=0.6, max_new_tokens=48, seed=0)
    ours_s = timed(lambda: engine.generate(prompts, params), 3)
    hf_engine.sample_tokens = plain_sample
    try:
        plain_s = timed(lambda: engine.generate(prompts, params), 3)
    finally:
        hf_engine.sample_tokens = sample_tokens
    row(f"decode {args.batch} rows x 48 tokens (0.6b shape)", plain_s, ours_s)

    texts = ["Compute 12 * 34 + 5.", "What is 7 squared, plus the answer to 3 + 4?", "Add 2."]
    mixed = [tok(texts[i % 3])["input_ids"] for i in range(args.batch)]
    long = SamplingParams(temperature=1.0, top_p=0.6, max_new_tokens=96, seed=0)
    for size in ("0.6b", "1.7b", "4b"):
        slot = build_model(tok, TINY_SPECS["tiny"][size], seed=0)
        fast, plain = (
            HFEngine(slot, tok, max_batch_size=args.batch),
            HFEngine(slot, tok, max_batch_size=args.batch, fast_decode=False),
        )
        row(
            f"decode {args.batch} mixed x 96, Qwen3Decoder ({size})",
            timed(lambda e=plain: e.generate(mixed, long), 3),
            timed(lambda e=fast: e.generate(mixed, long), 3),
        )

    model.train()
    step = sft_step(model, tok)
    ours_s = timed(step, 3)
    supervised.summed_loss = plain_summed_loss
    try:
        plain_s = timed(step, 3)
    finally:
        supervised.summed_loss = OURS_LOSS
    row("SFT step, 64 sequences in micro-batches of 8", plain_s, ours_s)
    allocator_row()


if __name__ == "__main__":
    main()
