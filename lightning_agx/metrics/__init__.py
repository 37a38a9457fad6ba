"""Faithfulness metrics (the paper's Eq. 8-12) and FAD, as torchmetrics Metrics; their per-prompt functional
forms in ``lightning_agx.metrics.functional``."""
from . import functional
from .fad import FrechetAudioDistance, frechet_distance
from .fidelity import CounterfactualFidelity, FactualFidelity
from .functional import kl_divergence
from .kl import CounterfactualKL, FactualKL
from .mask_size import MaskSize

__all__ = [
    "CounterfactualFidelity",
    "CounterfactualKL",
    "FactualFidelity",
    "FactualKL",
    "FrechetAudioDistance",
    "MaskSize",
    "frechet_distance",
    "functional",
    "kl_divergence",
]
