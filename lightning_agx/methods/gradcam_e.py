"""Grad-CAM-e (the paper's baselines): gradients of the last cross-attention map, per output stream (codebook).

Our exact choices:
  map       A: the weights of the LAST cross-attention layer ``[B, heads, T, N]`` in one teacher-forced pass;
  score_k   sum over steps of log p(generated token of stream k) (`StepOutputs.log_probs`, conditional);
  cam_k     ReLU(mean over heads of dS_k/dA * A)   (Grad-CAM with heads as channels, one map per codebook);
  result    mean over the K codebooks of cam_k, divided by its maximum per sequence.
K gradients are taken from the same forward graph (retain_graph).
"""
from __future__ import annotations

import torch

from ..models import CrossAttentionEdit
from ._common import max_scale, recorded_layers, valid_mask
from .base import Method


def attention_gradients(tag, generation) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """(last-layer cross-attention ``[B, H, T, N]``, its gradient per codebook ``K x [B, H, T, N]``)."""
    edit = CrossAttentionEdit(record=True)
    out = tag.forward_steps(generation, edit=edit, log_probs=True, grad=True)
    last = recorded_layers(edit)[-1]  # [B, H, T, N], part of the graph
    per_codebook = out.log_probs.sum(-1)  # [B, K]
    grads = [torch.autograd.grad(per_codebook[:, k].sum(), last, retain_graph=k < per_codebook.shape[1] - 1)[0]
             for k in range(per_codebook.shape[1])]
    return last.detach(), grads


def gradcam_e(tag, generation, seed: int = 0) -> torch.Tensor:
    weights, grads = attention_gradients(tag, generation)
    cams = torch.stack([torch.relu((g * weights).mean(1)) for g in grads])  # [K, B, T, N]
    return max_scale(cams.mean(0), valid_mask(generation))


class GradCAME(Method):
    """Grad-CAM-e (the paper's baselines)."""

    def explain(self, tag, generation, seeds):
        return gradcam_e(tag, generation)
