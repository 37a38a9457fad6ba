"""What the explanation methods share: token log-probabilities (the sequence score), scalings, padding.

Shapes: B prompts, K codebooks, T LM steps, N text tokens (padded to the longest prompt), D LM dim.
"""
from __future__ import annotations

import contextlib

import torch

from ..models import CrossAttentionEdit


def valid_mask(generation) -> torch.Tensor:
    """``[B, 1, N]`` float: 1 on the prompt's tokens, 0 on padding."""
    return generation.text.valid[:, None, :].float()


def target_tokens(tag, generation) -> tuple[torch.Tensor, torch.Tensor]:
    """Tokens predicted at each step, ``[B, K, T]``, and where they are real frames (not the pattern's special token)."""
    targets = generation.sequence[..., 1:]  # step t reads position t and predicts position t + 1
    return targets, targets != tag.lm.special_token_id


def token_log_probs(tag, generation, logits: torch.Tensor, repeats: int = 1) -> torch.Tensor:
    """``[rB, K, T]`` log-probability of each generated token (0 where the pattern has no frame).

    The gradient methods explain its sum over codebooks and positions (the sequence score), from the
    conditional (not CFG-guided) logits of one teacher-forced pass: the explanation concerns the conditional
    half of the model, as AudioGenX's latents do."""
    targets, real = target_tokens(tag, generation)
    targets, real = targets.repeat(repeats, 1, 1), real.repeat(repeats, 1, 1)
    logp = torch.log_softmax(logits.float(), dim=-1)  # [B, K, T, card]
    picked = logp.gather(-1, targets.clamp_max(logits.shape[-1] - 1).unsqueeze(-1)).squeeze(-1)
    return picked * real


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


@contextlib.contextmanager
def differentiable(tag):
    """The frozen LM builds an autograd graph inside the block: gradients enabled and the transformer's input
    made a leaf that requires grad (nothing else does: parameters stay frozen), so intermediate tensors
    (latents, attention weights of every layer) can be differentiated with `torch.autograd.grad`."""
    def make_leaf(module, args):
        return (args[0].detach().requires_grad_(True), *args[1:])

    handle = tag.lm.transformer.register_forward_pre_hook(make_leaf)
    try:
        with torch.enable_grad():
            yield
    finally:
        handle.remove()


def recorded_layers(edit: CrossAttentionEdit) -> list[torch.Tensor]:
    """The recorded cross-attention tensors themselves (one per layer for a teacher-forced pass), not the
    concatenated copies of `layer_weights()`, so that gradients w.r.t. them exist."""
    layers = [steps for steps in edit.weights if steps]
    if any(len(steps) != 1 for steps in layers):
        raise RuntimeError("expected one recorded call per layer (a teacher-forced pass), got a streamed one")
    return [steps[0] for steps in layers]
