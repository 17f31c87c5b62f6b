"""Multi-turn SFT (REFERENCE §7) and the tiny world's pretraining stage, on the local engine.

SFT trains on the tokens the model itself would generate in the agent loop
(``sodctl.rollout.agent``): each assistant turn's content, its tool calls and its
closing end token; never system, user or tool tokens, nor the template tokens
that open a turn (``<|im_start|>assistant\\n``) or follow its end token.

How the assistant spans are found, for any chat template: the conversation is
rendered once; assistant turn i starts where ``messages[:i]`` rendered with the
generation prompt ends (that rendering is a prefix of the whole), and ends with
the first end token after its start (the tokens the generation engines stop on:
``tokenizer.eos_token``, ``<|im_end|>``, ``<|endoftext|>``). Templates that are not
prefix-stable (Qwen3's drops the ``<think>`` part of turns before the last user
query) fall back to finding the i-th assistant's generation prompt in the text.
The text is tokenised piece by piece, so a token never straddles a span border,
just as the agent loop tokenises prompts and observations apart from what the
model generated.

Pretraining (``train_pretrain``): the vanilla rows' base models of the tiny world
are random ``Qwen3ForCausalLM``s; a short stage on tool-free synthetic text
(``data.pretrain_path``, loss on every token, the ``pretrain`` section's recipe)
turns them into base models that know the text. It upgrades ``zoo[size]`` in
place, marked by ``pretrained.json``, so every later stage that resolves the zoo
(vanilla evaluation, SFT, the teachers) starts from the pretrained model with no
config change.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from rich.console import Console

from sodctl.config import run_root
from sodctl.data.corpora import Conversation, pretrain_texts, sft_conversations
from sodctl.engines.local.supervised import Example, OnStep, train_supervised, truncate
from sodctl.errors import SodctlUsageError
from sodctl.rollout.engine import CHAT_END_TOKENS

PRETRAINED_MARKER = "pretrained.json"


def _render(tokenizer, messages: Sequence[dict], tools, *, generation_prompt: bool) -> str:
    return tokenizer.apply_chat_template(
        list(messages), tools=tools or None, tokenize=False, add_generation_prompt=generation_prompt
    )


def assistant_spans(
    tokenizer, messages: Sequence[dict[str, Any]], tools: Sequence[dict] | None = None
) -> tuple[str, list[tuple[int, int]]]:
    """The rendered conversation and the ``[start, end)`` character spans the model generates."""
    vocab = tokenizer.get_vocab()
    end_tokens = {t for t in (tokenizer.eos_token, *CHAT_END_TOKENS) if t and t in vocab}
    text = _render(tokenizer, messages, tools, generation_prompt=False)
    spans: list[tuple[int, int]] = []
    cursor = 0
    for i, message in enumerate(messages):
        if message.get("role") != "assistant":
            continue
        if i == 0:
            raise ValueError("a conversation must not open with an assistant message")
        opened = _render(tokenizer, messages[:i], tools, generation_prompt=True)
        if text.startswith(opened) and len(opened) >= cursor:
            start = len(opened)
        else:  # not prefix-stable: look for the generation prompt itself
            before = _render(tokenizer, messages[:i], tools, generation_prompt=False)
            prompt = opened[len(before) :] if opened.startswith(before) else ""
            found = text.find(prompt, cursor) if prompt else -1
            if found < 0:
                raise ValueError(
                    f"cannot locate assistant message {i} in the rendered conversation"
                )
            start = found + len(prompt)
        ends = [(k, t) for t in end_tokens if (k := text.find(t, start)) >= 0]
        if not ends:
            raise ValueError(f"assistant message {i} does not end with any of {sorted(end_tokens)}")
        end, end_token = min(ends)
        cursor = end + len(end_token)
        spans.append((start, cursor))
    return text, spans


def tokenize_conversation(
    tokenizer,
    messages: Sequence[dict[str, Any]],
    tools: Sequence[dict] | None = None,
    *,
    max_length: int | None = None,
    truncation: str = "right",
) -> tuple[list[int], list[int]]:
    """``(input_ids, loss_mask)`` of a chat: mask 1 exactly on assistant-generated tokens.

    ``max_length`` cuts the sequence (``truncation``: right keeps the start, as the
    paper's SFT does; left keeps the end; error refuses).
    """
    text, spans = assistant_spans(tokenizer, messages, tools)
    ids: list[int] = []
    mask: list[int] = []
    pos = 0
    for start, end in [*spans, (len(text), len(text))]:
        for piece, trained in ((text[pos:start], 0), (text[start:end], 1)):
            if piece:
                piece_ids = tokenizer(piece, add_special_tokens=False)["input_ids"]
                ids += piece_ids
                mask += [trained] * len(piece_ids)
        pos = end
    if max_length is not None:
        ids, mask = truncate(ids, mask, max_length, truncation)
    return ids, mask


def one_call_layouts(
    tokenizer, messages: Sequence[dict[str, Any]], tools: Sequence[dict] | None = None
) -> dict[str, tuple[list[int], int]] | None:
    """A one-call conversation (user, call, tool, answer) laid out two ways around the same
    assistant tokens: ``template``, as SFT tokenizes it, and ``verl``, as a rollout shows it
    (``chat_prompt_ids`` + the call + ``observation_ids(layout="verl")``); each is the ids up
    to the end of the answer and where the answer starts. None for any other conversation."""
    from sodctl.rollout.agent import chat_prompt_ids, observation_ids
    from sodctl.rollout.engine import Completion

    if [m["role"] for m in messages] != ["user", "assistant", "tool", "assistant"]:
        return None
    ids, mask = tokenize_conversation(tokenizer, messages, tools)
    runs: list[tuple[int, list[int]]] = []  # maximal runs of equal mask: (mask, ids)
    for t, m in zip(ids, mask):
        if runs and runs[-1][0] == m:
            runs[-1][1].append(t)
        else:
            runs.append((m, [t]))
    if [m for m, _ in runs][:4] != [0, 1, 0, 1]:
        return None
    call, answer = runs[1][1], runs[3][1]
    eos_ids = [tokenizer.convert_tokens_to_ids("<|im_end|>")]
    first = Completion(call, [0.0] * len(call), tokenizer.decode(call), "eos")
    verl = (
        chat_prompt_ids(tokenizer, messages[:1], tools)
        + call
        + observation_ids(tokenizer, [messages[2]["content"]], first, eos_ids, "verl")
    )
    template = [t for _, r in runs[:3] for t in r]
    return {"template": (template + answer, len(template)), "verl": (verl + answer, len(verl))}


def sft_examples(
    conversations: Sequence[Conversation], tokenizer, sft: DictConfig
) -> list[Example]:
    """Conversations as training examples; those with no assistant token left are dropped."""
    out = []
    for i, conv in enumerate(conversations):
        try:
            ids, mask = tokenize_conversation(
                tokenizer,
                conv.messages,
                conv.tools,
                max_length=sft.max_length,
                truncation=sft.truncation,
            )
        except ValueError as e:  # a template error or a malformed conversation
            raise SodctlUsageError(f"SFT corpus: conversation {i}: {e}") from None
        if any(mask[1:]):
            out.append(Example(ids, mask))
    if not out:
        raise SodctlUsageError("SFT corpus: no conversation has an assistant token to train on")
    return out


def pretrain_examples(texts: Sequence[str], tokenizer, pretrain: DictConfig) -> list[Example]:
    """Each text as one sequence, every token a target (cut at ``pretrain.max_length``)."""
    out = []
    for text in texts:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        ids, mask = truncate(ids, [1] * len(ids), pretrain.max_length, pretrain.truncation)
        if len(ids) > 1:
            out.append(Example(ids, mask))
    if not out:
        raise SodctlUsageError("pretraining text: every row is shorter than two tokens")
    return out


def train_sft(cfg: DictConfig, *, resume: bool = False, on_step: OnStep | None = None) -> Path:
    """Multi-turn SFT of ``model.path`` on the SFT corpus; returns the final model directory."""
    conversations = sft_conversations(cfg)  # bad data fails before the model loads
    return train_supervised(
        cfg,
        "sft",
        lambda tok: sft_examples(conversations, tok, cfg.sft),
        resume=resume,
        on_step=on_step,
    )


def pretrain_config(cfg: DictConfig, size: str) -> DictConfig:
    """The config of pretraining the zoo model of ``size``: experiment ``pretrain-<size>``."""
    out = copy.deepcopy(cfg)
    out.experiment = f"pretrain-{size}"
    OmegaConf.update(out, "model.size", size)
    out.model.path = cfg.zoo[size]
    return out


def train_pretrain(
    cfg: DictConfig,
    *,
    size: str | None = None,
    resume: bool = False,
    on_step: OnStep | None = None,
    console: Console | None = None,
) -> Path:
    """Pretrain the zoo model of ``size`` (default ``model.size``) and install it in its place.

    The run lives in ``<output_dir>/pretrain-<size>/`` like any stage's (checkpoints,
    metrics, ``final/``); the finished model then replaces the zoo directory, with
    ``pretrained.json`` naming the run. A zoo model that holds that file is already
    pretrained: it is left alone. Returns the zoo directory.
    """
    console = console or Console(stderr=True)
    cfg = pretrain_config(cfg, size or cfg.model.size)
    texts = pretrain_texts(cfg)  # bad data fails before anything else
    target = Path(cfg.model.path)
    marker = target / PRETRAINED_MARKER
    if marker.is_file():
        made_by = json.loads(marker.read_text()).get("run", "?")
        console.print(f"pretrain: {target} is already pretrained (by {made_by}); nothing to do")
        return target
    if not target.is_dir():
        raise SodctlUsageError(
            f"zoo[{cfg.model.size}] = {str(target)!r} is not a directory: build the tiny world "
            "first (sodctl data tiny); pretraining upgrades the zoo model in place"
        )
    final = train_supervised(
        cfg,
        "pretrain",
        lambda tok: pretrain_examples(texts, tok, cfg.pretrain),
        resume=resume,
        on_step=on_step,
        console=console,
    )
    _install(final, target, {"run": str(run_root(cfg)), "data": cfg.data.pretrain_path})
    return target


def _install(model_dir: Path, target: Path, record: dict[str, Any]) -> None:
    """Replace ``target`` with a copy of ``model_dir`` plus the marker (a rename at each end)."""
    tmp = target.with_name(f".{target.name}.pretrained-{os.getpid()}")
    old = target.with_name(f".{target.name}.random-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(model_dir, tmp)
    (tmp / PRETRAINED_MARKER).write_text(json.dumps(record, indent=2))
    os.replace(target, old)
    os.replace(tmp, target)
    shutil.rmtree(old, ignore_errors=True)
