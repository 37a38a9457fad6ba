"""Each prompt of a batch samples its audio tokens from its own random stream.

audiocraft's ``LMModel._sample_next_token`` draws the tokens of the whole batch from torch's global generator,
so a prompt's audio depends on the batch it is in. `per_prompt_sampling(lm, generators)` replaces it on the
instance, inside the ``with`` block, by `_sample_next_token`: the same logits (one forward over
``[cond; uncond]``, classifier-free guidance ``uncond + (cond - uncond) * cfg_coef``), the same temperature
and top-k / top-p filtering as ``audiocraft.utils.utils.sample_top_k`` / ``sample_top_p``, then
``audiocraft.utils.utils.multinomial`` with row b's generator.
"""
from __future__ import annotations

import contextlib
import types

import torch
from torch import nn


@contextlib.contextmanager
def per_prompt_sampling(lm: nn.Module, generators: list[torch.Generator]):
    if "_sample_next_token" in vars(lm):
        raise RuntimeError("per_prompt_sampling is already active on this LM")
    lm._sample_next_token = types.MethodType(_make_sampler(list(generators)), lm)
    try:
        yield
    finally:
        vars(lm).pop("_sample_next_token", None)


def _make_sampler(generators: list[torch.Generator]):
    from audiocraft.utils.utils import multinomial

    def _sample_next_token(lm, sequence, cfg_conditions, unconditional_state, use_sampling=False, temp=1.0,
                           top_k=0, top_p=0.0, cfg_coef=None, two_step_cfg=None):
        if two_step_cfg:
            raise NotImplementedError("per-prompt sampling runs classifier-free guidance as one [cond; uncond] pass")
        b = sequence.shape[0]
        if b != len(generators):
            raise ValueError(f"{len(generators)} random streams for a batch of {b} prompts")
        cfg_coef = lm.cfg_coef if cfg_coef is None else cfg_coef
        if cfg_conditions:
            all_logits = lm(torch.cat([sequence, sequence]), conditions=[], condition_tensors=cfg_conditions)
            cond, uncond = all_logits.split(b, dim=0)
            logits = uncond + (cond - uncond) * cfg_coef
        else:
            logits = lm(sequence, conditions=[], condition_tensors=cfg_conditions)
        logits = logits.permute(0, 1, 3, 2)[..., -1]  # [B, K, card]
        if not (use_sampling and temp > 0.0):
            return torch.argmax(logits, dim=-1, keepdim=True)
        probs = torch.softmax(logits / temp, dim=-1)
        order = None
        if top_p > 0.0:
            probs, order = torch.sort(probs, dim=-1, descending=True)
            probs = probs * ~(torch.cumsum(probs, dim=-1) - probs > top_p)
        elif top_k > 0:
            probs = probs * (probs >= torch.topk(probs, top_k, dim=-1).values[..., [-1]])
        probs = probs / probs.sum(dim=-1, keepdim=True)
        tokens = torch.stack([multinomial(probs[i], num_samples=1, generator=g) for i, g in enumerate(generators)])
        return tokens if order is None else torch.gather(order, -1, tokens)  # [B, K, 1]

    return _sample_next_token


__all__ = ["per_prompt_sampling"]
