"""Size (the paper's Eq. 12): mean mask value; smaller explanations are simpler."""
from __future__ import annotations

from torch import Tensor

from ._base import Float64Mean
from .functional import mask_size


class MaskSize(Float64Mean):
    """Mean mask value per explanation over its valid text tokens (``functional.mask_size``), then mean over
    explanations.

    ``update(mask, valid=None)``: ``mask`` is ``[B, T, N]`` (or one ``[T, N]``) with values in [0, 1]
    over T audio steps and N text tokens; ``valid`` is ``[B, N]`` (or ``[N]``) bool, False on padding
    tokens, which are excluded. Each explanation weighs the same whatever its number of tokens.
    """

    higher_is_better = False

    def update(self, mask: Tensor, valid: Tensor | None = None) -> None:
        super().update(mask_size(mask, valid))  # [B] mean per explanation
