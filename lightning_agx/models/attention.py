"""Edit audiocraft's cross-attention from the outside (AudioGenX Eq. 2 and 4, AtMan, attention maps).

`edit_cross_attention(lm, edit)` temporarily replaces the ``forward`` of every cross-attention module of an
audiocraft ``LMModel`` by `_edited_forward`, which computes the same attention with audiocraft's own
projection weights and applies the edit; leaving the context restores the original ``forward``.
Edits concern the conditional half of a classifier-free-guidance batch ``[cond; uncond]`` only.

Padding keys get no attention. audiocraft pads the text of a batch to its longest prompt and its
cross-attention attends to the padding (zero embeddings, plus positions where the fuser adds them), so a
prompt's output changed with the length of its neighbours. A pre-hook on the LM's ``ConditionFuser`` reads
the masks of the cross-attention conditions as they enter (in the fuser's order) and the edited attention
gives padding keys a score of -inf. A row with no valid key (the null condition of classifier-free
guidance) attends to its first key only: with no positions on the text that is exactly audiocraft's value
(all its keys are equal), and with positions it no longer depends on the batch's padding width.

Rows of the edit tensors are the model's steps. For an autoregressive LM (``streaming=True``) a teacher-forced
pass sees all T steps at once and a streaming generation one step per call, so each module keeps its own step
counter. For a model that sees every step in every call (MAGNeT's parallel decoding, ``streaming=False``),
each call's queries are steps 0..T-1.
"""
from __future__ import annotations

import contextlib
import math
import types
from dataclasses import dataclass, field

import torch
from einops import rearrange
from torch import nn


@dataclass
class CrossAttentionEdit:
    """What to do to the cross-attention weights of the conditional batch rows.

    post_softmax: ``[B, T, N]`` multiplier of the softmax weights, no renormalisation (AudioGenX's mask).
    pre_softmax: ``[B, T, N]`` multiplier of the scores q.k/sqrt(d) before the softmax (AtMan).
    record: keep the (post-edit) weights of every layer in ``weights``, for the whole model batch
        (``[cond; uncond]`` under classifier-free guidance), ``[batch, heads, T, N]`` each.
    """

    post_softmax: torch.Tensor | None = None
    pre_softmax: torch.Tensor | None = None
    record: bool = False
    weights: list[list[torch.Tensor]] = field(default_factory=list)

    def __post_init__(self) -> None:
        shapes = {t.shape for t in (self.post_softmax, self.pre_softmax) if t is not None}
        for shape in shapes:
            if len(shape) != 3:
                raise ValueError(f"a cross-attention mask must be [B, T, N]; got shape {tuple(shape)}")
        if len(shapes) > 1:
            raise ValueError(f"post_softmax and pre_softmax masks differ in shape: {sorted(shapes)}")

    @property
    def batch_size(self) -> int | None:
        mask = self.post_softmax if self.post_softmax is not None else self.pre_softmax
        return None if mask is None else mask.shape[0]

    def layer_weights(self) -> list[torch.Tensor]:
        """Recorded weights per layer that ran, steps concatenated: ``[batch, heads, T, N]`` each."""
        return [torch.cat(steps, dim=2) for steps in self.weights if steps]


def cross_attention_modules(lm: nn.Module) -> list[nn.Module]:
    """The cross-attention module of every transformer layer of an audiocraft LMModel, in layer order."""
    modules = [layer.cross_attention for layer in lm.transformer.layers
               if getattr(layer, "cross_attention", None) is not None]
    if not modules:
        raise ValueError("this LM has no cross-attention layers; AudioGenX needs text cross-attention")
    return modules


@contextlib.contextmanager
def edit_cross_attention(lm: nn.Module, edit: CrossAttentionEdit | None = None, streaming: bool = True):
    """Inside the ``with`` block every cross-attention layer of `lm` ignores padding keys and applies `edit`
    (None: no edit, padding masked only). Usable around generation, teacher forcing and training.
    `streaming`: calls see consecutive steps (autoregressive LM), else every call starts at step 0."""
    edit = edit if edit is not None else CrossAttentionEdit()
    modules = cross_attention_modules(lm)
    if any("forward" in vars(m) for m in modules):
        raise RuntimeError("cross-attention is already edited; nested edit_cross_attention is not supported")
    edit.weights = [[] for _ in modules]
    keys = _KeyMask()
    hook = lm.fuser.register_forward_pre_hook(keys.read, with_kwargs=True)
    try:
        for index, module in enumerate(modules):
            module.forward = types.MethodType(_make_forward(edit, index, keys, streaming), module)
        yield edit
    finally:
        hook.remove()
        for module in modules:
            vars(module).pop("forward", None)


class _KeyMask:
    """The valid cross-attention keys ``[batch, N]`` of the fuser's latest call (None before any call)."""

    def __init__(self):
        self.valid: torch.Tensor | None = None

    def read(self, fuser: nn.Module, args: tuple, kwargs: dict) -> None:
        conditions = kwargs.get("conditions", args[1] if len(args) > 1 else None)
        masks = [mask for name, (_, mask) in (conditions or {}).items() if fuser.cond2fuse.get(name) == "cross"]
        if not masks:
            self.valid = None
            return
        valid = torch.cat(masks, dim=1).bool()
        empty = ~valid.any(dim=1)
        if empty.any():  # a null condition: attend to the first key only (see the module docstring)
            valid = valid.clone()
            valid[empty, 0] = True
        self.valid = valid


