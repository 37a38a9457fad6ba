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
from .base import Method


def variant_name(objective: str) -> str:
    """The method name of an AudioGenX objective: audiogenx, audiogenx_factual, audiogenx_counterfactual."""
    return "audiogenx" if objective == "both" else f"audiogenx_{objective}"


VARIANTS = {variant_name(objective): objective for objective in OBJECTIVES}  # method name -> objective


@dataclass
class AudioGenXOptions(ExplainerConfig):
    """Per-prompt AudioGenX's options: the explainer config's fields, overriding ``config``'s; the objective is
    the variant's (`VARIANTS`)."""

    FIXED: ClassVar[tuple[str, ...]] = ("objective",)



def audiogenx(tag, generation, seed: int | list[int] = 0, config: ExplainerConfig | dict | None = None,
              objective: str | None = None, **overrides) -> torch.Tensor:
    """``[B, T, N]`` keep probabilities; `config` (or its fields as `overrides`) sets the explainer, `objective`
    replaces its objective."""
    if isinstance(config, dict):
        config = ExplainerConfig(**config)
    config = replace(config or ExplainerConfig(), **overrides, **({"objective": objective} if objective else {}))
    p = optimize_masks(tag, generation, config, seed=seed)
    return p.detach() * valid_mask(generation)


class AudioGenX(Method):
    """Per-prompt AudioGenX: the mask generator optimised on Eq. 6 for each chunk, through Lightning's fit (the
    module runs its `epochs` steps); its options are the explainer config's fields. The objective is the
    variant's (`objective`), else the config's (both by default)."""

    Options = AudioGenXOptions
    per_chunk_optimisation = True
    reads_explainer = True
    objective: ClassVar[str | None] = None

    def explainer_config(self, tag) -> ExplainerConfig:
        config = replace(self.config, **self.options.given())
        return (config if self.objective is None else replace(config, objective=self.objective)).for_model(tag)

    @property
    def record_name(self) -> str:
        return variant_name(self.objective or self.config.objective or "both")

    def identity(self, tag) -> dict:
        return {}  # everything it depends on is the explainer config, recorded in the run identity

    def explain(self, tag, generation, seeds):
        return optimize_masks(tag, generation, self.explainer_config(tag), seed=seeds).detach() * valid_mask(generation)


class AudioGenXFactual(AudioGenX):
    """AudioGenX with the factual objective only (Eq. 3 + regularisers)."""

    objective = "factual"


class AudioGenXCounterfactual(AudioGenX):
    """AudioGenX with the counterfactual objective only (Eq. 5 + regularisers)."""

    objective = "counterfactual"
