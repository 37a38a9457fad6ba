"""Chefer et al. 2021 ("Generic attention-model explainability", bi-modal / encoder-decoder rules).

Relevance maps, per prompt: R_aa ``[T, T]`` (audio steps over audio steps), R_at ``[T, N]`` (audio steps over
text tokens); the text encoder's self-relevance R_tt is the identity (the frozen text encoder is outside the
explained LM). Start R_aa = I, R_at = 0,
then, layer by layer in the order the LM runs them:
  self-attention   Abar = mean_heads (dS/dA * A)^+   ``[T, T]``;   R_aa += Abar R_aa;   R_at += Abar R_at
  cross-attention  Abar = mean_heads (dS/dA * A)^+   ``[T, N]``;   R_at += norm(R_aa) Abar R_tt
where norm(R) = I + row-normalised (R - I) (their `handle_residual`). The importance is R_at, max-scaled.

Simplifications, said plainly:
- S is ONE scalar for the whole sequence (log-probability of all generated tokens, conditional logits,
  `_common.token_log_probs`), so all steps share one backward pass; the original explains one output at a
  time, which would need T backward passes.
- R_aa multiplies Abar from the left (row t = what step t draws from); their code writes the transposed
  product for encoders, which for a causal decoder would give step t the relevance of later steps.
- Self-attention is recorded by temporarily replacing each self-attention module's ``forward`` (restored
  on exit) with an explicit causal softmax attention using the module's own weights. Models whose
  self-attention uses rotary embeddings, kv_repeat or a limited past context are not supported by that
  patch: they fall back to the cross-attention rule only (R_aa = I), with a warning that says so.
"""
from __future__ import annotations

import contextlib
import math
import types
import warnings

import torch
from einops import rearrange
from torch import nn

from ..models import CrossAttentionEdit
from ._common import differentiable, max_scale, recorded_layers, token_log_probs, valid_mask


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
        if getattr(module, "custom", False):
            weight, bias, out_proj = module.in_proj_weight, module.in_proj_bias, module.out_proj
        else:
            weight, bias, out_proj = module.mha.in_proj_weight, module.mha.in_proj_bias, module.mha.out_proj
        q, k, v = nn.functional.linear(query, weight, bias).chunk(3, dim=-1)  # layout [q | k | v]
        if getattr(module, "qk_layer_norm", False):
            q, k = module.q_layer_norm(q), module.k_layer_norm(k)
        q, k, v = (rearrange(x, "b t (h d) -> b h t d", h=module.num_heads) for x in (q, k, v))
        dtype = q.dtype
        if getattr(module, "attention_as_float32", False):
            q, k, v = q.float(), k.float(), v.float()
        steps = q.shape[2]
        scores = torch.einsum("bhtd,bhsd->bhts", q, k) / math.sqrt(q.shape[-1])
        future = torch.ones(steps, steps, dtype=torch.bool, device=q.device).triu(1)
        weights = torch.softmax(scores.masked_fill(future, float("-inf")), dim=-1)  # [b, h, T, T]
        records.append(weights)
        x = torch.einsum("bhts,bhsd->bhtd", weights, v).to(dtype)
        return out_proj(rearrange(x, "b h t d -> b t (h d)")), None

    return forward


def _normalised(relevance: torch.Tensor) -> torch.Tensor:
    """I + row-normalised (R - I): Chefer's handling of the residual connection. ``[B, T, T]``."""
    eye = torch.eye(relevance.shape[-1], device=relevance.device)
    residual = relevance - eye
    return eye + residual / residual.sum(-1, keepdim=True).clamp_min(1e-12)


def chefer(tag, generation, seed: int = 0, self_attention: bool = True) -> torch.Tensor:
    lm = tag.lm
    b, t = len(generation.text), generation.num_steps
    use_self = self_attention and self_attention_supported(lm)
    if self_attention and not use_self:
        warnings.warn("chefer: this LM's self-attention (rotary embeddings, kv_repeat or a limited context) cannot "
                      "be recorded; falling back to the cross-attention rule only (R_aa = I)", stacklevel=2)
    with differentiable(tag):
        edit = CrossAttentionEdit(record=True)
        with (record_self_attention(lm) if use_self else contextlib.nullcontext([])) as selfs:
            out = tag.forward_steps(generation, edit=edit, logits=True)
        crosses = recorded_layers(edit)  # L x [B, H, T, N]
        score = token_log_probs(tag, generation, out.logits).sum()
        grads = torch.autograd.grad(score, [*selfs, *crosses])
    self_grads, cross_grads = grads[:len(selfs)], grads[len(selfs):]
    device = generation.text.embeddings.device
    r_aa = torch.eye(t, device=device).expand(b, t, t).clone()  # [B, T, T]
    r_at = torch.zeros(b, t, crosses[0].shape[-1], device=device)  # [B, T, N]
    for layer in range(len(crosses)):
        if use_self:
            a_bar = torch.relu(self_grads[layer] * selfs[layer].detach()).mean(1)  # [B, T, T]
            r_aa = r_aa + a_bar @ r_aa
            r_at = r_at + a_bar @ r_at
        c_bar = torch.relu(cross_grads[layer] * crosses[layer].detach()).mean(1)  # [B, T, N]
        r_at = r_at + _normalised(r_aa) @ c_bar  # R_tt = I
    return max_scale(r_at, valid_mask(generation))
