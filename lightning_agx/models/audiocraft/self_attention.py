"""Record audiocraft's causal self-attention weights from the outside (for Chefer et al.'s relevance rule).

`record_self_attention(lm)` temporarily replaces the ``forward`` of every self-attention module of an
audiocraft ``LMModel`` by an explicit causal softmax attention with the module's own weights, which keeps
its weights ``[batch, heads, T, T]`` (with their graph); leaving the context restores the original
``forward``. Models whose self-attention uses rotary embeddings, kv_repeat or a limited past context, or is
not causal, are not supported (`self_attention_supported` says so).
"""
from __future__ import annotations

import contextlib
import math
import types

import torch
from torch import nn

from ..attention import attend_out, project_qkv


def self_attention_modules(lm: nn.Module) -> list[nn.Module]:
    return [layer.self_attn for layer in lm.transformer.layers]


def self_attention_supported(lm: nn.Module) -> bool:
    for module in self_attention_modules(lm):
        if getattr(module, "rope", None) is not None or getattr(module, "kv_repeat", 1) != 1:
            return False
        if getattr(module, "past_context", None) is not None or not getattr(module, "causal", False):
            return False
        if not getattr(module, "custom", False) and not module.mha._qkv_same_embed_dim:
            return False
    return True


@contextlib.contextmanager
def record_self_attention(lm: nn.Module):
    """Inside the block, every causal self-attention records its weights ``[batch, heads, T, T]`` (with graph)."""
    modules = self_attention_modules(lm)
    if any("forward" in vars(m) for m in modules):
        raise RuntimeError("self-attention is already patched; nested record_self_attention is not supported")
    records: list[torch.Tensor] = []
    try:
        for module in modules:
            module.forward = types.MethodType(_recording_forward(records), module)
        yield records
    finally:
        for module in modules:
            vars(module).pop("forward", None)


def _recording_forward(records: list):
    def forward(module, query, key, value, key_padding_mask=None, need_weights=False, attn_mask=None,
                average_attn_weights=True, is_causal=False):
        if key_padding_mask is not None or attn_mask is not None:
            raise NotImplementedError("recorded self-attention supports neither key_padding_mask nor attn_mask")
        q, k, v, dtype = project_qkv(module, query, key, value)
        steps = q.shape[2]
        scores = torch.einsum("bhtd,bhsd->bhts", q, k) / math.sqrt(q.shape[-1])
        future = torch.ones(steps, steps, dtype=torch.bool, device=q.device).triu(1)
        weights = torch.softmax(scores.masked_fill(future, float("-inf")), dim=-1)  # [b, h, T, T]
        records.append(weights)
        return attend_out(module, weights, v, dtype), None

    return forward
