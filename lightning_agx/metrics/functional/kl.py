"""KL divergence between classifier distributions on x and x' (the paper's Eq. 10-11), per prompt.

``direction="authors"`` (default) reproduces the authors' ``KLDivLoss(log p(x), p(x'))``, i.e.

    KL(p(x') || p(x)) = sum_c q_c (log q_c - log p_c),   p = p(x), q = p(x')

``direction="forward"`` gives KL(p(x) || p(x')) = sum_c p_c (log p_c - log q_c).
Both logs are taken of probabilities clamped to ``eps`` (1e-6, as the authors), the weight is the
unclamped probability (so a zero-probability class contributes 0, like ``xlogy``): zero probabilities
give finite values and identical distributions give exactly 0.
"""
from __future__ import annotations

from torch import Tensor

from ._probs import as_probs

KL_DIRECTIONS = ("authors", "forward")


def check_direction(direction: str) -> None:
    """Raises ``ValueError`` unless ``direction`` is one of ``KL_DIRECTIONS``."""
    if direction not in KL_DIRECTIONS:
        raise ValueError(f"unknown KL direction {direction!r}; available: {', '.join(KL_DIRECTIONS)}")


def kl_divergence(p: Tensor, q: Tensor, eps: float = 1e-6) -> Tensor:
    """KL(p || q) over the last dim with eps-clamped logs: sum_c p_c (log max(p_c, eps) - log max(q_c, eps))."""
    return (p * (p.clamp_min(eps).log() - q.clamp_min(eps).log())).sum(-1)


def kl(original: Tensor, perturbed: Tensor, direction: str = "authors", eps: float = 1e-6,
       from_logits: bool = True) -> Tensor:
    """Per-prompt KL ``[B]`` in float64, the R repeats of a prompt averaged; ``direction`` as in the module docstring.

    ``original``: [B, C] classifier outputs on x; ``perturbed``: [B, C] or [B, R, C] outputs on x';
    ``from_logits``: the inputs are logits (True) or probabilities (False).
    """
    check_direction(direction)
    p_orig, p_pert = as_probs(original, perturbed, from_logits)  # [B, 1, C], [B, R, C]
    p_orig = p_orig.expand_as(p_pert)
    if direction == "authors":
        divergence = kl_divergence(p_pert, p_orig, eps)  # KL(p(x') || p(x))  [B, R]
    else:
        divergence = kl_divergence(p_orig, p_pert, eps)  # KL(p(x) || p(x'))  [B, R]
    return divergence.mean(1)  # [B]
