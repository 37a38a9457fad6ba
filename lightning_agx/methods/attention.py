"""Raw cross-attention: the weights softmax(q k^T / sqrt(d)) of the conditional batch, averaged over all
cross-attention layers and heads, from one teacher-forced pass (no gradient, no scaling beyond the
per-sequence max-scaling every baseline but AtMan gets, as in the paper's baselines).

audiocraft's cross-attention has no key padding mask, so padding tokens (zero embeddings, but biased keys)
get some weight in a padded batch; we zero them afterwards without renormalising.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import UserError
from ..models import CrossAttentionEdit
from ._common import max_scale, mean_attention, valid_mask
from .base import Method


@dataclass
class AttentionOptions:
    scale: bool = True  # max-scale each sequence's map

    def __post_init__(self) -> None:
        if not isinstance(self.scale, bool):
            raise UserError(f"attention option scale must be true or false; got {self.scale!r}")



@torch.no_grad()
def attention(tag, generation, seed: int = 0, scale: bool = True) -> torch.Tensor:
    """``[B, T, N]`` cross-attention averaged over layers and heads (max-scaled per sequence if `scale`)."""
    edit = CrossAttentionEdit(record=True)
    tag.forward_steps(generation, edit=edit)
    weights = mean_attention(edit.layer_weights(), len(generation.text))  # [B, T, N]
    valid = valid_mask(generation)
    return max_scale(weights, valid) if scale else weights * valid


class Attention(Method):
    """Raw cross-attention averaged over layers and heads."""

    Options = AttentionOptions

    def explain(self, tag, generation, seeds):
        return attention(tag, generation, scale=self.options.scale)
