"""Faithfulness metrics (the paper's Eq. 8-12) and FAD, as torchmetrics Metrics."""
from .fad import FrechetAudioDistance, frechet_distance
from .fidelity import CounterfactualFidelity, FactualFidelity
from .kl import CounterfactualKL, FactualKL, kl_divergence
from .mask_size import MaskSize

__all__ = [
    "CounterfactualFidelity",
    "CounterfactualKL",
    "FactualFidelity",
    "FactualKL",
    "FrechetAudioDistance",
    "MaskSize",
    "frechet_distance",
    "kl_divergence",
]
