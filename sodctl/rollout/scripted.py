"""A scripted "model": an engine that emits chosen text, for tests and scripted experts.

``ScriptedEngine(tokenizer, script)`` answers each prompt by calling
``script(prompt_text, turn) -> str`` and returns that text tokenized, as if sampled,
with log-prob 0.0 per token, honouring stop strings and ``max_new_tokens``
exactly as a real engine does. ``turn`` counts the assistant turns already in the
prompt, so a script can play a whole multi-turn trajectory.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sodctl.rollout.engine import Completion, FinishReason, SamplingParams

Script = Callable[[str, int], str]


class ScriptedEngine:
    def __init__(
        self, tokenizer, script: Script, *, assistant_marker: str = "<|im_start|>assistant"
    ) -> None:
        self.tokenizer = tokenizer
        self.script = script
        self.assistant_marker = assistant_marker
        self.eos = tokenizer.convert_tokens_to_ids("<|im_end|>")

    @property
    def eos_token_ids(self) -> tuple[int, ...]:
        return (self.eos,)

    def generate(
        self, prompts: Sequence[Sequence[int]], params: SamplingParams
    ) -> list[Completion]:
        out = []
        for ids in prompts:
            prompt = self.tokenizer.decode(list(ids), skip_special_tokens=False)
            turn = prompt.count(self.assistant_marker) - 1
            text = self.script(prompt, turn)
            reason: FinishReason = "length"
            stop_hit = None
            cut = len(text)
            for s in params.stop:
                i = text.find(s)
                if i >= 0 and i + len(s) < cut:
                    cut, stop_hit = i + len(s), s
            if stop_hit is not None:
                text, reason = text[:cut], "stop"
            ids_new = self.tokenizer(text, add_special_tokens=False)["input_ids"]
            if stop_hit is None and self.eos in ids_new:
                ids_new = ids_new[: ids_new.index(self.eos) + 1]
                reason = "eos"
            if len(ids_new) > params.max_new_tokens:
                ids_new, reason, stop_hit = ids_new[: params.max_new_tokens], "length", None
            out.append(
                Completion(
                    token_ids=ids_new,
                    log_probs=[0.0] * len(ids_new),
                    text=self.tokenizer.decode(ids_new, skip_special_tokens=False),
                    finish_reason=reason,
                    stop_string=stop_hit,
                )
            )
        return out
