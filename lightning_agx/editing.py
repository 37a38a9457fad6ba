"""Editing audio with an explanation (the paper's Eq. 15), and generating with any mask in the cross-attention.

Eq. 15 sets the mask of chosen tokens over chosen seconds to a value (0.9 amplifies, 0.1 suppresses; any value,
above 1 too) and regenerates with ``A * mask`` in every text cross-attention. The analyses (``analysis.editing``,
``analysis.difference``) and the explorer app (`lightning_agx.app`) use these functions.
"""
from __future__ import annotations

import torch

from .explanation import Explanation


def edit_mask(explanation: Explanation, token_indices: list[int], start: float, end: float | None,
              value: float) -> torch.Tensor:
    """Eq. 15: the mask ``[T, N]`` with entries (token i, steps of [start, end) s) set to `value`."""
    mask = explanation.mask.float().clone()
    steps = explanation.steps(start, end if end is not None else explanation.duration)
    for i in token_indices:
        if not 0 <= i < mask.shape[1]:
            raise IndexError(f"token index {i} outside 0..{mask.shape[1] - 1} for {explanation.prompt!r}")
        mask[steps, i] = value
    return mask


def padded_masks(explanations: list[Explanation], text, fill: float = 1.0) -> torch.Tensor:
    """``[B, T, N_batch]`` masks laid out like `text` (padding tokens get `fill`)."""
    b, n = text.valid.shape
    t = max(e.num_steps for e in explanations)
    out = torch.full((b, t, n), fill)
    for i, e in enumerate(explanations):
        out[i, :e.num_steps, :e.mask.shape[1]] = e.mask.float()
    return out


@torch.no_grad()
def generate_with_masks(tag, prompts: list[str], masks: torch.Tensor | None, seed: int | list[int],
                        generation: dict | None = None, duration: float | None = None) -> torch.Tensor:
    """Audio ``[B, C, samples]`` generated with ``A * mask`` in every cross-attention (None: unmasked);
    `generation`: sampling overrides (a ``duration`` among them, or `duration`)."""
    from .models import CrossAttentionEdit
    edit = None if masks is None else CrossAttentionEdit(post_softmax=masks.to(tag.device))
    params = {**(generation or {}), **({} if duration is None else {"duration": duration})}
    gen = tag.generate(prompts, seed=seed, edit=edit, **params)
    return tag.decode(gen.codes).cpu()


__all__ = ["edit_mask", "generate_with_masks", "padded_masks"]
