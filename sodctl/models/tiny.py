"""Tiny Qwen3-architecture models and a character tokenizer, built locally.

Nothing can be downloaded at run time, so the tiny world (and the tests) make
their own models: a character-level (or small BPE) tokenizer carrying the Qwen3 chat special
tokens and a chat template with the same structure as Qwen3's (tools in the
system turn, Hermes ``<tool_call>`` blocks, tool results as ``<tool_response>``
in a user turn), and randomly initialised ``Qwen3ForCausalLM`` models. Both are
saved and loaded in Hugging Face format exactly like real checkpoints, so every
code path that loads ``Qwen/Qwen3-1.7B`` loads these too.

The template wording is ours; real checkpoints bring their own template.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

# Special tokens of the Qwen3 chat format. The first three are "special" (control
# tokens); the tag tokens are ordinary added tokens, so decoding keeps them.
CONTROL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
TAG_TOKENS = (
    "<tool_call>",
    "</tool_call>",
    "<tool_response>",
    "</tool_response>",
    "<think>",
    "</think>",
)
CHARS = string.ascii_letters + string.digits + string.punctuation + " \n\t"
UNK = "<|unk|>"

# Our own template in Qwen3's structure. transformers renders chat templates with
# trim_blocks, which eats a newline right after a tag: those are written as {{ '\n' }}.
# Ours: `tools` render into the system turn; a run of
# `tool` messages becomes one user turn of <tool_response> blocks.
ToolsStyle = Literal["full", "compact"]

# How the tool schemas appear in the system turn. "full": every schema as JSON, as
# Qwen3 does (about 520 characters for code_interpreter). "compact": one line per tool,
# `name(param, ...)` (about 40): with one token per character the full schemas would
# dominate every tiny-world sequence, so the tiny world's checkpoints use this one.
_TOOLS_BLOCKS: dict[str, str] = {
    "full": (
        "# Tools\nCall a tool by writing its name and arguments as JSON inside <tool_call></tool_call> tags.\n"
        "Available tools:\n<tools>"
        "{% for tool in tools %}{{ '\\n' }}{{ tool | tojson }}{% endfor %}{{ '\\n' }}</tools>"
    ),
    "compact": (
        "# Tools"
        "{% for tool in tools %}{% set fn = tool.function if tool.function is defined else tool %}"
        "{{ '\\n' }}{{ fn.name }}({{ (fn.parameters.properties if fn.parameters is defined else {})"
        " | list | join(', ') }}){% endfor %}"
    ),
}


def chat_template(tools_style: ToolsStyle = "full", between_turns: str = "\n") -> str:
    """The chat template, with the tool schemas rendered in ``tools_style``.

    ``between_turns`` follows every ``<|im_end|>``: a newline, as in Qwen3's template, or
    nothing, the layout verl's agent loop gives an observation turn (it tokenizes the
    tool turn on its own, so no newline follows the assistant's ``<|im_end|>``); a model
    fine-tuned in that layout sees at rollout exactly the tokens it was trained on.
    """
    if "{" in between_turns or "%" in between_turns:
        raise ValueError(f"between_turns must be plain text, got {between_turns!r}")
    template = (
        "{% if tools %}"
        "<|im_start|>system\n"
        "{% if messages and messages[0].role == 'system' %}{{ messages[0].content }}\n\n{% endif %}"
        + _TOOLS_BLOCKS[tools_style]
        + "<|im_end|>\n"
        "{% elif messages and messages[0].role == 'system' %}"
        "<|im_start|>system\n{{ messages[0].content }}<|im_end|>\n"
        "{% endif %}"
        "{% for m in messages %}"
        "{% if m.role == 'system' %}"
        "{% elif m.role == 'tool' %}"
        "{% if loop.first or messages[loop.index0 - 1].role != 'tool' %}<|im_start|>user{% endif %}"
        "{{ '\\n' }}<tool_response>\n{{ m.content }}\n</tool_response>"
        "{% if loop.last or messages[loop.index0 + 1].role != 'tool' %}<|im_end|>\n{% endif %}"
        "{% else %}"
        "<|im_start|>{{ m.role }}\n{{ m.content if m.content is string else '' }}"
        "{% if m.role == 'assistant' and m.tool_calls %}"
        "{% for call in m.tool_calls %}"
        "{% set fn = call.function if call.function is defined else call %}"
        "{% if m.content or not loop.first %}{{ '\\n' }}{% endif %}"
        '<tool_call>\n{"name": "{{ fn.name }}", "arguments": '
        "{{ fn.arguments if fn.arguments is string else fn.arguments | tojson }}}\n</tool_call>"
        "{% endfor %}"
        "{% endif %}"
        "<|im_end|>\n"
        "{% endif %}"
        "{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    return template.replace("<|im_end|>\n", "<|im_end|>" + between_turns)


CHAT_TEMPLATE = chat_template("full")


def build_tokenizer(
    tools_style: ToolsStyle = "full",
    *,
    corpus: Iterable[str] | None = None,
    vocab_size: int = 512,
    between_turns: str = "\n",
):
    """A ``PreTrainedTokenizerFast`` with the Qwen3 chat tokens and template.

    Without ``corpus``: one token per character. With ``corpus``: BPE merges learnt
    from it on top of the characters, up to ``vocab_size`` entries, as a real
    tokenizer is trained on its pretraining text; digits always stay one token each
    (as in Qwen's tokenizer), so numbers are copied digit by digit. Chat and tag
    tokens in the corpus are not learnt from. Training is deterministic.
    ``between_turns``: what the template puts after each ``<|im_end|>`` (see
    :func:`chat_template`).
    """
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    if corpus is None:
        vocab = {UNK: 0}
        for ch in CHARS:
            vocab.setdefault(ch, len(vocab))
        core = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
        core.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    else:
        core = Tokenizer(models.BPE(unk_token=UNK))
        core.pre_tokenizer = pre_tokenizers.Split(Regex(r"\d"), behavior="isolated")
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            min_frequency=2,
            special_tokens=[UNK],
            initial_alphabet=list(CHARS),
            limit_alphabet=len(CHARS),
            show_progress=False,
        )
        chat_tokens = re.compile("|".join(re.escape(t) for t in CONTROL_TOKENS + TAG_TOKENS))
        core.train_from_iterator((chat_tokens.sub("\n", text) for text in corpus), trainer)
    core.decoder = decoders.Fuse()
    tok = PreTrainedTokenizerFast(
        tokenizer_object=core,
        unk_token=UNK,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=list(CONTROL_TOKENS[1:2]),
        clean_up_tokenization_spaces=False,
    )
    tok.add_tokens(list(TAG_TOKENS))
    tok.chat_template = chat_template(tools_style, between_turns)
    return tok


@dataclass(frozen=True)
class TinyModelSpec:
    """Shape of a tiny Qwen3 model. head_dim 64 keeps it servable by vLLM's CPU backend."""

    hidden_size: int = 128
    intermediate_size: int = 256
    num_hidden_layers: int = 2
    num_attention_heads: int = 2
    num_key_value_heads: int = 1
    head_dim: int = 64
    max_position_embeddings: int = 4096


def _spec(hidden: int, layers: int, heads: int, kv_heads: int, ffn: int) -> TinyModelSpec:
    return TinyModelSpec(
        hidden_size=hidden,
        intermediate_size=ffn,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        head_dim=32,
        max_position_embeddings=2048,
    )


# The tiny world's zoo: one shape per size slot of the tiny and smoke presets. The
# teacher slots are larger than the students, as in the paper. Measured on 2 cores
# (SFT at lr 3e-3, batch 64): the 0.8 M shape (the 4b slot) starts copying tool
# results after ~200-250 steps; the smaller ones later, at a seed-dependent step
# (hidden 96 / 3 layers: not by 250 in one run, by ~300 in another). head_dim 32
# keeps them cheap on CPU; vLLM's CPU backend needs head_dim 64, so these are
# served with transformers. Deeper shapes (3-5 layers, 4 heads, init std 0.1) with
# copy-heavy pretraining copied before SFT, but made one seed of the tiny Table 1
# take 45 min instead of 15, and its 1.7b SFT row still failed (issue 12's notes).
TINY_SPECS: dict[str, dict[str, TinyModelSpec]] = {
    "tiny": {
        "0.6b": _spec(64, 2, 2, 1, 192),  # ~0.11 M parameters
        "1.7b": _spec(96, 3, 3, 3, 288),  # ~0.36 M; 3 kv heads: copying is learnt in ~300 steps
        "4b": _spec(128, 4, 4, 2, 384),  # ~0.80 M
        "14b": _spec(160, 4, 4, 2, 480),  # ~1.2 M
    },
    "smoke": {  # plumbing only: never trained far enough to learn anything
        "0.6b": _spec(32, 1, 1, 1, 64),
        "1.7b": _spec(32, 1, 1, 1, 96),
        "4b": _spec(32, 1, 1, 1, 128),
        "14b": _spec(32, 1, 1, 1, 160),
    },
}


def build_model(tokenizer, spec: TinyModelSpec = TinyModelSpec(), *, seed: int = 0):
    """A randomly initialised ``Qwen3ForCausalLM`` sized by ``spec`` (deterministic for a seed)."""
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    config = Qwen3Config(
        vocab_size=len(tokenizer),
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=tokenizer.pad_token_id,
        rope_theta=10000.0,
        **asdict(spec),
    )
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = Qwen3ForCausalLM(config)
    return model.eval()


def create_tiny_checkpoint(
    path: str | Path,
    spec: TinyModelSpec = TinyModelSpec(),
    *,
    seed: int = 0,
    tools_style: ToolsStyle = "full",
    tokenizer=None,
) -> Path:
    """Write a tiny model and its tokenizer (default: a character tokenizer in
    ``tools_style``) to ``path`` in Hugging Face format; returns the path."""
    path = Path(path)
    tok = tokenizer if tokenizer is not None else build_tokenizer(tools_style)
    model = build_model(tok, spec, seed=seed)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def main(argv: list[str] | None = None) -> int:
    """``python -m sodctl.models.tiny OUT_DIR [--seed N]``: write a random tiny Qwen3 checkpoint."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m sodctl.models.tiny", description=main.__doc__)
    ap.add_argument("out", help="directory to write (Hugging Face format)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    print(create_tiny_checkpoint(args.out, seed=args.seed))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
