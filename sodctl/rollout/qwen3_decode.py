"""One-token decode steps of a Qwen3 causal LM: the model's own arithmetic, less its per-call overhead.

At the tiny world's sizes a decode step through ``Qwen3ForCausalLM.forward`` is
mostly overhead: a dozen module calls and their hooks per layer, a mask built
every step, and the ``DynamicCache`` concatenation that copies the whole cache
for every token. ``Qwen3Decoder`` runs the step from the model's own weights,
rotary module and attention function, on a KV cache allocated ahead (grown by
doubling), with the mask transformers builds for SDPA (none without padding,
the padding mask otherwise). Its logits equal the model's own bit for bit on CPU
(``tests/test_rollout_qwen3_decode.py``), so sampling draws the same tokens.

Anything it does not cover decodes through the model's forward (``supports``):
another architecture, sliding-window layers, an attention implementation other
than SDPA, a rope that rescales itself, a model in training mode.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def _rms(x: Tensor, norm) -> Tensor:
    """``Qwen3RMSNorm.forward``, from the module's weight and epsilon."""
    dtype = x.dtype
    x = x.to(torch.float32)
    x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + norm.variance_epsilon)
    return norm.weight * x.to(dtype)


def _rotate(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """``apply_rotary_pos_emb`` for one tensor (cos/sin already broadcastable)."""
    half = x.shape[-1] // 2
    return (x * cos) + (torch.cat((-x[..., half:], x[..., :half]), dim=-1) * sin)


def _cache_tensors(cache) -> list[tuple[Tensor, Tensor]]:
    """Per layer (keys, values), each (B, KV, T, D), of a transformers ``DynamicCache``."""
    if hasattr(cache, "layers"):  # transformers >= 4.56
        return [(layer.keys, layer.values) for layer in cache.layers]
    return list(zip(cache.key_cache, cache.value_cache))  # older 4.x


class Qwen3Decoder:
    """Decode steps after a prefill: ``step(tokens, positions)`` -> next-token logits (B, V)."""

    HEADROOM = 256  # new tokens the cache holds before it first grows (then it doubles)

    @staticmethod
    def supports(model) -> bool:
        cfg = getattr(model, "config", None)
        if type(model).__name__ != "Qwen3ForCausalLM" or getattr(cfg, "model_type", "") != "qwen3":
            return False
        rope = getattr(cfg, "rope_parameters", None) or getattr(cfg, "rope_scaling", None) or {}
        return (
            not model.training
            and getattr(cfg, "_attn_implementation", None) == "sdpa"
            and all(t == "full_attention" for t in getattr(cfg, "layer_types", None) or ())
            and not getattr(cfg, "use_sliding_window", False)
            and not cfg.attention_bias
            and cfg.hidden_act == "silu"
            and rope.get("rope_type", "default") == "default"
        )

    def __init__(self, model, cache, attention_mask_BL: Tensor, max_new_tokens: int) -> None:
        from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

        self.model = model
        self.layers = list(model.model.layers)
        self.attend = ALL_ATTENTION_FUNCTIONS["sdpa"]
        kv = _cache_tensors(cache)
        B, KV, T, D = kv[0][0].shape
        self.length = T
        self.max_length = T + max_new_tokens
        capacity = min(self.max_length, T + self.HEADROOM)
        self.keys = [k.new_zeros((B, KV, capacity, D)) for k, _ in kv]
        self.values = [v.new_zeros((B, KV, capacity, D)) for _, v in kv]
        for buf, (k, v) in zip(zip(self.keys, self.values), kv):
            buf[0][:, :, :T] = k
            buf[1][:, :, :T] = v
        # the mask transformers gives SDPA for one query token: none when nothing is padded
        self.padded = not bool(attention_mask_BL.all())
        self.attend_BC = attention_mask_BL.new_zeros((B, capacity), dtype=torch.bool)
        self.attend_BC[:, :T] = attention_mask_BL.bool()

    def _grow(self) -> None:
        capacity = min(self.max_length, 2 * self.keys[0].shape[2])
        T = self.length

        def grown(buf: Tensor) -> Tensor:
            new = buf.new_zeros((*buf.shape[:2], capacity, buf.shape[3]))
            new[:, :, :T] = buf[:, :, :T]
            return new

        self.keys = [grown(k) for k in self.keys]
        self.values = [grown(v) for v in self.values]
        mask = self.attend_BC.new_zeros((self.attend_BC.shape[0], capacity))
        mask[:, :T] = self.attend_BC[:, :T]
        self.attend_BC = mask

    @torch.inference_mode()
    def step(self, tokens_B: Tensor, positions_B: Tensor) -> Tensor:
        """Feed one token per row at ``positions_B``; the logits of the next token, (B, V)."""
        t = self.length
        if t >= self.max_length:
            raise RuntimeError("the decoder's budget of new tokens is spent")
        if t == self.keys[0].shape[2]:
            self._grow()
        self.attend_BC[:, t] = True
        model = self.model
        x = model.model.embed_tokens(tokens_B[:, None])  # (B, 1, d)
        cos, sin = model.model.rotary_emb(x, positions_B[:, None])
        cos, sin = cos[:, None], sin[:, None]  # broadcast over heads
        mask = self.attend_BC[:, None, None, : t + 1] if self.padded else None
        B = x.shape[0]
        for i, layer in enumerate(self.layers):
            attn = layer.self_attn
            h = _rms(x, layer.input_layernorm)
            q = _rms(F.linear(h, attn.q_proj.weight).view(B, 1, -1, attn.head_dim), attn.q_norm)
            k = _rms(F.linear(h, attn.k_proj.weight).view(B, 1, -1, attn.head_dim), attn.k_norm)
            v = F.linear(h, attn.v_proj.weight).view(B, 1, -1, attn.head_dim)
            q = _rotate(q.transpose(1, 2), cos, sin)
            self.keys[i][:, :, t] = _rotate(k.transpose(1, 2), cos, sin)[:, :, 0]
            self.values[i][:, :, t] = v[:, 0]
            o, _ = self.attend(
                attn,
                q,
                self.keys[i][:, :, : t + 1],
                self.values[i][:, :, : t + 1],
                mask,
                dropout=0.0,
                scaling=attn.scaling,
                sliding_window=None,
            )
            x = x + F.linear(o.reshape(B, 1, -1).contiguous(), attn.o_proj.weight)
            h = _rms(x, layer.post_attention_layernorm)
            mlp = layer.mlp
            gate = F.silu(F.linear(h, mlp.gate_proj.weight))
            x = x + F.linear(gate * F.linear(h, mlp.up_proj.weight), mlp.down_proj.weight)
        self.length = t + 1
        return model.lm_head(model.model.norm(x))[:, -1]
