"""KL divergence between classifier distributions on x and x' (the paper's Eq. 10-11).

``direction="authors"`` (default) reproduces the authors' ``KLDivLoss(log p(x), p(x'))``, i.e.

    KL(p(x') || p(x)) = sum_c q_c (log q_c - log p_c),   p = p(x), q = p(x')

``direction="forward"`` gives KL(p(x) || p(x')) = sum_c p_c (log p_c - log q_c).
Both logs are taken of probabilities clamped to ``eps`` (1e-6, as the authors), the weight is the
unclamped probability (so a zero-probability class contributes 0, like ``xlogy``): zero probabilities
give finite values and identical distributions give exactly 0.
FactualKL (x' = x^F) is lower-is-better, CounterfactualKL (x' = x^CF) higher-is-better.
"""
from __future__ import annotations

from torch import Tensor

from ._mean import PerPromptMean
from ._probs import as_probs

DIRECTIONS = ("authors", "forward")


def kl_divergence(p: Tensor, q: Tensor, eps: float = 1e-6) -> Tensor:
    """KL(p || q) over the last dim with eps-clamped logs: sum_c p_c (log max(p_c, eps) - log max(q_c, eps))."""
    return (p * (p.clamp_min(eps).log() - q.clamp_min(eps).log())).sum(-1)


class _KL(PerPromptMean):
    def __init__(self, direction: str = "authors", eps: float = 1e-6, from_logits: bool = True, **kwargs):
        super().__init__(**kwargs)
        if direction not in DIRECTIONS:
            raise ValueError(f"unknown KL direction {direction!r}; available: {', '.join(DIRECTIONS)}")
        self.direction, self.eps, self.from_logits = direction, eps, from_logits

    def update(self, original: Tensor, perturbed: Tensor) -> None:
        """``original``: [B, C] outputs on x; ``perturbed``: [B, C] or [B, R, C] outputs on x'."""
        p_orig, p_pert = as_probs(original, perturbed, self.from_logits)  # [B, 1, C], [B, R, C]
        p_orig = p_orig.expand_as(p_pert)
        if self.direction == "authors":
            kl = kl_divergence(p_pert, p_orig, self.eps)  # KL(p(x') || p(x))  [B, R]
        else:
            kl = kl_divergence(p_orig, p_pert, self.eps)  # KL(p(x) || p(x'))  [B, R]
        self._accumulate(kl.mean(1))  # [B], repeats averaged


class FactualKL(_KL):
    """KLF: mean KL between p(x) and p(x^F); lower is better. See the module docstring for the direction."""

    higher_is_better = False


class CounterfactualKL(_KL):
    """KLCF: mean KL between p(x) and p(x^CF); higher is better. See the module docstring for the direction."""

    higher_is_better = True
