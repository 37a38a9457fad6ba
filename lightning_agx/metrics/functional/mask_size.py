"""Size (the paper's Eq. 12) per explanation: mean mask value over its valid text tokens."""
from __future__ import annotations

import torch
from torch import Tensor


def mask_size(mask: Tensor, valid: Tensor | None = None) -> Tensor:
    """Mean mask value of each explanation ``[B]`` in float64 (``[1]`` for one unbatched mask).

    ``mask`` is ``[B, T, N]`` (or one ``[T, N]``) with values in [0, 1] over T audio steps and N text tokens;
    ``valid`` is ``[B, N]`` (or ``[N]``) bool, False on padding tokens, which are excluded.
    """
    if mask.dim() == 2:
        mask = mask.unsqueeze(0)  # [1, T, N]
        valid = None if valid is None else valid.reshape(1, -1)
    if mask.dim() != 3:
        raise ValueError(f"mask must be [B, T, N] or [T, N], got shape {tuple(mask.shape)}")
    B, T, N = mask.shape
    if valid is None:
        valid = torch.ones(B, N, dtype=torch.bool, device=mask.device)
    if valid.shape != (B, N) or valid.dtype != torch.bool:
        raise ValueError(f"valid must be a bool tensor of shape {(B, N)}, got {valid.dtype} {tuple(valid.shape)}")
    n_valid = valid.sum(-1)  # [B]
    if (n_valid == 0).any():
        raise ValueError(f"explanations {torch.nonzero(n_valid == 0).flatten().tolist()} have no valid token")
    mask = mask.double() * valid[:, None, :]  # [B, T, N], padding zeroed
    return mask.sum((1, 2)) / (n_valid * T)  # [B]
