"""Amortised AudioGenX: the keep probabilities p ``[B, T, N]`` of a trained `AmortizedExplainer` in one forward.

The explainer reads the unmasked reference pass (`lightning_agx.amortized.step_context`: the latents h_t and
the cross-attention); `checkpoint` None is the model's shipped explainer (ToySounds). With `refine_steps` k,
today's per-prompt objective (Eq. 6, the same Gumbel-softmax mask and regularisers, the explainer config's
tau, beta, gamma) runs k Adam steps on per-prompt offsets of the keep logits, starting from the amortised
prediction (offsets 0), with each prompt's own Gumbel noise stream (`lightning_agx.seeding`).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import UserError
from ..explainer import ExplainerConfig, masked_objective
from ..inputs import check_int, check_number
from ..seeding import resolve_seeds, streams
from .base import Method


@dataclass
class AmortizedOptions:
    """The method's options, checked where they are made (a one-line `UserError`)."""

    checkpoint: str | None = None  # None: the model's shipped explainer; else a .safetensors (with its .json) or .ckpt
    refine_steps: int = 0  # k Adam steps of the per-prompt objective from the amortised prediction (0: none)
    refine_lr: float = 0.05  # Adam's learning rate on the per-prompt offsets of the keep logits

    def __post_init__(self) -> None:
        if self.checkpoint is not None and not (isinstance(self.checkpoint, (str, os.PathLike))
                                                and str(self.checkpoint)):
            raise UserError(f"audiogenx_amortized option checkpoint must be the path of an amortised explainer "
                            f"(.safetensors or .ckpt) or null for the model's shipped one; got {self.checkpoint!r}")
        check_int(self.refine_steps, "audiogenx_amortized option refine_steps", low=0)
        self.refine_lr = check_number(self.refine_lr, "audiogenx_amortized option refine_lr", low=0, low_open=True)


_LOADED: dict[tuple, tuple] = {}  # (checkpoint, its file's state, model name, weights, device) -> (explainer, info)


def amortized_explainer(tag, checkpoint: str | Path | None = None):
    """The trained explainer for `tag` (loaded once per checkpoint file and model; a file rewritten since, e.g.
    retrained in place, is loaded again), and what it was trained for."""
    from ..amortized.store import load_explainer
    state = _file_state(tag, checkpoint)
    key = (str(checkpoint), state, tag.name, tag.weights_hash, str(tag.device))
    if key not in _LOADED:
        _LOADED[key] = load_explainer(checkpoint, tag)
    return _LOADED[key]


def _file_state(tag, checkpoint) -> tuple | None:
    """(modification time, size) of the explainer's weights file; None where there is none (loading it then
    raises the one-line error)."""
    from ..amortized.store import AmortizedCheckpointError, weights_file
    try:
        weights = weights_file(checkpoint, tag.name)
    except AmortizedCheckpointError:
        return None
    return (weights.stat().st_mtime_ns, weights.stat().st_size) if weights.is_file() else None


def audiogenx_amortized(tag, generation, seed: int | list[int] = 0, checkpoint: str | None = None,
                        refine_steps: int = 0, refine_lr: float = 0.05,
                        config: ExplainerConfig | dict | None = None) -> torch.Tensor:
    from ..amortized.network import step_context
    options = AmortizedOptions(checkpoint, refine_steps, refine_lr)  # bad options stop before the forward
    checkpoint, refine_steps, refine_lr = options.checkpoint, options.refine_steps, options.refine_lr
    explainer, _ = amortized_explainer(tag, checkpoint)
    text = generation.text
    context = step_context(tag, generation)
    with torch.no_grad():
        logits = explainer.logits(text.embeddings, context, text.valid)  # [B, T, N]
    if refine_steps:
        config = ExplainerConfig(**config) if isinstance(config, dict) else (config or ExplainerConfig())
        offsets = torch.zeros_like(logits, requires_grad=True)
        optimizer = torch.optim.Adam([offsets], lr=refine_lr)
        generators = streams(resolve_seeds(seed, len(text)), "explainer", logits.device)
        for _ in range(refine_steps):
            optimizer.zero_grad()
            p = torch.sigmoid(logits + offsets) * text.valid[:, None, :]
            loss, _ = masked_objective(tag, generation, context.latents, p, config, generators)
            loss.backward()
            optimizer.step()
        logits = logits + offsets.detach()
    return torch.sigmoid(logits) * text.valid[:, None, :]


class AudioGenXAmortized(Method):
    """Amortised AudioGenX: a trained explainer, one forward per prompt (plus `refine_steps` of Eq. 6)."""

    Options = AmortizedOptions
    reads_explainer = True  # the refinement's objective
    config_section = "amortized"  # train.py's --amortized.* (lightning_agx.config.AmortizedConfig)

    def prepare(self, tag) -> "AudioGenXAmortized":
        amortized_explainer(tag, self.options.checkpoint)  # a missing or mismatched explainer stops here
        return self

    def identity(self, tag) -> dict:
        """Its explainer's weights by hash and its refinement."""
        import hashlib
        from ..amortized.store import weights_file
        _, info = amortized_explainer(tag, self.options.checkpoint)
        return {"explainer_weights": hashlib.sha256(weights_file(info["path"], tag.name).read_bytes()).hexdigest(),
                "refine_steps": self.options.refine_steps, "refine_lr": self.options.refine_lr}

    def explain(self, tag, generation, seeds):
        o = self.options
        return audiogenx_amortized(tag, generation, seed=seeds, checkpoint=o.checkpoint, refine_steps=o.refine_steps,
                                   refine_lr=o.refine_lr, config=self.explainer_config(tag))


__all__ = ["AmortizedOptions", "AudioGenXAmortized", "amortized_explainer", "audiogenx_amortized"]
