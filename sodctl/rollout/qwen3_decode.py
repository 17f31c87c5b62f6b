"""One-token decode steps of a Qwen3 causal LM: the model's own arithmetic, less its per-call overhead.

At the tiny world's sizes a decode step through ``Qwen3ForCausalLM.forward`` is
mostly overhead: a dozen module calls and their hooks per layer, a mask built
every step, and the ``DynamicCache`` concatenation that copies the whole cache
for every token. ``Qwen3Decoder`` runs the step from the model's own weights,
rotary module and attention function, on a KV cache allocated ahead (grown by
doubling), with the mask transformers builds for SDPA (none without padding,
the padding mask otherwise). Its logits equal the model's own bit for bit on CPU
(``tests/test_engine_hf.py``), so sampling draws the same tokens.

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


def _extend(buf: Tensor, dim: int, used: int, capacity: int) -> Tensor:
    """A zeroed copy of ``buf`` holding ``capacity`` along ``dim``, its first ``used`` kept."""
    shape = list(buf.shape)
    shape[dim] = capacity
    out = buf.new_zeros(shape)
    out.narrow(dim, 0, used).copy_(buf.narrow(dim, 0, used))
    return out


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
        from transformers.models.qwen3.modeling_qwen3 import apply_rotary_pos_emb

        self.rotate = apply_rotary_pos_emb
        self.model = model
        self.layers = list(model.model.layers)
        self.attend = ALL_ATTENTION_FUNCTIONS["sdpa"]
        kv = _cache_tensors(cache)
        T = kv[0][0].shape[2]
        self.length = T
        self.max_length = T + max_new_tokens
        capacity = min(self.max_length, T + self.HEADROOM)
        self.keys = [_extend(k, 2, T, capacity) for k, _ in kv]
        self.values = [_extend(v, 2, T, capacity) for _, v in kv]
        # the mask transformers gives SDPA for one query token: none when nothing is padded
        self.padded = not bool(attention_mask_BL.all())
        self.attend_BC = _extend(attention_mask_BL.bool(), 1, T, capacity)

    def _grow(self) -> None:
        capacity = min(self.max_length, 2 * self.keys[0].shape[2])
        T = self.length
        self.keys = [_extend(k, 2, T, capacity) for k in self.keys]
        self.values = [_extend(v, 2, T, capacity) for v in self.values]
        self.attend_BC = _extend(self.attend_BC, 1, T, capacity)

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
        cos, sin = model.model.rotary_emb(x, positions_B[:, None])  # (B, 1, D)
        mask = self.attend_BC[:, None, None, : t + 1] if self.padded else None
        B = x.shape[0]
        for i, layer in enumerate(self.layers):
            attn = layer.self_attn
            h = _rms(x, layer.input_layernorm)
            q = _rms(F.linear(h, attn.q_proj.weight).view(B, 1, -1, attn.head_dim), attn.q_norm)
            k = _rms(F.linear(h, attn.k_proj.weight).view(B, 1, -1, attn.head_dim), attn.k_norm)
            v = F.linear(h, attn.v_proj.weight).view(B, 1, -1, attn.head_dim)
            q, k = self.rotate(q.transpose(1, 2), k.transpose(1, 2), cos, sin)
            self.keys[i][:, :, t] = k[:, :, 0]
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
