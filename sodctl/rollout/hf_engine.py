"""The transformers generation engine: batched sampling with a KV cache, CPU or GPU.

Prompts of a batch are left-padded and decoded together, one token per forward
pass, through the model's KV cache (for Qwen3 models through ``Qwen3Decoder``:
the same logits, bit for bit on CPU, for less overhead). Sampling follows ``SamplingParams``
(temperature, top-p, top-k, stop strings, a seed); the log-prob reported for
each token is ``log_softmax(logits / temperature)`` of the sampled token, before
top-p/top-k truncation (the contract in ``engine.py``). With the same seed, the
same prompts in the same batch order give the same tokens.

Also here: ``sequence_log_probs``, the per-token log-probs of given sequences
under any causal LM in one batched forward pass, in chunks to bound memory -
the teacher's scores of the student's tokens.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence

import torch
from torch import Tensor

from sodctl.rollout.engine import Completion, FinishReason, SamplingParams, end_token_ids
from sodctl.rollout.qwen3_decode import Qwen3Decoder


def _cache_kwarg(model) -> str:
    """transformers 5 names the KV-cache argument ``cache``; 4.x called it ``past_key_values``."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def _cache_of(outputs):
    """The KV cache a forward returned (``cache`` in transformers 5, ``past_key_values`` in 4.x)."""
    return outputs["cache"] if "cache" in outputs else outputs["past_key_values"]


def nucleus(logp_BV: Tensor, top_p: float, top_k: int) -> tuple[Tensor, Tensor | None]:
    """The tokens a draw may pick, and their renormalised probabilities: ``(probs_BM, ids_BM)``.

    ``logp_BV`` holds log-probabilities (rows of ``log_softmax``). The top-k tokens are
    kept (``top_k`` > 0), and of those the top-p nucleus: a token is dropped when the
    mass before it, in descending order, already reaches ``top_p`` (the first always
    stays). ``ids_BM`` is None when every token is a candidate (no truncation).

    Only the head of each row is sorted where that suffices: when the m most likely tokens
    (m = 8, else 64) reach ``top_p`` in every row they hold the whole nucleus, since every
    token past them has at least ``top_p`` before it - the set a full sort gives, at a
    fraction of its cost (on CPU, sorting 64 rows of 521 costs ~20x a top-8). Flat rows
    (an untrained model's) fall through to the full sort.
    """
    V = logp_BV.shape[-1]
    k = top_k if 0 < top_k < V else V
    if top_p >= 1.0 and k == V:
        return logp_BV.exp(), None
    # the top-k renormalisation: log of the kept mass (0 when nothing is cut)
    log_z_B1 = torch.logsumexp(torch.topk(logp_BV, k).values, -1, keepdim=True) if k < V else 0.0
    for m in sorted({min(k, 8), min(k, 64), k}) if top_p < 1.0 else (k,):
        head_BM, ids_BM = torch.topk(logp_BV, m, dim=-1)  # sorted, most likely first
        probs_BM = (head_BM - log_z_B1).exp()
        if m == k or bool((probs_BM.sum(-1) >= top_p).all()):
            break
    if top_p < 1.0:
        probs_BM = probs_BM.masked_fill(torch.cumsum(probs_BM, -1) - probs_BM >= top_p, 0.0)
    return probs_BM, ids_BM


def sample_tokens(logp_BV: Tensor, top_p: float, top_k: int, generator: torch.Generator) -> Tensor:
    """One token per row from the ``nucleus`` of ``logp_BV``: one uniform number per row,
    read through the candidates' cumulative mass (inverse CDF; cheaper on CPU than
    ``torch.multinomial``'s exponential draw over the whole vocabulary)."""
    probs_BM, ids_BM = nucleus(logp_BV, top_p, top_k)
    cdf_BM = torch.cumsum(probs_BM, -1)
    total_B1 = cdf_BM[:, -1:]
    u_B1 = torch.rand(total_B1.shape, generator=generator, device=total_B1.device)
    # strictly below the total, so the token found always has mass: cdf[j-1] <= x < cdf[j]
    x_B1 = torch.minimum(u_B1 * total_B1, torch.nextafter(total_B1, torch.zeros_like(total_B1)))
    pick_B1 = torch.searchsorted(cdf_BM, x_B1, right=True).clamp(max=cdf_BM.shape[-1] - 1)
    return (pick_B1 if ids_BM is None else ids_BM.gather(1, pick_B1)).squeeze(1)


