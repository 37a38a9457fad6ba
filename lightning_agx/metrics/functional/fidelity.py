"""Fidelity (the paper's Eq. 8-9) per prompt: drop of the original top class's probability under a perturbation.

    Fid = p(x)[y] - p(x')[y],   p = softmax(f(.)),  y = argmax p(x)
"""
from __future__ import annotations

from torch import Tensor

from ._probs import as_probs


def fidelity(original: Tensor, perturbed: Tensor, from_logits: bool = True) -> Tensor:
    """Per-prompt fidelity ``[B]`` in float64, the R repeats of a prompt averaged.

    ``original``: [B, C] classifier outputs on x; ``perturbed``: [B, C] or [B, R, C] outputs on x';
    ``from_logits``: the inputs are logits (True) or probabilities (False).
    """
    p_orig, p_pert = as_probs(original, perturbed, from_logits)  # [B, 1, C], [B, R, C]
    y = p_orig.argmax(-1, keepdim=True)  # [B, 1, 1]
    drop = p_orig.gather(-1, y) - p_pert.gather(-1, y.expand(-1, p_pert.shape[1], -1))  # [B, R, 1]
    return drop.squeeze(-1).mean(1)  # [B]
