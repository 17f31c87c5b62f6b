"""Does a tiny SFT'd model copy the tool's result under the rollout's token layout?

SFT sequences are rendered by the chat template, which closes every turn with
``<|im_end|>`` and a newline; rollouts use the released verl layout
(``sodctl.rollout.agent.observation_ids(layout="verl")``), where the observation turn
follows ``<|im_end|>`` with no newline. A real Qwen3 checkpoint does not care; a tiny
model's copying may. For each single-call expert trajectory of an SFT file, this
builds the sequence both ways with the project's own code (``tokenize_conversation``, as
SFT trains on it; ``chat_prompt_ids`` + ``observation_ids(layout="verl")``, as a rollout
lays it out, around the same assistant tokens) and counts, under teacher forcing, how often the
model's greedy answer tokens (the final ``\\boxed{...}``) are not the expert's.

    python benchmarks/tiny_layout_probe.py --sft runs/tiny/world/sft.parquet \\
        runs/tiny/table1/sft-1.7b/final runs/tiny/table1/sft-0.6b/final

Measured at stop 20 (a held-out seed-7 world's SFT file, 247 trajectories, share of
wrong greedy answers, template layout vs verl layout): 1.7B SFT seed 3 21.9% vs 60.7%,
seed 2 18.6% vs 19.4%, seed 42 22.3% vs 52.2%; 0.6B SFT seed 1 20.6% vs 70.4%.
On world v5 (the zoo's template puts nothing after ``<|im_end|>``) the two layouts are the
same tokens: 1.7B SFT seed 42, 3.2% vs 3.2% (its own world's SFT file, 63 trajectories).
"""

from __future__ import annotations

import argparse

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from sodctl.commands.common import load
from sodctl.data.corpora import sft_conversations
from sodctl.engines.local.sft import one_call_layouts


def wrong_answers(model_dir: str, conversations) -> dict[str, float]:
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    wrong = {"template": 0, "verl": 0}
    n = 0
    for conv in conversations:
        both = one_call_layouts(tok, conv.messages, conv.tools)
        if both is None:
            continue
        n += 1
        for name, (ids, start) in both.items():
            with torch.no_grad():
                logits = model(torch.tensor([ids])).logits[0]
            greedy = logits[start - 1 : len(ids) - 1].argmax(-1).tolist()
            wrong[name] += greedy != ids[start:]
    return {**{k: v / max(1, n) for k, v in wrong.items()}, "n": n}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sft", required=True, help="an SFT parquet (messages, tools)")
    ap.add_argument("--limit", type=int, default=300)
    ap.add_argument("models", nargs="+")
    args = ap.parse_args()
    torch.set_num_threads(1)
    cfg = load(None, [f"data.sft_path={args.sft}", f"data.limit={args.limit}"], preset="tiny")
    conversations = sft_conversations(cfg)
    for d in args.models:
        r = wrong_answers(d, conversations)
        print(
            f"{d}: greedy answer wrong, template {100 * r['template']:.1f}% "
            f"vs verl layout {100 * r['verl']:.1f}% (n={r['n']})",
            flush=True,
        )


if __name__ == "__main__":
    main()
