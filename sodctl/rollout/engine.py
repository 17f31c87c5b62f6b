"""The generation-engine contract shared by the transformers and vLLM engines.

An engine turns token-id prompts into sampled continuations, each with the
per-token log-probability of every sampled token. The agent loop, evaluation
and RL rollouts depend on this contract only.

Log-prob convention: ``log_probs[i]`` is ``log softmax(logits / temperature)[token_ids[i]]``
- the distribution sampling drew from *before* top-p / top-k truncation. At
temperature 1 this is the policy's log pi(y_t | prefix), which is what the
trainer's ``old_log_probs`` are. Greedy decoding (``temperature=0``) reports
``log softmax(logits)``.

Stop strings: generation of a sequence stops right after the first occurrence
of any stop string in its *new* text; the returned tokens include the tokens
that complete the stop string (nothing after them). EOS tokens end a sequence
too and are included in ``token_ids``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

FinishReason = Literal["stop", "eos", "length"]


@dataclass(frozen=True)
class SamplingParams:
    """How to sample. ``top_k=-1`` and ``top_p=1.0`` disable truncation; ``temperature=0`` is greedy."""

    max_new_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = -1
    stop: tuple[str, ...] = ()
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.max_new_tokens < 0:
            raise ValueError(f"max_new_tokens must be >= 0, got {self.max_new_tokens}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.top_k == 0 or self.top_k < -1:
            raise ValueError(f"top_k must be -1 (off) or >= 1, got {self.top_k}")


@dataclass
class Completion:
    """One sampled continuation.

    token_ids      the new tokens (stop-string and EOS tokens included).
    log_probs      one float per token (see the module docstring).
    text           ``token_ids`` decoded (special tokens kept).
    finish_reason  ``stop`` (a stop string), ``eos`` (an end token), ``length`` (max_new_tokens).
    """

    token_ids: list[int]
    log_probs: list[float]
    text: str
    finish_reason: FinishReason
    stop_string: str | None = field(default=None)


CHAT_END_TOKENS = ("<|im_end|>", "<|endoftext|>")


def end_token_ids(tokenizer, generation_eos: int | Sequence[int] | None = None) -> tuple[int, ...]:
    """The tokens that end a sequence: the tokenizer's EOS, the generation config's, and
    the Qwen chat end tokens when the vocabulary has them. Every engine stops on this set."""
    ids: set[int] = set()
    for source in (tokenizer.eos_token_id, generation_eos):
        if isinstance(source, int):
            ids.add(source)
        elif source:
            ids.update(source)
    vocab = tokenizer.get_vocab()
    ids.update(vocab[tok] for tok in CHAT_END_TOKENS if tok in vocab)
    return tuple(sorted(ids))


@runtime_checkable
class GenerationEngine(Protocol):
    """Anything that samples continuations of token-id prompts, in one batch."""

    @property
    def eos_token_ids(self) -> tuple[int, ...]: ...

    def generate(
        self, prompts: Sequence[Sequence[int]], params: SamplingParams
    ) -> list[Completion]: ...