def _make_forward(edit: CrossAttentionEdit, layer: int, keys: _KeyMask, streaming: bool = True):
    step = [0]  # next step this layer will see

    def forward(module, query, key, value, key_padding_mask=None, need_weights=False, attn_mask=None,
                average_attn_weights=True, is_causal=False):
        if key_padding_mask is not None or attn_mask is not None:
            raise NotImplementedError("edited cross-attention does not support key_padding_mask/attn_mask")
        start = step[0]
        if streaming:
            step[0] += query.shape[1]
        valid = keys.valid
        if valid is not None and tuple(valid.shape) != tuple(key.shape[:2]):
            raise RuntimeError(f"cross-attention keys {tuple(key.shape[:2])} do not match the condition masks "
                               f"{tuple(valid.shape)} the fuser saw")
        return _edited_forward(module, edit, layer, start, query, key, value, valid), None

    return forward


def _projections(module: nn.Module):
    """(in_proj_weight, in_proj_bias, out_proj) of an audiocraft StreamingMultiheadAttention."""
    if getattr(module, "custom", False):
        return module.in_proj_weight, module.in_proj_bias, module.out_proj
    mha = module.mha
    if not mha._qkv_same_embed_dim:
        raise NotImplementedError("cross-attention with kdim/vdim different from embed_dim")
    return mha.in_proj_weight, mha.in_proj_bias, mha.out_proj


def _rows(mask: torch.Tensor, start: int, length: int, batch: int, n_keys: int) -> torch.Tensor:
    """Mask rows for steps [start, start+length) laid out for a batch of `batch` rows: ``[batch, 1, L, N]``."""
    b_mask, t_mask, n_mask = mask.shape
    if n_mask != n_keys:
        raise ValueError(f"mask has N={n_mask} text tokens but the cross-attention sees {n_keys}; "
                         "build the mask from the same prompts (and padding) as the model input")
    if start + length > t_mask:
        raise ValueError(f"mask has T={t_mask} steps but the model reached step {start + length}; "
                         "give one mask row per LM step")
    rows = mask[:, start:start + length]
    if batch == b_mask:
        return rows[:, None]
    if batch == 2 * b_mask:  # classifier-free guidance: [cond; uncond], the unconditional half untouched
        return torch.cat([rows, torch.ones_like(rows)])[:, None]
    raise ValueError(f"mask batch {b_mask} matches neither the model batch {batch} nor its conditional half")


def project_qkv(module: nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor):
    """audiocraft's attention projections of a StreamingMultiheadAttention: q, k, v ``[b, heads, L, d]`` (in
    float32 when the module computes its attention so) and the output dtype."""
    weight, bias, _ = _projections(module)
    dim = weight.shape[0] // 3
    biases = (None, None, None) if bias is None else (bias[:dim], bias[dim:2 * dim], bias[2 * dim:])
    q = nn.functional.linear(query, weight[:dim], biases[0])
    k = nn.functional.linear(key, weight[dim:2 * dim], biases[1])
    v = nn.functional.linear(value, weight[2 * dim:], biases[2])
    if getattr(module, "qk_layer_norm", False):
        q, k = module.q_layer_norm(q), module.k_layer_norm(k)
    heads = module.num_heads
    q, k, v = (rearrange(x, "b t (h d) -> b h t d", h=heads) for x in (q, k, v))
    dtype = q.dtype
    if getattr(module, "attention_as_float32", False):
        q, k, v = q.float(), k.float(), v.float()
    return q, k, v, dtype


def attend_out(module: nn.Module, weights: torch.Tensor, v: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``weights [b, h, L, S] @ v [b, h, S, d]``, heads merged, then the module's output projection."""
    x = torch.einsum("bhts,bhsd->bhtd", weights, v).to(dtype)
    return _projections(module)[2](rearrange(x, "b h t d -> b t (h d)"))


def _edited_forward(module, edit: CrossAttentionEdit, layer: int, start: int, query: torch.Tensor,
                    key: torch.Tensor, value: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
    """audiocraft's cross-attention (softmax(q k^T / sqrt(d)) v, then out_proj) with the edit applied."""
    q, k, v, dtype = project_qkv(module, query, key, value)  # k, v: [b, h, N, d]
    batch, length, n_keys = query.shape[0], query.shape[1], key.shape[1]

    scores = torch.einsum("bhtd,bhnd->bhtn", q, k) / math.sqrt(q.shape[-1])  # [b, h, L, N]
    if edit.pre_softmax is not None:
        scores = scores * _rows(edit.pre_softmax, start, length, batch, n_keys).to(scores)
    if valid is not None:  # padding keys get no attention
        scores = scores.masked_fill(~valid[:, None, None, :], float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    if edit.post_softmax is not None:
        weights = weights * _rows(edit.post_softmax, start, length, batch, n_keys).to(weights)
    if edit.record:
        edit.weights[layer].append(weights)
    return attend_out(module, weights, v, dtype)
