"""KL divergence between classifier distributions on x and x' (the paper's Eq. 10-11), mean over prompts
of ``functional.kl``; see ``lightning_agx.metrics.functional.kl`` for the two directions and ``eps``.

FactualKL (x' = x^F) is lower-is-better, CounterfactualKL (x' = x^CF) higher-is-better.
"""
from __future__ import annotations

from torch import Tensor

from ._base import Float64Mean
from .functional import kl
from .functional.kl import check_direction


class _KL(Float64Mean):
    def __init__(self, direction: str = "authors", eps: float = 1e-6, from_logits: bool = True, **kwargs):
        super().__init__(**kwargs)
        check_direction(direction)
        self.direction, self.eps, self.from_logits = direction, eps, from_logits

    def update(self, original: Tensor, perturbed: Tensor) -> None:
        """``original``: [B, C] outputs on x; ``perturbed``: [B, C] or [B, R, C] outputs on x'."""
        super().update(kl(original, perturbed, self.direction, self.eps, self.from_logits))  # [B], repeats averaged


class FactualKL(_KL):
    """KLF: mean KL between p(x) and p(x^F); lower is better. See the module docstring for the direction."""

    higher_is_better = False


class CounterfactualKL(_KL):
    """KLCF: mean KL between p(x) and p(x^CF); higher is better. See the module docstring for the direction."""

    higher_is_better = True
