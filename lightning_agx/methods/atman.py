"""AtMan (the paper's baselines): suppress one text token at a time, measure the loss increase.

For each valid token n, its pre-softmax score q.k_n/sqrt(d) is multiplied by (1 - suppression) (0.9:
factor 0.1) in every cross-attention layer and head, at every step. Importance of (t, n) = increase of the
cross-entropy of the generated tokens at step t (summed over the K codebooks, real positions only) in one
teacher-forced pass with the conditional logits. This keeps a ``[T, N]`` map (the appendix sums over time
for one value per token; the audio-level mean of our map is that sum over T).
All N perturbations (plus the unperturbed reference, so that every row runs in the same batch) go through
`forward_steps` as repeats, ``chunk`` rows of prompts-times-tokens at a time. Differences below ``tol`` are
float noise and set to 0; the map is min-max scaled per sequence (a constant map, e.g. suppression 0,
gives 0 everywhere).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..inputs import check_int, check_number
from ..models import CrossAttentionEdit
from ._common import minmax_scale, valid_mask
from .base import Method


@dataclass
class AtmanOptions:
    suppression: float = 0.9  # the suppressed token's score is scaled by 1 - suppression, in [0, 1]
    chunk: int = 32  # rows of prompts x tokens per teacher-forced pass (memory, not results)
    tol: float = 1e-5  # loss differences below it are float noise, set to 0

    def __post_init__(self) -> None:
        check_number(self.suppression, "atman option suppression", low=0, high=1)
        check_int(self.chunk, "atman option chunk", low=1)
        check_number(self.tol, "atman option tol", low=0)



@torch.no_grad()
def atman(tag, generation, seed: int = 0, suppression: float = 0.9, chunk: int = 32, tol: float = 1e-5) -> torch.Tensor:
    b, t, n = len(generation.text), generation.num_steps, generation.text.valid.shape[1]
    device = generation.text.embeddings.device
    factors = torch.ones(n + 1, t, n, device=device)  # row 0: reference; row 1 + j suppresses token j
    factors[1:] -= suppression * torch.eye(n, device=device)[:, None, :]
    losses = []
    per_call = max(1, chunk // b)
    for start in range(0, n + 1, per_call):
        rows = factors[start:start + per_call]  # [r, T, N]
        r = rows.shape[0]
        edit = CrossAttentionEdit(pre_softmax=rows.repeat_interleave(b, dim=0))  # row r*B + b, as forward_steps
        out = tag.forward_steps(generation, edit=edit, repeats=r, log_probs=True)
        ce = -out.log_probs.sum(1)  # [rB, T]
        losses.append(ce.view(r, b, t))
    losses = torch.cat(losses)  # [N + 1, B, T]
    delta = (losses[1:] - losses[:1]).permute(1, 2, 0)  # [B, T, N]
    delta = torch.where(delta.abs() < tol, torch.zeros_like(delta), delta)
    return minmax_scale(delta, valid_mask(generation))


class AtMan(Method):
    """AtMan: one token's attention suppressed at a time (`atman`)."""

    Options = AtmanOptions

    def explain(self, tag, generation, seeds):
        o = self.options
        return atman(tag, generation, suppression=o.suppression, chunk=o.chunk, tol=o.tol)
