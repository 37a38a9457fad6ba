"""Random-Mask baseline: uniform values in [0, 1] per (step, token), from a seeded generator (0 at padding).

Already in [0, 1], so max-scaling is not applied (it would only stretch the maximum to exactly 1).
"""
from __future__ import annotations

import torch

from ._common import valid_mask
from .base import Method


def random_mask(tag, generation, seed: int | list[int] = 0) -> torch.Tensor:
    """Prompt b's values come from its own seed (``seed[b]``, or ``prompt_seed(seed, b)`` for an int), drawn on
    the CPU for its own tokens, so the same seed gives the same mask anywhere and in any batch."""
    from ..seeding import resolve_seeds
    b, t, n = len(generation.text), generation.num_steps, generation.text.valid.shape[1]
    values = torch.zeros(b, t, n)
    for row, s in enumerate(resolve_seeds(seed, b)):
        length = len(generation.text.tokens[row])
        values[row, :, :length] = torch.rand(t, length, generator=torch.Generator().manual_seed(s))
    return values.to(generation.text.embeddings.device) * valid_mask(generation)


class RandomMask(Method):
    """The Random-Mask baseline."""

    def explain(self, tag, generation, seeds):
        return random_mask(tag, generation, seed=seeds)
