"""Does a tiny SFT'd model copy the tool's result under the rollout's token layout?

SFT sequences are rendered by the chat template, which closes every turn with
``<|im_end|>`` and a newline; rollouts use the released verl layout
(``sodctl.rollout.agent.observation_ids(layout="verl")``), where the observation turn
follows ``<|im_end|>`` with no newline. A real Qwen3 checkpoint does not care; a tiny
model's copying may. For each single-call expert trajectory of an SFT file, this
renders the sequence both ways and counts, under teacher forcing, how often the
model's greedy answer tokens (the final ``\\boxed{...}``) are not the expert's.

    python benchmarks/tiny_layout_probe.py --sft runs/tiny/world/sft.parquet \\
        runs/tiny/table1/sft-1.7b/final runs/tiny/table1/sft-0.6b/final

Measured at stop 20 (a held-out seed-7 world's SFT file, 247 trajectories, share of
wrong greedy answers, template layout vs verl layout): 1.7B SFT seed 3 21.9% vs 60.7%,
seed 2 18.6% vs 19.4%, seed 42 22.3% vs 52.2%; 0.6B SFT seed 1 20.6% vs 70.4%.
"""

from __future__ import annotations

import argparse
import json

import pandas as pd
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

CHAT_GAP = "<|im_end|>\n<|im_start|>user"
VERL_GAP = "<|im_end|><|im_start|>user"


def _message(m: dict) -> dict:
    m = dict(m)
    if m.get("tool_calls") is None:
        m.pop("tool_calls", None)
    else:
        m["tool_calls"] = [dict(c) for c in m["tool_calls"]]
    return m


def render(tok, messages: list[dict], tools: list[dict], layout: str) -> str:
    text = tok.apply_chat_template(messages, tools=tools, tokenize=False)
    if layout == "verl":  # only the response side: the prompt is rendered as the template does
        prompt, sep, response = text.partition("<|im_start|>assistant\n")
        text = prompt + sep + response.replace(CHAT_GAP, VERL_GAP)
    return text


def wrong_answers(model_dir: str, rows: pd.DataFrame) -> dict[str, float]:
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    out = {}
    for layout in ("template", "verl"):
        wrong = n = 0
        for _, r in rows.iterrows():
            messages = [_message(m) for m in r["messages"]]
            if len(messages) != 4:  # one tool call, then the answer
                continue
            ids = tok(render(tok, messages, json.loads(r["tools"]), layout))["input_ids"]
            answer = tok(messages[-1]["content"])["input_ids"]
            start = len(ids) - 2 - len(answer)  # the sequence ends: answer, <|im_end|>, "\n"
            if ids[start : start + len(answer)] != answer:
                continue
            with torch.no_grad():
                logits = model(torch.tensor([ids])).logits[0]
            greedy = logits[start - 1 : start - 1 + len(answer)].argmax(-1).tolist()
            wrong += greedy != answer
            n += 1
        out[layout] = wrong / max(1, n)
        out["n"] = n
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sft", required=True, help="an SFT parquet (messages, tools)")
    ap.add_argument("--limit", type=int, default=300)
    ap.add_argument("models", nargs="+")
    args = ap.parse_args()
    torch.set_num_threads(1)
    rows = pd.read_parquet(args.sft).iloc[: args.limit]
    for d in args.models:
        r = wrong_answers(d, rows)
        print(
            f"{d}: greedy answer wrong, template {100 * r['template']:.1f}% "
            f"vs verl layout {100 * r['verl']:.1f}% (n={r['n']})",
            flush=True,
        )


if __name__ == "__main__":
    main()
