"""Shared input checks of the classifier-based faithfulness metrics (the paper's Eq. 8-11)."""
from __future__ import annotations

from torch import Tensor


def as_probs(original: Tensor, perturbed: Tensor, from_logits: bool) -> tuple[Tensor, Tensor]:
    """Checks shapes and returns ``p(x)  # [B, 1, C]`` and ``p(x')  # [B, R, C]`` in float64.

    ``original`` is ``[B, C]``; ``perturbed`` is ``[B, C]`` (one generation per prompt) or
    ``[B, R, C]`` (R repeated generations per prompt, each compared with the same original).
    """
    if original.dim() != 2:
        raise ValueError(f"original must be [B, C] classifier outputs, got shape {tuple(original.shape)}")
    given = tuple(perturbed.shape)
    if perturbed.dim() == 2:
        perturbed = perturbed.unsqueeze(1)  # [B, 1, C]
    if perturbed.dim() != 3 or perturbed.shape[0] != original.shape[0] or perturbed.shape[2] != original.shape[1]:
        raise ValueError(
            f"perturbed must be [B, C] or [B, R, C] matching original {tuple(original.shape)}, "
            f"got {given}")
    if perturbed.shape[1] == 0:
        raise ValueError("perturbed has zero repeats (R = 0)")
    original, perturbed = original.double(), perturbed.double()
    if from_logits:
        original, perturbed = original.softmax(-1), perturbed.softmax(-1)
    return original.unsqueeze(1), perturbed  # [B, 1, C], [B, R, C]
