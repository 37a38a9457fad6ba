"""AudioGenX: the mask generator's keep probabilities p ``[B, T, N]`` after optimising Eq. 6
(``audiogenx``), Eq. 3 + regularisers only (``audiogenx_factual``) or Eq. 5 + regularisers only
(``audiogenx_counterfactual``), with `optimize_masks` (one teacher-forced pass per epoch, all B prompts).

We return p (the sigmoid output, deterministic for a seed) rather than one Gumbel sample of m: the authors
read m at evaluation, whose expectation under the soft Gumbel-softmax is close to p. p is in (0, 1), so
no scaling is applied; padding is set to 0.
"""
from __future__ import annotations

from dataclasses import replace

import torch

from ..explainer import ExplainerConfig, optimize_masks
from ._common import valid_mask


def _config(config: ExplainerConfig | dict | None, objective: str, **overrides) -> ExplainerConfig:
    if isinstance(config, dict):
        config = ExplainerConfig(**config)
    config = config or ExplainerConfig()
    return replace(config, objective=objective, **overrides)


def audiogenx(tag, generation, seed: int = 0, config: ExplainerConfig | dict | None = None, **overrides) -> torch.Tensor:
    p = optimize_masks(tag, generation, _config(config, "both", **overrides), seed=seed)
    return p.detach() * valid_mask(generation)


def audiogenx_factual(tag, generation, seed: int = 0, config: ExplainerConfig | dict | None = None,
                      **overrides) -> torch.Tensor:
    p = optimize_masks(tag, generation, _config(config, "factual", **overrides), seed=seed)
    return p.detach() * valid_mask(generation)


def audiogenx_counterfactual(tag, generation, seed: int = 0, config: ExplainerConfig | dict | None = None,
                             **overrides) -> torch.Tensor:
    p = optimize_masks(tag, generation, _config(config, "counterfactual", **overrides), seed=seed)
    return p.detach() * valid_mask(generation)
