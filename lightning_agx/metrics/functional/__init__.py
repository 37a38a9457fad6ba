"""Functional forms of the faithfulness metrics (the paper's Eq. 8-12): one value per prompt ``[B]``, no state.

The Metric classes of ``lightning_agx.metrics`` average these values over all prompts seen.
"""
from .fidelity import fidelity
from .kl import KL_DIRECTIONS, kl, kl_divergence
from .mask_size import mask_size

__all__ = ["KL_DIRECTIONS", "fidelity", "kl", "kl_divergence", "mask_size"]
