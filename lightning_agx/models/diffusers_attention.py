"""The explanation mask inside a diffusers denoiser, through diffusers' own `AttentionProcessor` API.

`edited_attention(model, state)` installs, with ``model.set_attn_processor``, an `EditedAttnProcessor` on every
text cross-attention (and, to record them, every self-attention) of a diffusers model, and restores the
processors it found when the block ends, on error too. The processor computes what diffusers'
``StableAudioAttnProcessor2_0`` computes (projections, grouped key/value heads, rotary embedding on the
queries, and on the keys of a self-attention) with the softmax written out, so that, as in the paper's Eq. 2
and 4 (`lightning_agx.models.attention.CrossAttentionEdit`):

    scores  = q k^T / sqrt(d)  (* pre_softmax, AtMan)   # [batch, heads, queries, keys]
    weights = softmax(scores)  (* post_softmax, AudioGenX: no renormalisation)
    out     = to_out(weights v)

Only the rows of the model batch that `AttentionState.rows` maps to a mask row are edited (the conditional half
of classifier-free guidance); the others (the unconditional half) get a mask of ones. The mask ``[B, T, N]``
covers the explained query frames ``[query_offset, query_offset + T)`` (Stable Audio's first query is its
prepended global token: never masked) and the first N keys (the text tokens; keys past them, such as Stable
Audio's duration tokens or fixed-length padding, are never masked). A mask of ones is the identity up to
float rounding (a written-out softmax instead of ``scaled_dot_product_attention``).

Recording (``CrossAttentionEdit.record``, and self-attention for Chefer et al.): the reference forward runs
the K trajectory points of rB rows as one batch of ``K * rB`` rows (point-major); the weights of a layer are
kept as ONE tensor ``[rB, K * heads, T, keys]`` (the heads of the K points side by side, global token dropped),
from which the weights the layer uses are re-assembled, so that gradients with respect to it exist.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from .attention import CrossAttentionEdit


@dataclass
class AttentionState:
    """What every edited processor of one model call (or one generation) needs to know."""

    edit: CrossAttentionEdit
    rows: torch.Tensor  # [batch] long: the mask row of each model row, -1 for rows left unedited (uncond)
    frames: int  # T: explained query frames (mask rows)
    text_keys: int  # N: the text token keys (the first N keys), recorded and masked
    query_offset: int = 0  # queries before the first frame (Stable Audio: 1, its global token)
    key_valid: torch.Tensor | None = None  # [batch, keys] bool: keys that may be attended (None: all)
    points: int = 1  # K: model rows are K point-major blocks of rB rows (for recording)
    record_self: bool = False
    self_weights: list[torch.Tensor] = field(default_factory=list)  # per layer [rB, K*heads, T, T]
    _cache: dict = field(default_factory=dict)

    def rows_of(self, name: str, mask: torch.Tensor, queries: int, keys: int) -> torch.Tensor:
        """`mask` ``[B, T, N]`` laid out for the model batch: ``[batch, 1, queries, keys]`` (1 where not edited)."""
        key = (name, queries, keys)
        if key not in self._cache:
            b, t, n = mask.shape
            if t != self.frames:
                raise ValueError(f"mask has T={t} steps but the model explains {self.frames} latent frames; give "
                                 "one mask row per latent frame")
            if n > keys:
                raise ValueError(f"mask has N={n} text tokens but the cross-attention sees {keys} keys; build the "
                                 "mask from the same prompts (and padding) as the model input")
            if self.query_offset + t > queries:
                raise ValueError(f"mask has T={t} steps but the cross-attention has {queries - self.query_offset} "
                                 "frame queries")
            rows = self.rows.to(mask.device)
            if int(rows.max()) >= b:
                raise ValueError(f"mask batch {b} does not cover the model's {int(rows.max()) + 1} edited rows")
            picked = mask[rows.clamp_min(0)]  # [batch, T, N]
            picked = torch.where((rows >= 0)[:, None, None], picked, torch.ones_like(picked))
            # frames before (global token) and after the explained ones, keys past the text: ones
            picked = F.pad(picked, (0, keys - n, self.query_offset, queries - self.query_offset - t), value=1.0)
            self._cache[key] = picked[:, None]
        return self._cache[key]


class EditedAttnProcessor:
    """An attention processor for diffusers' ``Attention`` (Stable Audio's layout) that applies and records the
    edit of `state` (see the module docstring). ``kind`` is ``"cross"`` (text cross-attention) or ``"self"``."""

    def __init__(self, state: AttentionState, layer: int, kind: str = "cross"):
        self.state, self.layer, self.kind = state, layer, kind

    def __call__(self, attn, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor | None = None,
                 attention_mask: torch.Tensor | None = None, rotary_emb=None, **kwargs) -> torch.Tensor:
        from diffusers.models.embeddings import apply_rotary_emb
        if attention_mask is not None:
            raise NotImplementedError("edited attention takes the key mask from its state, not attention_mask")
        if hidden_states.ndim != 3:
            raise NotImplementedError("edited attention expects hidden states [batch, queries, channels]")
        state, cross = self.state, self.kind == "cross"
        batch = hidden_states.shape[0]
        context = hidden_states if encoder_hidden_states is None else encoder_hidden_states
        if encoder_hidden_states is not None and attn.norm_cross:
            context = attn.norm_encoder_hidden_states(context)
        query, key, value = attn.to_q(hidden_states), attn.to_k(context), attn.to_v(context)
        head_dim = query.shape[-1] // attn.heads
        kv_heads = key.shape[-1] // head_dim
        query = query.view(batch, -1, attn.heads, head_dim).transpose(1, 2)  # [b, H, Lq, d]
        key = key.view(batch, -1, kv_heads, head_dim).transpose(1, 2)  # [b, Hkv, Lk, d]
        value = value.view(batch, -1, kv_heads, head_dim).transpose(1, 2)
        if kv_heads != attn.heads:  # grouped / multi-query attention: repeat the key/value heads
            key = key.repeat_interleave(attn.heads // kv_heads, dim=1)
            value = value.repeat_interleave(attn.heads // kv_heads, dim=1)
        if attn.norm_q is not None:
            query = attn.norm_q(query)
        if attn.norm_k is not None:
            key = attn.norm_k(key)
        if rotary_emb is not None:  # as StableAudioAttnProcessor2_0: queries always, keys of a self-attention
            rot = rotary_emb[0].shape[-1]
            dtype = query.dtype
            query = torch.cat([apply_rotary_emb(query[..., :rot].float(), rotary_emb, use_real=True,
                                                use_real_unbind_dim=-2), query[..., rot:].float()], -1).to(dtype)
            if not attn.is_cross_attention:
                key = torch.cat([apply_rotary_emb(key[..., :rot].float(), rotary_emb, use_real=True,
                                                  use_real_unbind_dim=-2), key[..., rot:].float()], -1).to(dtype)

        scores = torch.einsum("bhqd,bhkd->bhqk", query, key) * attn.scale  # [b, H, Lq, Lk]
        queries, keys = scores.shape[-2:]
        edit = state.edit
        if cross and edit.pre_softmax is not None:
            scores = scores * state.rows_of("pre", edit.pre_softmax, queries, keys).to(scores)
        if cross and state.key_valid is not None:
            scores = scores.masked_fill(~state.key_valid[:, None, None, :keys], float("-inf"))
        weights = torch.softmax(scores.float(), dim=-1).to(query.dtype)
        if cross and edit.post_softmax is not None:
            weights = weights * state.rows_of("post", edit.post_softmax, queries, keys).to(weights)
        if cross and edit.record:
            recorded, weights = _recorded(weights, state, (0, state.text_keys))
            edit.weights[self.layer].append(recorded)
        elif not cross and state.record_self:
            offset = state.query_offset
            recorded, weights = _recorded(weights, state, (offset, offset + state.frames))
            state.self_weights.append(recorded)

        out = torch.einsum("bhqk,bhkd->bhqd", weights, value)
        out = out.transpose(1, 2).reshape(batch, -1, attn.heads * head_dim).to(query.dtype)
        out = attn.to_out[1](attn.to_out[0](out))
        if attn.residual_connection:
            out = out + hidden_states
        return out / attn.rescale_output_factor


def _recorded(weights: torch.Tensor, state: AttentionState, key_span: tuple[int, int]):
    """(recorded ``[rB, K*H, T, k1-k0]``, the full weights re-assembled from it) for frames x keys[k0:k1]."""
    q0, q1 = state.query_offset, state.query_offset + state.frames
    k0, k1 = key_span
    block = weights[:, :, q0:q1, k0:k1]
    b, h, tq, tk = block.shape
    k = state.points
    recorded = block.reshape(k, b // k, h, tq, tk).transpose(0, 1).reshape(b // k, k * h, tq, tk)
    back = recorded.reshape(b // k, k, h, tq, tk).transpose(0, 1).reshape(b, h, tq, tk)
    middle = torch.cat([weights[:, :, q0:q1, :k0], back, weights[:, :, q0:q1, k1:]], dim=-1)
    return recorded, torch.cat([weights[:, :, :q0], middle, weights[:, :, q1:]], dim=2)


@contextlib.contextmanager
def edited_attention(model: nn.Module, state: AttentionState, cross_names: list[str],
                     self_names: list[str] = ()):
    """Inside the block, the processors named `cross_names` (text cross-attention, e.g.
    ``transformer_blocks.0.attn2.processor``) and `self_names` (self-attention, only when
    ``state.record_self``) of the diffusers `model` are `EditedAttnProcessor` s of `state`; every processor
    found is restored afterwards, whatever happens inside."""
    original = dict(model.attn_processors)
    missing = [n for n in [*cross_names, *self_names] if n not in original]
    if missing:
        raise ValueError(f"{type(model).__name__} has no attention processor {missing[0]!r}")
    if any(isinstance(p, EditedAttnProcessor) for p in original.values()):
        raise RuntimeError("attention is already edited; nested edited_attention is not supported")
    state.edit.weights = [[] for _ in cross_names]
    processors = dict(original)
    for layer, name in enumerate(cross_names):
        processors[name] = EditedAttnProcessor(state, layer, "cross")
    if state.record_self:
        for layer, name in enumerate(self_names):
            processors[name] = EditedAttnProcessor(state, layer, "self")
    model.set_attn_processor(dict(processors))  # set_attn_processor empties the dict it is given
    try:
        yield state
    finally:
        model.set_attn_processor(dict(original))


__all__ = ["AttentionState", "EditedAttnProcessor", "edited_attention"]
