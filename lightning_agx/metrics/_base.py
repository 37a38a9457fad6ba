"""The accumulator every faithfulness metric shares: torchmetrics' MeanMetric over per-prompt values."""
from __future__ import annotations

import torch
from torchmetrics.aggregation import MeanMetric


class Float64Mean(MeanMetric):
    """``MeanMetric`` summing in float64 whatever the device, with NaN values kept (a NaN prompt gives NaN).

    Its sum-reduced states ``mean_value`` and ``weight`` sync across processes; ``compute`` is NaN before
    any update. Subclasses compute their per-prompt values ``[B]`` in ``update`` and pass them to
    ``super().update``.
    """

    def __init__(self, **kwargs):
        kwargs.setdefault("nan_strategy", "disable")
        super().__init__(**kwargs)
        self.set_dtype(torch.float64)

    def _apply(self, fn, *args, **kwargs):
        # torchmetrics resets ``dtype`` to float32 on ``.to(device)``, and ``update`` casts values to ``dtype``:
        # keep it the states' dtype, so float64 values are never rounded to float32 on their way in.
        this = super()._apply(fn, *args, **kwargs)
        this._dtype = this.mean_value.dtype
        return this
