"""Chefer et al. 2021 ("Generic attention-model explainability", bi-modal / encoder-decoder rules).

Relevance maps, per prompt: R_aa ``[T, T]`` (audio steps over audio steps), R_at ``[T, N]`` (audio steps over
text tokens); the text encoder's self-relevance R_tt is the identity (the frozen text encoder is outside the
explained LM). Start R_aa = I, R_at = 0,
then, layer by layer in the order the LM runs them:
  self-attention   Abar = mean_heads (dS/dA * A)^+   ``[T, T]``;   R_aa += Abar R_aa;   R_at += Abar R_at
  cross-attention  Abar = mean_heads (dS/dA * A)^+   ``[T, N]``;   R_at += norm(R_aa) Abar R_tt
where norm(R) = I + row-normalised (R - I) (their `handle_residual`). The importance is R_at, max-scaled.

Simplifications, said plainly:
- S is ONE scalar for the whole sequence (log-probability of all generated tokens under the conditional
  model, `StepOutputs.log_probs`), so all steps share one backward pass; the original explains one output at a
  time, which would need T backward passes.
- R_aa multiplies Abar from the left (row t = what step t draws from); their code writes the transposed
  product for encoders, which for a causal decoder would give step t the relevance of later steps.
- The self-attention weights come from the model (``forward_steps(self_attention=True)``; for audiocraft's LM,
  `lightning_agx.models.audiocraft.self_attention`). A model that cannot record them (rotary embeddings, kv_repeat, a
  limited past context, a non-causal model) falls back to the cross-attention rule only (R_aa = I), with a
  warning that says so.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch

from ..errors import UserError
from ..models import CrossAttentionEdit
from ._common import max_scale, recorded_layers, valid_mask
from .base import Method


@dataclass
class CheferOptions:
    self_attention: bool = True  # the self-attention rule where the model records it (else R_aa = I)

    def __post_init__(self) -> None:
        if not isinstance(self.self_attention, bool):
            raise UserError(f"chefer option self_attention must be true or false; got {self.self_attention!r}")



def _normalised(relevance: torch.Tensor) -> torch.Tensor:
    """I + row-normalised (R - I): Chefer's handling of the residual connection. ``[B, T, T]``."""
    eye = torch.eye(relevance.shape[-1], device=relevance.device)
    residual = relevance - eye
    return eye + residual / residual.sum(-1, keepdim=True).clamp_min(1e-12)


def chefer(tag, generation, seed: int = 0, self_attention: bool = True) -> torch.Tensor:
    b, t = len(generation.text), generation.num_steps
    use_self = self_attention and tag.records_self_attention
    if self_attention and not use_self:
        warnings.warn(f"chefer: the self-attention of {tag.name} cannot be recorded (rotary embeddings, kv_repeat, "
                      "a limited context or a non-causal model); falling back to the cross-attention rule only "
                      "(R_aa = I)", stacklevel=2)
    edit = CrossAttentionEdit(record=True)
    out = tag.forward_steps(generation, edit=edit, log_probs=True, grad=True, self_attention=use_self)
    selfs = out.self_attention or []  # L x [B, H, T, T]
    crosses = recorded_layers(edit)  # L x [B, H, T, N]
    grads = torch.autograd.grad(out.log_probs.sum(), [*selfs, *crosses])
    self_grads, cross_grads = grads[:len(selfs)], grads[len(selfs):]
    device = generation.text.embeddings.device
    r_aa = torch.eye(t, device=device).expand(b, t, t).clone()  # [B, T, T]
    r_at = torch.zeros(b, t, crosses[0].shape[-1], device=device)  # [B, T, N]
    for layer in range(len(crosses)):
        if use_self:
            a_bar = torch.relu(self_grads[layer] * selfs[layer].detach()).mean(1)  # [B, T, T]
            r_aa = r_aa + a_bar @ r_aa
            r_at = r_at + a_bar @ r_at
        c_bar = torch.relu(cross_grads[layer] * crosses[layer].detach()).mean(1)  # [B, T, N]
        r_at = r_at + _normalised(r_aa) @ c_bar  # R_tt = I
    return max_scale(r_at, valid_mask(generation))


class Chefer(Method):
    """Chefer et al. 2021's relevance propagation (bi-modal rules)."""

    Options = CheferOptions

    def explain(self, tag, generation, seeds):
        return chefer(tag, generation, self_attention=self.options.self_attention)
