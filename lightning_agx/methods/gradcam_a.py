"""Grad-CAM-a (the paper's baselines): Grad-CAM on the LM latent, spread over tokens by the cross-attention.

Our exact choices (the appendix gives only the prose):
  score     S = sum over codebooks and real (non-special) positions of log p(generated token), from the
            conditional logits of one teacher-forced pass (see `_common.token_log_probs`);
  channels  the D dimensions of the latent h_t (final hidden state, after the output norm);
  weights   alpha_d = mean over the T steps of dS/dh_{t,d}   (Grad-CAM's global average pooling, over time);
  cam_t     ReLU(sum_d alpha_d h_{t,d})                       (one value per step);
  tokens    importance[t, n] = cam_t * A[t, n], with A the cross-attention averaged over layers and heads of
            the same pass (the paper's "via the cross-attention map");
  scaling   divided by its maximum per sequence.
"""
from __future__ import annotations

import torch

from ..models import CrossAttentionEdit
from ._common import differentiable, max_scale, mean_attention, token_log_probs, valid_mask


def gradcam_a(tag, generation, seed: int = 0) -> torch.Tensor:
    lm = tag.lm
    b = len(generation.text)
    with differentiable(tag):
        edit = CrossAttentionEdit(record=True)
        hidden = tag.forward_steps(generation, edit=edit).latents  # [B, T, D]
        logits = torch.stack([lm.linears[k](hidden) for k in range(lm.num_codebooks)], dim=1)  # [B, K, T, card]
        score = token_log_probs(tag, generation, logits).sum()
        (grad,) = torch.autograd.grad(score, hidden)  # [B, T, D]
    alpha = grad.mean(1, keepdim=True)  # [B, 1, D]
    cam = torch.relu((alpha * hidden.detach()).sum(-1))  # [B, T]
    attn = mean_attention([w.detach() for w in edit.layer_weights()], b)  # [B, T, N]
    return max_scale(cam[..., None] * attn, valid_mask(generation))
