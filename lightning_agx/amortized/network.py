"""The amortised explainer ``p[b, t, n] = E(x_n, c_t)`` and the step context it reads.

Inputs, all from the ONE unmasked reference pass every explanation already runs (`step_context`):
  x_n   the text token embeddings X ``[B, N, D]`` the cross-attention reads (as in the per-prompt explainer);
  h_t   the unperturbed latent of step t ``[B, T, D]`` (what the audio is doing at step t: the very latent the
        objective compares, Eq. 3 and 5);
  a_tn  the cross-attention of step t on token n, averaged over layers and heads ``[B, T, N]``, times the
        prompt's number of tokens (1 = uniform attention), fed as itself and as its logarithm.
Design: token and step are embedded separately (LayerNorm, two-layer MLP each, width H), then combined per
(t, n) by their elementwise product (a bilinear match: "is this token what step t is about?") and sum, with
the attention features appended, and a two-layer head gives the keep logit. The product makes the mask
of a step free to differ from another's (for "X followed by Y", X and Y match the first and second parts'
latents), the attention features give the network the model's own routing at step t; nothing depends on N
or T, so any prompt length and duration work. ~0.1 M parameters at D = 128, H = 128.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..models import CrossAttentionEdit


@dataclass
class StepContext:
    """The unmasked reference pass of a generation: the objective's target and the explainer's inputs."""

    latents: torch.Tensor  # [B, T, D] h_t
    attention: torch.Tensor  # [B, T, N] cross-attention averaged over layers and heads (0 at padding)


@torch.no_grad()
def step_context(tag, generation) -> StepContext:
    """One unmasked reference pass with the cross-attention recorded (`TAGModel.forward_steps`)."""
    edit = CrossAttentionEdit(record=True)
    latents = tag.forward_steps(generation, edit=edit).latents
    b = len(generation.text)
    attention = torch.stack([w[:b].float().mean(1) for w in edit.layer_weights()]).mean(0)
    return StepContext(latents, attention * generation.text.valid[:, None, :])


LOGIT_BOUND = 3.0  # p in (0.047, 0.953)


class AmortizedExplainer(nn.Module):
    """``E(x_n, h_t, a_tn) -> p`` keep probabilities ``[B, T, N]`` (see the module docstring)."""

    def __init__(self, dim: int, hidden: int = 128, latent_dim: int | None = None):
        super().__init__()
        latent_dim = dim if latent_dim is None else latent_dim  # h_t's width (`TAGModel.latent_dim`; a diffusion
        self.dim, self.hidden, self.latent_dim = dim, hidden, latent_dim  # model's differs from the text's D)
        self.token = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, hidden))
        self.step = nn.Sequential(nn.LayerNorm(latent_dim), nn.Linear(latent_dim, hidden), nn.GELU(),
                                  nn.Linear(hidden, hidden))
        self.head = nn.Sequential(nn.Linear(2 * hidden + 2, hidden), nn.GELU(), nn.Linear(hidden, 1))

    def logits(self, embeddings: torch.Tensor, context: StepContext, valid: torch.Tensor) -> torch.Tensor:
        """Keep logits ``[B, T, N]`` in ``(-LOGIT_BOUND, LOGIT_BOUND)`` (padding columns too; `forward` zeroes p
        there). Bounded by a tanh: trained across thousands of prompts on Eq. 6, whose fidelity terms reward
        confident masks, unbounded logits saturate the sigmoid, where no gradient is left to learn from."""
        u = self.token(embeddings.detach().float())[:, None]  # [B, 1, N, H]
        v = self.step(context.latents.detach().float())[:, :, None]  # [B, T, 1, H]
        tokens = valid.sum(-1).clamp_min(1)[:, None, None].float()  # [B, 1, 1]
        a = (context.attention.detach().float() * tokens)[..., None]  # [B, T, N, 1], 1 = uniform
        features = torch.cat([u * v, u + v.expand(-1, -1, u.shape[2], -1), a, torch.log(a + 1e-4)], dim=-1)
        return LOGIT_BOUND * torch.tanh(self.head(features).squeeze(-1) / LOGIT_BOUND)

    def forward(self, embeddings: torch.Tensor, context: StepContext, valid: torch.Tensor) -> torch.Tensor:
        """Keep probabilities p ``[B, T, N]``, 0 at padding."""
        return torch.sigmoid(self.logits(embeddings, context, valid)) * valid[:, None, :]
