"""Fidelity (the paper's Eq. 8-9), mean over prompts of ``functional.fidelity``:

    Fid = mean over prompts of  p(x)[y] - p(x')[y],   p = softmax(f(.)),  y = argmax p(x)

FactualFidelity (x' = x^F, lower is better) and CounterfactualFidelity (x' = x^CF, higher is better)
are the same computation under two names, so both can be logged side by side.
"""
from __future__ import annotations

from torch import Tensor

from ._base import Float64Mean
from .functional import fidelity


class _Fidelity(Float64Mean):
    def __init__(self, from_logits: bool = True, **kwargs):
        """``from_logits``: inputs are classifier logits (True) or probabilities (False)."""
        super().__init__(**kwargs)
        self.from_logits = from_logits

    def update(self, original: Tensor, perturbed: Tensor) -> None:
        """``original``: [B, C] outputs on x; ``perturbed``: [B, C] or [B, R, C] outputs on x'."""
        super().update(fidelity(original, perturbed, self.from_logits))  # [B], repeats averaged


class FactualFidelity(_Fidelity):
    """FidF = mean p(x)[y] - p(x^F)[y]; lower is better (the kept tokens suffice)."""

    higher_is_better = False


class CounterfactualFidelity(_Fidelity):
    """FidCF = mean p(x)[y] - p(x^CF)[y]; higher is better (the removed tokens were necessary)."""

    higher_is_better = True
