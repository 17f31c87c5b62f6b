"""Phase timings of the local RL engine's SOD step at paper-like shapes, on one GPU.

A randomly initialised Qwen3-0.6B-shaped student and Qwen3-4B-shaped teacher (the
published shapes, bf16, built in place: nothing is downloaded) run ``--steps`` SOD steps
of ``--prompts`` x ``--samples`` rollouts of ``--response-tokens`` tokens. Each phase is
timed on its own between ``torch.cuda.synchronize()`` calls, with the peak memory
(``torch.cuda.max_memory_allocated``, reset before the phase):

  rollout     the project's ``HFEngine`` (batched sampling with a KV cache, temperature 1);
              generation only, no agent loop: random models make no tool calls.
              The benchmark's tokenizer stand-in names an end token outside the vocabulary,
              so no sampled token ends a sequence: every response is full length.
  teacher     ``RLTrainer.score`` with the teacher (``response_log_probs`` per mini-batch).
  old_logp    ``RLTrainer.score`` with the policy.
  advantage   ``core.compute_advantages`` with the SOD spec of the ``sod`` method. Random
              models make no tool calls, so the response mask carries a 16-token
              "observation" gap every ``--step-tokens`` tokens (256): steps of 240 tokens.
              Rewards are random +-1 (nothing to grade).
  ppo_update  the engine's ``_ppo_updates`` (clipped surrogate, AdamW, grad-norm clip),
              one optimiser step per ``--mini-batch-prompts`` prompts; gradient
              checkpointing on unless ``--no-grad-checkpointing``.

Tokens/s counts response tokens (prompts x samples x response tokens) per second.

Estimate on one H200 at the defaults (8 x 4 x 2,048 tokens, 3 steps): model build ~0.5 min;
per step rollout ~40-80 s (2,048 sequential decode steps of a 32-row batch in eager
transformers, ~20-40 ms each), teacher scoring ~5 s, old log-probs ~2 s, advantages
< 0.1 s, PPO update ~10 s; about 3-5 minutes in all, well under 8 (``--steps 2`` or
``--response-tokens 1024`` cut the rollout share if a first run is slower). Peak memory
~40-60 GiB: the float32 log-softmax over the 151,936-token vocabulary of a 4-row
mini-batch dominates.

``--device cpu --tiny`` runs the same code path with very small shapes in a few seconds.
Without a CUDA device (and without ``--device cpu``) it prints one line and exits 2.
Run: ``python benchmarks/gpu_local_engine.py [--steps 3] [--response-tokens 2048]``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import torch

SHAPES = {  # the published Qwen3 shapes
    "0.6b": dict(hidden_size=1024, num_hidden_layers=28, num_attention_heads=16, num_key_value_heads=8, head_dim=128, intermediate_size=3072),
    "4b": dict(hidden_size=2560, num_hidden_layers=36, num_attention_heads=32, num_key_value_heads=8, head_dim=128, intermediate_size=9728),
    "tiny-student": dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1, head_dim=32, intermediate_size=128),
    "tiny-teacher": dict(hidden_size=96, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1, head_dim=32, intermediate_size=192),
}  # fmt: skip
QWEN3_VOCAB = 151936
OBS_GAP = 16  # masked "observation" tokens closing every step


class EndlessTokenizer:
    """The little of a tokenizer ``HFEngine`` reads. Its end token is one past the vocabulary,
    so sampling never ends a sequence early (no real tokenizer is available offline)."""

    def __init__(self, vocab_size: int) -> None:
        self.eos_token_id = vocab_size
        self.pad_token_id = 0

    def get_vocab(self) -> dict[str, int]:
        return {}

    def decode(self, ids, skip_special_tokens: bool = False) -> str:
        return ""


def build_model(shape: dict, vocab: int, dtype: torch.dtype, device: torch.device):
    """A randomly initialised Qwen3ForCausalLM, allocated (and initialised) directly on ``device``."""
    from transformers import Qwen3Config, Qwen3ForCausalLM

    config = Qwen3Config(
        vocab_size=vocab, tie_word_embeddings=True, max_position_embeddings=40960, rope_theta=1e6,
        rms_norm_eps=1e-6, bos_token_id=None, eos_token_id=None, pad_token_id=0,
        attn_implementation="sdpa", **shape,
    )  # fmt: skip
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            model = Qwen3ForCausalLM(config)
    finally:
        torch.set_default_dtype(previous)
    return model


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=3, help="SOD steps to time (default 3)")
    ap.add_argument("--prompts", type=int, default=8, help="prompts per step (default 8)")
    ap.add_argument("--samples", type=int, default=4, help="rollouts per prompt (default 4)")
    ap.add_argument(
        "--response-tokens", type=int, default=2048, help="tokens per response (default 2048)"
    )
    ap.add_argument(
        "--prompt-tokens", type=int, default=256, help="tokens per prompt (default 256)"
    )
    ap.add_argument(
        "--step-tokens",
        type=int,
        default=256,
        help="tokens per reasoning step incl. its observation gap (default 256)",
    )
    ap.add_argument(
        "--mini-batch-prompts",
        type=int,
        default=1,
        help="prompts per PPO optimiser step and per scoring chunk (default 1)",
    )
    ap.add_argument(
        "--no-grad-checkpointing", action="store_true", help="train without gradient checkpointing"
    )
    ap.add_argument("--device", default="cuda", help="cuda (default), cuda:N, or cpu (with --tiny)")
    ap.add_argument(
        "--tiny",
        action="store_true",
        help="smoke mode: tiny shapes and a tiny batch, runs on CPU in seconds",
    )
    ap.add_argument("--seed", type=int, default=0)
    return ap.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("gpu_local_engine: no CUDA device available (use --device cpu --tiny for a CPU smoke run)", file=sys.stderr)  # fmt: skip
        return 2
    if args.tiny:
        args.prompts, args.samples = min(args.prompts, 2), min(args.samples, 2)
        args.response_tokens, args.prompt_tokens = (
            min(args.response_tokens, 64),
            min(args.prompt_tokens, 16),
        )
        args.step_tokens = min(args.step_tokens, 24)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository, if not installed
    import sodctl.engines.local.rl as rl
    from sodctl.config import load_config
    from sodctl.engines.local.run import make_scheduler
    from sodctl.methods import METHODS
    from sodctl.rollout.agent import Trajectory
    from sodctl.rollout.engine import SamplingParams
    from sodctl.rollout.hf_engine import HFEngine

    device = torch.device(args.device)
    cuda = device.type == "cuda"
    dtype = torch.bfloat16 if cuda else torch.float32
    vocab = 512 if args.tiny else QWEN3_VOCAB
    s_shape, t_shape = ("tiny-student", "tiny-teacher") if args.tiny else ("0.6b", "4b")
    P, N, R, Lp = args.prompts, args.samples, args.response_tokens, args.prompt_tokens
    B = P * N
    gpu = torch.cuda.get_device_name(device) if cuda else "cpu"
    print(f"env: torch {torch.__version__}, device {gpu}, dtype {str(dtype)[6:]}, student {s_shape}, teacher {t_shape}, vocab {vocab}")  # fmt: skip
    print(f"batch: {P} prompts x {N} samples x {R} response tokens (+{Lp} prompt tokens), steps of {args.step_tokens} tokens, {args.steps} step(s)")  # fmt: skip

    cfg = load_config(None, preset="paper", method="sod", overrides=[
        f"rollout.n={N}", f"train.train_batch_prompts={P}", f"train.ppo_mini_batch_prompts={args.mini_batch_prompts}",
        f"data.max_response_tokens={R}", f"seed={args.seed}", "logging.wandb_mode=disabled",
    ])  # fmt: skip
    spec = rl.advantage_spec(cfg, METHODS["sod"])
    torch.manual_seed(args.seed)
    t0 = time.perf_counter()
    policy = build_model(SHAPES[s_shape], vocab, dtype, device)
    teacher = build_model(SHAPES[t_shape], vocab, dtype, device).eval().requires_grad_(False)
    if not args.no_grad_checkpointing:  # transformers 5 renamed it; 4.x has only the old name
        no_reentrant = {"use_reentrant": False}
        if hasattr(policy, "activation_checkpointing_enable"):
            policy.activation_checkpointing_enable(no_reentrant)
        else:
            policy.gradient_checkpointing_enable(gradient_checkpointing_kwargs=no_reentrant)
    t = cfg.train
    optimizer = torch.optim.AdamW(policy.parameters(), lr=t.lr, betas=tuple(t.betas), weight_decay=t.weight_decay)  # fmt: skip
    sched = make_scheduler(optimizer, "constant", 0, args.steps * P)
    engine = HFEngine(policy, EndlessTokenizer(vocab), max_batch_size=B)
    # what RLTrainer.score and _ppo_updates read from the trainer
    tr = SimpleNamespace(cfg=cfg, device=device, pad_id=0, policy=policy, optimizer=optimizer)
    n_s, n_t = (sum(p.numel() for p in m.parameters()) / 1e6 for m in (policy, teacher))
    print(f"models built in {time.perf_counter() - t0:.1f}s: student {n_s:,.1f}M, teacher {n_t:,.1f}M parameters; grad checkpointing {'off' if args.no_grad_checkpointing else 'on'}")  # fmt: skip

    # the response mask: every step ends in an OBS_GAP-token observation run (mask 0)
    gap = min(OBS_GAP, args.step_tokens // 4)
    mask_row = [0 if (i % args.step_tokens) >= args.step_tokens - gap else 1 for i in range(R)]
    gen = torch.Generator().manual_seed(args.seed)
    phases = ["rollout", "teacher", "old_logp", "advantage", "ppo_update"]
    secs: dict[str, list[float]] = {p: [] for p in phases}
    peak: dict[str, float] = {p: 0.0 for p in phases}

    def timed(name, fn, *a, **kw):
        if cuda:
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
        start = time.perf_counter()
        out = fn(*a, **kw)
        if cuda:
            torch.cuda.synchronize(device)
            peak[name] = max(peak[name], torch.cuda.max_memory_allocated(device) / 2**30)
        secs[name].append(time.perf_counter() - start)
        return out

    for step in range(args.steps):
        prompt_ids = torch.randint(1, vocab, (P, Lp), generator=gen).tolist()
        prompts = [prompt_ids[g] for g in range(P) for _ in range(N)]
        policy.eval()
        params = SamplingParams(
            max_new_tokens=R, temperature=1.0, seed=args.seed * 1_000_003 + step
        )
        completions = timed("rollout", engine.generate, prompts, params)
        short = sum(len(c.token_ids) < R for c in completions)
        if short:
            print(f"warning: {short} of {B} responses ended before {R} tokens")
        trajs = [Trajectory(p, c.token_ids, mask_row[: len(c.token_ids)], c.log_probs) for p, c in zip(prompts, completions)]  # fmt: skip
        T = max(len(x.response_ids) for x in trajs)
        mask_BT = torch.zeros(B, T, dtype=torch.long)
        for b, x in enumerate(trajs):
            mask_BT[b, : len(x.response_mask)] = torch.tensor(x.response_mask)
        mask_BT = mask_BT.to(device)
        teacher_BT = timed("teacher", rl.RLTrainer.score, tr, teacher, prompts, trajs, T)
        old_BT = timed("old_logp", rl.RLTrainer.score, tr, policy, prompts, trajs, T)
        rewards = (torch.randint(0, 2, (B,), generator=gen).float() * 2 - 1).to(device)
        groups = torch.arange(P, device=device).repeat_interleave(N)
        adv = timed(
            "advantage", rl.compute_advantages, spec, rewards_B=rewards, group_ids_B=groups, response_mask=mask_BT,
            old_log_probs=old_BT, teacher_log_probs=teacher_BT, first_error_step_B=torch.full((B,), -1, device=device),
        )  # fmt: skip
        policy.train()
        stats = timed("ppo_update", rl._ppo_updates, tr, prompts, trajs, T, mask_BT, old_BT, teacher_BT, adv, sched)  # fmt: skip
        line = ", ".join(f"{p} {secs[p][-1]:.2f}s" for p in phases)
        print(f"step {step + 1}: {line}; loss {stats['train/loss']:.4f}, steps/traj {adv.metrics['sod/steps_per_traj']:.1f}, w_mean {adv.metrics['sod/w_mean']:.3f}")  # fmt: skip

    tokens = B * R
    print(f"\n{'phase':<12}{'s/step':>10}{'tokens/s':>14}{'peak GiB':>10}")
    for p in phases:
        mean = sum(secs[p]) / len(secs[p])
        print(f"{p:<12}{mean:>10.3f}{tokens / max(mean, 1e-9):>14,.0f}{peak[p] if cuda else float('nan'):>10.2f}")  # fmt: skip
    total = sum(sum(v) for v in secs.values()) / args.steps
    print(f"{'total':<12}{total:>10.3f}{tokens / max(total, 1e-9):>14,.0f}{max(peak.values()) if cuda else float('nan'):>10.2f}")  # fmt: skip
    print("(s/step: mean over steps, the first includes warm-up; tokens/s: response tokens; peak: max_memory_allocated per phase)")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
