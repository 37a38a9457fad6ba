"""What the explanation methods share: scalings, padding, recorded attention.

Shapes: B prompts, T steps, N text tokens (padded to the longest prompt). The sequence score of the gradient
methods is the sum of `StepOutputs.log_probs` (``TAGModel.forward_steps(log_probs=True)``): the
log-probability of the generated output under the conditional (unguided) model, as AudioGenX's latents are
conditional too.
"""
from __future__ import annotations

import torch

from ..models import CrossAttentionEdit


def valid_mask(generation) -> torch.Tensor:
    """``[B, 1, N]`` float: 1 on the prompt's tokens, 0 on padding."""
    return generation.text.valid[:, None, :].float()


def max_scale(importance: torch.Tensor, valid: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Divide each sequence ``[T, N]`` by its maximum over valid tokens; padding set to 0. All-zero stays 0."""
    importance = importance * valid
    top = importance.flatten(1).amax(1).clamp_min(eps)[:, None, None]
    return importance / top


def minmax_scale(importance: torch.Tensor, valid: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """(x - min) / (max - min) per sequence over valid tokens; a constant sequence gives 0; padding 0."""
    big = torch.finfo(importance.dtype).max
    low = torch.where(valid.bool(), importance, big).flatten(1).amin(1)[:, None, None]
    high = torch.where(valid.bool(), importance, -big).flatten(1).amax(1)[:, None, None]
    span = high - low
    scaled = torch.where(span > eps, (importance - low) / span.clamp_min(eps), torch.zeros_like(importance))
    return scaled * valid


def mean_attention(weights: list[torch.Tensor], batch: int) -> torch.Tensor:
    """Recorded cross-attention ``[batch', heads, T, N]`` per layer -> ``[B, T, N]`` mean over layers and heads."""
    return torch.stack([w[:batch].float().mean(1) for w in weights]).mean(0)


def recorded_layers(edit: CrossAttentionEdit) -> list[torch.Tensor]:
    """The recorded cross-attention tensors themselves (one per layer for a teacher-forced pass), not the
    concatenated copies of `layer_weights()`, so that gradients w.r.t. them exist."""
    layers = [steps for steps in edit.weights if steps]
    if any(len(steps) != 1 for steps in layers):
        raise RuntimeError("expected one recorded call per layer (a teacher-forced pass), got a streamed one")
    return [steps[0] for steps in layers]
