"""Random-Mask baseline: uniform values in [0, 1] per (step, token), from a seeded generator (0 at padding).

Already in [0, 1], so max-scaling is not applied (it would only stretch the maximum to exactly 1).
"""
from __future__ import annotations

import torch

from ._common import valid_mask


def random_mask(tag, generation, seed: int = 0) -> torch.Tensor:
    b, t, n = len(generation.text), generation.num_steps, generation.text.valid.shape[1]
    rng = torch.Generator().manual_seed(seed)
    values = torch.rand(b, t, n, generator=rng)  # on CPU, so the same seed gives the same mask anywhere
    return values.to(generation.text.embeddings.device) * valid_mask(generation)
