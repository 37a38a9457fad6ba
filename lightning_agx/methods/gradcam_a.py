"""Grad-CAM-a (the paper's baselines): Grad-CAM on the LM latent, spread over tokens by the cross-attention.

Our exact choices (the appendix gives only the prose):
  score     S = sum over codebooks and real (non-special) positions of log p(generated token), from the
            conditional model in one reference pass (`StepOutputs.log_probs`);
  channels  the D dimensions of the latent h_t (the explained latents of `TAGModel.forward_steps`);
  weights   alpha_d = mean over the T steps of dS/dh_{t,d}   (Grad-CAM's global average pooling, over time);
  cam_t     ReLU(sum_d alpha_d h_{t,d})                       (one value per step);
  tokens    importance[t, n] = cam_t * A[t, n], with A the cross-attention averaged over layers and heads of
            the same pass (the paper's "via the cross-attention map");
  scaling   divided by its maximum per sequence.
"""
from __future__ import annotations

import torch

from ..models import CrossAttentionEdit
from ._common import max_scale, mean_attention, valid_mask
from .base import Method


def gradcam_a(tag, generation, seed: int = 0) -> torch.Tensor:
    b = len(generation.text)
    edit = CrossAttentionEdit(record=True)
    out = tag.forward_steps(generation, edit=edit, log_probs=True, grad=True)
    hidden = out.latents  # [B, T, D]
    (grad,) = torch.autograd.grad(out.log_probs.sum(), hidden)  # [B, T, D]
    alpha = grad.mean(1, keepdim=True)  # [B, 1, D]
    cam = torch.relu((alpha * hidden.detach()).sum(-1))  # [B, T]
    attn = mean_attention([w.detach() for w in edit.layer_weights()], b)  # [B, T, N]
    return max_scale(cam[..., None] * attn, valid_mask(generation))


class GradCAMA(Method):
    """Grad-CAM-a (the paper's baselines)."""

    def explain(self, tag, generation, seeds):
        return gradcam_a(tag, generation)
