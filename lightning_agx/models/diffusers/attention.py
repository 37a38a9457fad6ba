"""The explanation mask inside a diffusers denoiser, through diffusers' own `AttentionProcessor` API.

`edited_attention(model, state)` installs, with ``model.set_attn_processor``, an `EditedAttnProcessor` on every
text cross-attention (and, to record them, every self-attention) of a diffusers model, and restores the
processors it found when the block ends, on error too. The processor computes what diffusers'
``StableAudioAttnProcessor2_0`` computes (projections, grouped key/value heads, rotary embedding on the
queries, and on the keys of a self-attention) and, for a UNet's ``Transformer2DModel`` blocks, what
``AttnProcessor2_0`` computes (with its additive key bias ``attention_mask``, AudioLDM 2's T5 padding), with
the softmax written out, so that, as in the paper's Eq. 2 and 4
(`lightning_agx.models.attention.CrossAttentionEdit`):

    scores  = q k^T / sqrt(d)  (* pre_softmax, AtMan)   # [batch, heads, queries, keys]
    weights = softmax(scores)  (* post_softmax, AudioGenX: no renormalisation)
    out     = to_out(weights v)

Only the rows of the model batch that `AttentionState.rows` maps to a mask row are edited (the conditional half
of classifier-free guidance); the others (the unconditional half) get a mask of ones. The mask ``[B, T, N]``
covers the explained query frames ``[query_offset, query_offset + T)`` (Stable Audio's first query is its
prepended global token: never masked) and the first N keys (the text tokens; keys past them, such as Stable
Audio's duration tokens or fixed-length padding, are never masked). A mask of ones is the identity up to
float rounding (a written-out softmax instead of ``scaled_dot_product_attention``).

**2-D latents** (AudioLDM 2's UNet, ``AttentionState.grid = (H, W)``: H latent time rows = mask rows, W
frequency columns). Each UNet level's ``Transformer2DModel`` flattens its feature map row-major, so a level with
time (and frequency) downsampling s has ``ceil(H / s) x ceil(W / s)`` queries, query ``(h, w)`` at index
``h * ceil(W / s) + w``; query (h, w) is scaled by the mean of mask rows ``[h * s, min((h + 1) * s, H))`` (a
sum of those rows divided by their count, so that a mask of ones gives exactly ones). s is found from the
query count. The recorded weights of such a layer are per mask row, ``[rB, K * heads, T, N]``: row t is the
mean over the columns w of its query row ``h = t // s``; with gradients on, the layer's weights are tied to
that record (`_TiedRecord`), so that d(output) / d(record) exists: the gradient of the weights summed over the
columns of a query row and shared among the mask rows it pools (the adjoint of the pooling above). The record
is a read-out: no gradient flows from it back to the mask or the inputs (those flow through the weights).

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

from ..attention import CrossAttentionEdit


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
    grid: tuple[int, int] | None = None  # (H, W) time rows x freq columns of a 2-D latent (UNet); None: 1-D frames
    record_self: bool = False
    self_weights: list[torch.Tensor] = field(default_factory=list)  # per layer [rB, K*heads, T, T]
    _cache: dict = field(default_factory=dict)

    def rows_of(self, name: str, mask: torch.Tensor, queries: int, keys: int) -> torch.Tensor:
        """`mask` ``[B, T, N]`` laid out for the model batch: ``[batch, 1, queries, keys]`` (1 where not edited)."""
        key = (name, queries, keys)
        if key not in self._cache:
            _, t, n = mask.shape
            if t != self.frames:
                raise ValueError(f"mask has T={t} steps but the model explains {self.frames} latent frames; give "
                                 "one mask row per latent frame")
            if n > keys:
                raise ValueError(f"mask has N={n} text tokens but the cross-attention sees {keys} keys; build the "
                                 "mask from the same prompts (and padding) as the model input")
            layout = self._grid_rows if self.grid is not None else self._frame_rows
            self._cache[key] = layout(mask, queries, keys)
        return self._cache[key]

    def _frame_rows(self, mask: torch.Tensor, queries: int, keys: int) -> torch.Tensor:
        """`mask` ``[B, T, N]`` on 1-D frame queries ``[query_offset, query_offset + T)``: ``[batch, 1, queries,
        keys]``; the queries before (Stable Audio's global token) and after the frames, keys past the text: ones."""
        t, n = mask.shape[1:]
        if self.query_offset + t > queries:
            raise ValueError(f"mask has T={t} steps but the cross-attention has {queries - self.query_offset} "
                             "frame queries")
        picked = F.pad(self._picked(mask), (0, keys - n, self.query_offset, queries - self.query_offset - t),
                       value=1.0)
        return picked[:, None]

    def _picked(self, mask: torch.Tensor) -> torch.Tensor:
        """`mask` ``[B, T, N]`` -> ``[batch, T, N]``: each model row's mask row, ones for unedited rows."""
        rows = self.rows.to(mask.device)
        if int(rows.max()) >= mask.shape[0]:
            raise ValueError(f"mask batch {mask.shape[0]} does not cover the model's {int(rows.max()) + 1} edited rows")
        picked = mask[rows.clamp_min(0)]
        return torch.where((rows >= 0)[:, None, None], picked, torch.ones_like(picked))

    def _grid_rows(self, mask: torch.Tensor, queries: int, keys: int) -> torch.Tensor:
        """`mask` ``[B, T, N]`` pooled onto a UNet level's ``Hs x Ws`` queries: ``[batch, 1, queries, keys]``."""
        level = GridLevel.of(self.grid, queries)
        picked = self._picked(mask)  # [batch, T, N]
        indicator = level.indicator.to(picked)  # [Hs, T]
        pooled = torch.einsum("ht,btn->bhn", indicator, picked) / level.counts.to(picked)[None, :, None]
        pooled = pooled.repeat_interleave(level.columns, dim=1)  # [batch, Hs * Ws, N], row-major (h, w)
        return F.pad(pooled, (0, keys - mask.shape[-1]), value=1.0)[:, None]


@dataclass(frozen=True)
class GridLevel:
    """One UNet level's queries over a 2-D latent of H time rows and W frequency columns: time (and frequency)
    downsampling `stride` s, ``rows = ceil(H / s)``, ``columns = ceil(W / s)``; query row h pools the mask rows
    ``[h * s, min((h + 1) * s, H))``."""

    stride: int
    rows: int
    columns: int
    frames: int  # H

    @staticmethod
    def of(grid: tuple[int, int], queries: int) -> "GridLevel":
        """The level whose ``rows x columns`` is `queries` (strides 1, 2, 4, ...: Downsample2D halves, rounding up)."""
        h, w = grid
        stride = 1
        while True:
            rows, columns = -(-h // stride), -(-w // stride)
            if rows * columns == queries:
                return GridLevel(stride, rows, columns, h)
            if rows == 1 and columns == 1:
                raise ValueError(f"a cross-attention has {queries} queries, which is no UNet level of the {h} x {w} "
                                 "latent (ceil(H/s) x ceil(W/s) for s = 1, 2, 4, ...); the latent grid is wrong")
            stride *= 2

    @property
    def owner(self) -> torch.Tensor:
        """``[H]`` the query row of each mask row."""
        return torch.arange(self.frames) // self.stride

    @property
    def indicator(self) -> torch.Tensor:
        """``[rows, H]`` 1 where query row h pools mask row t."""
        return (self.owner[None, :] == torch.arange(self.rows)[:, None]).float()

    @property
    def counts(self) -> torch.Tensor:
        """``[rows]`` mask rows pooled by each query row."""
        return self.indicator.sum(1)


class EditedAttnProcessor:
    """An attention processor for diffusers' ``Attention`` (Stable Audio's DiT, a UNet's ``Transformer2DModel``
    blocks) that applies and records the edit of `state` (see the module docstring). ``kind`` is ``"cross"``
    (text cross-attention) or ``"self"``."""

    def __init__(self, state: AttentionState, layer: int, kind: str = "cross"):
        self.state, self.layer, self.kind = state, layer, kind

    def __call__(self, attn, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor | None = None,
                 attention_mask: torch.Tensor | None = None, rotary_emb=None, **kwargs) -> torch.Tensor:
        from diffusers.models.embeddings import apply_rotary_emb
        if hidden_states.ndim != 3:
            raise NotImplementedError("edited attention expects hidden states [batch, queries, channels]")
        if getattr(attn, "group_norm", None) is not None or getattr(attn, "spatial_norm", None) is not None:
            raise NotImplementedError("edited attention does not apply an Attention's group_norm or spatial_norm "
                                      "(a VAE's attention, not a text cross-attention)")
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
        if attention_mask is not None:  # diffusers' additive key bias (AudioLDM 2's T5 padding), as AttnProcessor2_0
            bias = attn.prepare_attention_mask(attention_mask, keys, batch)
            scores = scores + bias.view(batch, attn.heads, -1, bias.shape[-1]).to(scores)
        edit = state.edit
        if cross and edit.pre_softmax is not None:
            scores = scores * state.rows_of("pre", edit.pre_softmax, queries, keys).to(scores)
        if cross and state.key_valid is not None:
            scores = scores.masked_fill(~state.key_valid[:, None, None, :keys], float("-inf"))
        weights = torch.softmax(scores.float(), dim=-1).to(query.dtype)
        if cross and edit.post_softmax is not None:
            weights = weights * state.rows_of("post", edit.post_softmax, queries, keys).to(weights)
        if cross and edit.record and state.grid is not None:
            recorded, weights = _recorded_grid(weights, state)
            edit.weights[self.layer].append(recorded)
        elif cross and edit.record:
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


def _point_major(block: torch.Tensor, points: int) -> torch.Tensor:
    """``[K * rB, heads, T, N]`` (point-major rows) -> ``[rB, K * heads, T, N]``."""
    b, h, tq, tk = block.shape
    return block.reshape(points, b // points, h, tq, tk).transpose(0, 1).reshape(b // points, points * h, tq, tk)


def _recorded_grid(weights: torch.Tensor, state: AttentionState):
    """(recorded ``[rB, K*H, T, N]`` per mask row, the weights tied to it) for a UNet level (module docstring)."""
    level = GridLevel.of(state.grid, weights.shape[2])
    n = state.text_keys
    b, heads = weights.shape[:2]
    owner = level.owner.to(weights.device)
    per_row = weights.detach()[..., :n].reshape(b, heads, level.rows, level.columns, n).mean(3)  # [b, H, Hs, N]
    recorded = _point_major(per_row[:, :, owner], state.points)  # [rB, K*H, T, N]
    if not (torch.is_grad_enabled() and weights.requires_grad):
        return recorded, weights
    recorded.requires_grad_(True)
    counts = level.counts.to(weights)[owner]  # [T]

    def spread(grad: torch.Tensor) -> torch.Tensor:  # d/d weights -> d/d recorded (the pooling's adjoint)
        rows = grad[..., :n].reshape(b, heads, level.rows, level.columns, n).sum(3)[:, :, owner]
        return _point_major(rows / counts[:, None], state.points)

    return recorded, _TiedRecord.apply(weights, recorded, spread)


class _TiedRecord(torch.autograd.Function):
    """The weights unchanged; backward also gives the record its gradient through `spread` (module docstring)."""

    @staticmethod
    def forward(ctx, weights, recorded, spread):
        ctx.spread = spread
        return weights.view_as(weights)

    @staticmethod
    def backward(ctx, grad):
        return grad, ctx.spread(grad), None


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


__all__ = ["AttentionState", "EditedAttnProcessor", "GridLevel", "edited_attention"]
