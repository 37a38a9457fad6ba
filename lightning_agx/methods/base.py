"""What an explanation method is: a small registered class (inseq's attribution classes), one per method file.

A `Method` owns
- its options: ``Options``, a dataclass whose ``__post_init__`` checks their values; a key it does not declare
  is refused with the method's options listed (`lightning_agx.methods.options`);
- ``prepare(tag)``: run once before any work (load and check a checkpoint, say), so a bad file stops the run
  before the first generation;
- ``identity(tag)``: what its results depend on beyond the run's settings (JSON-ready), part of the run
  identity, so results made another way are never reused;
- ``explain(tag, generation, seeds) -> [B, T, N]``: importance of every text token at every step (0 at
  padding), for the B prompts of one `Generation`, prompt b drawing any randomness from ``seeds[b]``;
- ``per_chunk_optimisation``: whether it is optimised per chunk through Lightning (per-prompt AudioGenX: the
  module runs its steps in a fit) or is one pass (everything else: the module's ``predict_step``).

The drivers (the module, the evaluation, the analyses, the explorer) never ask which method they run.
"""
from __future__ import annotations

import json
from dataclasses import asdict
from typing import ClassVar

import torch

from .options import NoOptions, check_options


class Method:
    """One explanation method with its options (see the module doc)."""

    Options: ClassVar[type] = NoOptions
    per_chunk_optimisation: ClassVar[bool] = False
    reads_explainer: ClassVar[bool] = False  # reads the explainer config (AudioGenX's objective, Eq. 6)
    config_section: ClassVar[str | None] = None  # the run config's section holding its options (e.g. "amortized")

    def __init__(self, name: str, options: dict | None = None, config=None):
        from ..explainer import ExplainerConfig
        options = check_options(name, self.reads_explainer, self.Options, options)
        self.name = name
        given = options.pop("config", None)
        self.config = given if given is not None else (config if config is not None else ExplainerConfig())
        self.options = self.Options(**options)

    # ------------------------------------------------------------------ the interface
    def prepare(self, tag) -> "Method":
        """Run once before any work (nothing by default)."""
        return self

    def identity(self, tag) -> dict:
        """What the results depend on beyond the run's settings: the options (JSON-ready)."""
        return json.loads(json.dumps(asdict(self.options), default=str))

    def explain(self, tag, generation, seeds: list[int]) -> torch.Tensor:
        raise NotImplementedError

    @property
    def record_name(self) -> str:
        """The name the results are recorded under (the registry name; AudioGenX: its objective's variant)."""
        return self.name

    def explainer_config(self, tag):
        """The explainer config this method runs with on `tag` (the model's recommended settings, overridden)."""
        return self.config.for_model(tag)

    # ------------------------------------------------------------------ checked
    def run(self, tag, generation, seeds: list[int]) -> torch.Tensor:
        """``[B, T, N]`` importance of `explain`, checked: right shape, finite, 0 at padding."""
        importance = self.explain(tag, generation, list(seeds)).detach()
        expected = (len(generation.text), generation.num_steps, generation.text.valid.shape[1])
        if tuple(importance.shape) != expected:
            raise RuntimeError(f"method '{self.name}' returned shape {tuple(importance.shape)}, expected {expected}")
        if not torch.isfinite(importance).all():
            raise FloatingPointError(f"method '{self.name}' returned non-finite importance")
        return importance * generation.text.valid[:, None, :]


__all__ = ["Method"]
