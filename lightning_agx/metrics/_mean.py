"""The state every faithfulness metric shares: a mean over prompts, kept as a sum and a count that sync."""
from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics import Metric


class PerPromptMean(Metric):
    """Mean over all prompts seen of one value per prompt; subclasses compute the values in ``update``."""

    full_state_update = False

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.add_state("total", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def _accumulate(self, per_prompt: Tensor) -> None:
        """Add ``[B]`` per-prompt values."""
        self.total += per_prompt.sum().to(self.total)
        self.count += per_prompt.numel()

    def compute(self) -> Tensor:
        """Mean over all prompts seen (NaN before any update)."""
        return self.total / self.count