class HFEngine:
    """Generation with a ``transformers`` causal LM (``GenerationEngine`` protocol).

    ``fast_decode`` (default): a Qwen3 model decodes through ``Qwen3Decoder``, the same
    logits for less overhead; any other model, or ``fast_decode=False``, through its forward.
    """

    def __init__(
        self, model, tokenizer, *, max_batch_size: int = 64, fast_decode: bool = True
    ) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.max_batch_size = max_batch_size
        self.fast_decode = fast_decode and Qwen3Decoder.supports(self.model)
        self._cache_kw = _cache_kwarg(model)
        self._eos = end_token_ids(tokenizer, getattr(model.generation_config, "eos_token_id", None))
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self._eos[0]

    @classmethod
    def from_pretrained(
        cls, path: str, *, dtype: str = "auto", device: str = "auto", **kwargs
    ) -> HFEngine:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        dev = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
        torch_dtype = {
            "auto": "auto",
            "float32": torch.float32,
            "bfloat16": torch.bfloat16,
            "float16": torch.float16,
        }[dtype]
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype).to(dev)
        return cls(model, AutoTokenizer.from_pretrained(path), **kwargs)

    @property
    def eos_token_ids(self) -> tuple[int, ...]:
        return self._eos

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def generate(
        self, prompts: Sequence[Sequence[int]], params: SamplingParams
    ) -> list[Completion]:
        gen = torch.Generator(device=self.device)
        gen.manual_seed(params.seed if params.seed is not None else int(torch.seed() % 2**63))
        out: list[Completion] = []
        for i in range(0, len(prompts), self.max_batch_size):
            out += self._generate_batch(prompts[i : i + self.max_batch_size], params, gen)
        return out

    @torch.inference_mode()
    def _generate_batch(
        self, prompts: Sequence[Sequence[int]], params: SamplingParams, gen: torch.Generator
    ) -> list[Completion]:
        B = len(prompts)
        dev = self.device
        L = max(len(p) for p in prompts)
        if L == 0:
            raise ValueError("every prompt needs at least one token")
        ids_BL = torch.full((B, L), self.pad_id, dtype=torch.long, device=dev)
        attn_BL = torch.zeros((B, L), dtype=torch.long, device=dev)
        for b, p in enumerate(prompts):
            if p:
                ids_BL[b, L - len(p) :] = torch.tensor(list(p), dtype=torch.long, device=dev)
                attn_BL[b, L - len(p) :] = 1
        pos_BL = (attn_BL.cumsum(-1) - 1).clamp(min=0)
        eos_E = torch.tensor(self._eos, device=dev)
        new_ids: list[list[int]] = [[] for _ in range(B)]
        new_lps: list[list[float]] = [[] for _ in range(B)]
        reasons: list[FinishReason | None] = [None] * B
        stops: list[str | None] = [None] * B
        window = max((len(s) for s in params.stop), default=0) + 2  # tokens of text to re-check

        if params.max_new_tokens == 0:
            return [Completion([], [], "", "length") for _ in range(B)]
        kw = {self._cache_kw: self._new_cache()}
        outputs = self.model(
            input_ids=ids_BL,
            attention_mask=attn_BL,
            position_ids=pos_BL,
            use_cache=True,
            logits_to_keep=1,
            **kw,
        )
        cache = _cache_of(outputs)
        decoder = (
            Qwen3Decoder(self.model, cache, attn_BL, params.max_new_tokens)
            if self.fast_decode
            else None
        )
        logits_BV = outputs.logits[:, -1, :]
        del outputs
        active_B = torch.ones(B, dtype=torch.bool, device=dev)
        pad_only_1V = torch.full((1, logits_BV.shape[-1]), float("-inf"), device=dev)
        pad_only_1V[0, self.pad_id] = 0.0
        last_pos_B = pos_BL[:, -1]
        for step in range(params.max_new_tokens):
            logits_BV = logits_BV.float()
            if params.temperature > 0:
                logp_BV = torch.log_softmax(logits_BV / params.temperature, dim=-1)
                # finished rows draw the pad token for sure: a flat row would widen the nucleus
                tok_B = sample_tokens(
                    torch.where(active_B[:, None], logp_BV, pad_only_1V),
                    params.top_p,
                    params.top_k,
                    gen,
                )
            else:
                logp_BV = torch.log_softmax(logits_BV, dim=-1)
                tok_B = logits_BV.argmax(dim=-1)
            lp_B = logp_BV.gather(1, tok_B[:, None]).squeeze(1)
            tok_B = torch.where(active_B, tok_B, torch.full_like(tok_B, self.pad_id))
            is_eos_B = torch.isin(tok_B, eos_E) & active_B
            toks, lps, eos_flags, act = (
                tok_B.tolist(),
                lp_B.tolist(),
                is_eos_B.tolist(),
                active_B.tolist(),
            )
            for b in range(B):
                if not act[b]:
                    continue
                new_ids[b].append(toks[b])
                new_lps[b].append(lps[b])
                if eos_flags[b]:
                    reasons[b] = "eos"
                elif params.stop:
                    tail = self.tokenizer.decode(new_ids[b][-window:], skip_special_tokens=False)
                    hit = next((s for s in params.stop if s in tail), None)
                    if hit is not None:
                        reasons[b], stops[b] = "stop", hit
                if reasons[b] is not None:
                    active_B[b] = False
            if not bool(active_B.any()) or step == params.max_new_tokens - 1:
                break
            last_pos_B = last_pos_B + 1
            if decoder is not None:
                logits_BV = decoder.step(tok_B, last_pos_B)
                continue
            attn_BL = torch.cat([attn_BL, torch.ones((B, 1), dtype=torch.long, device=dev)], dim=1)
            outputs = self.model(
                input_ids=tok_B[:, None],
                attention_mask=attn_BL,
                position_ids=last_pos_B[:, None],
                use_cache=True,
                **{self._cache_kw: cache},
            )
            cache = _cache_of(outputs)
            logits_BV = outputs.logits[:, -1, :]
        return [
            Completion(
                token_ids=new_ids[b],
                log_probs=new_lps[b],
                text=self.tokenizer.decode(new_ids[b], skip_special_tokens=False),
                finish_reason=reasons[b] or "length",
                stop_string=stops[b],
            )
            for b in range(B)
        ]

    def _new_cache(self):
        from transformers.cache_utils import DynamicCache

        try:
            return DynamicCache(config=self.model.config)
        except TypeError:  # transformers 4.x
            return DynamicCache()


