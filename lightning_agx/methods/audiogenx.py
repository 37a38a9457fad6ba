"""AudioGenX as one method: the mask generator's keep probabilities p ``[B, T, N]`` after optimising Eq. 6
(objective ``both``), Eq. 3 + regularisers only (``factual``) or Eq. 5 + regularisers only
(``counterfactual``), with `lightning_agx.explainer.optimize_masks` (one reference pass per epoch, all B prompts).

The registry keeps one name per objective for the tables (`VARIANTS`: ``audiogenx``, ``audiogenx_factual``,
``audiogenx_counterfactual``). We return p (the sigmoid output, deterministic for a seed) rather than one
Gumbel sample of m: the authors read m at evaluation, whose expectation under the soft Gumbel-softmax is
close to p. p is in (0, 1), so no scaling is applied; padding is set to 0.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar

import torch

from ..explainer import OBJECTIVES, ExplainerConfig, optimize_masks
from ._common import valid_mask


def variant_name(objective: str) -> str:
    """The method name of an AudioGenX objective: audiogenx, audiogenx_factual, audiogenx_counterfactual."""
    return "audiogenx" if objective == "both" else f"audiogenx_{objective}"


VARIANTS = {variant_name(objective): objective for objective in OBJECTIVES}  # method name -> objective


@dataclass
class AudioGenXOptions(ExplainerConfig):
    """Per-prompt AudioGenX's options: the explainer config's fields, overriding ``config``'s; the objective is
    the variant's (`VARIANTS`)."""

    FIXED: ClassVar[tuple[str, ...]] = ("objective",)


OPTIONS = AudioGenXOptions


def audiogenx(tag, generation, seed: int | list[int] = 0, config: ExplainerConfig | dict | None = None,
              objective: str | None = None, **overrides) -> torch.Tensor:
    """``[B, T, N]`` keep probabilities; `config` (or its fields as `overrides`) sets the explainer, `objective`
    replaces its objective."""
    if isinstance(config, dict):
        config = ExplainerConfig(**config)
    config = replace(config or ExplainerConfig(), **overrides, **({"objective": objective} if objective else {}))
    p = optimize_masks(tag, generation, config, seed=seed)
    return p.detach() * valid_mask(generation)