@torch.no_grad()
def sequence_log_probs(
    model,
    sequences: Sequence[Sequence[int]],
    prompt_lens: Sequence[int],
    *,
    temperature: float = 1.0,
    chunk_size: int = 8,
    pad_id: int = 0,
) -> list[list[float]]:
    """Log-prob of every token after its prompt, ``log_softmax(logits / T)[token]``, per sequence.

    One right-padded forward pass per chunk of ``chunk_size`` sequences (memory is
    bounded by the chunk); only the continuation's positions are converted to
    log-probs. Returns one list of ``len(seq) - prompt_len`` floats per sequence.
    """
    if len(sequences) != len(prompt_lens):
        raise ValueError("one prompt length per sequence")
    dev = next(model.parameters()).device
    out: list[list[float]] = []
    for i in range(0, len(sequences), chunk_size):
        chunk = sequences[i : i + chunk_size]
        plens = prompt_lens[i : i + chunk_size]
        T = max(len(s) for s in chunk)
        ids_BT = torch.full((len(chunk), T), pad_id, dtype=torch.long, device=dev)
        attn_BT = torch.zeros((len(chunk), T), dtype=torch.long, device=dev)
        for b, s in enumerate(chunk):
            ids_BT[b, : len(s)] = torch.tensor(list(s), dtype=torch.long, device=dev)
            attn_BT[b, : len(s)] = 1
        start = max(min(plens) - 1, 0)  # logits before the first continuation token are not needed
        hidden = model(
            input_ids=ids_BT, attention_mask=attn_BT, logits_to_keep=T - start
        ).logits.float()
        logp_BTV = torch.log_softmax(hidden / temperature, dim=-1)  # positions start .. T-1
        targets_BT = ids_BT[:, start + 1 :]
        lp_BT = logp_BTV[:, :-1].gather(-1, targets_BT[..., None]).squeeze(-1)
        for b, (s, p) in enumerate(zip(chunk, plens)):
            out.append(lp_BT[b, p - 1 - start : len(s) - 1 - start].tolist())
    return out
