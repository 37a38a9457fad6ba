"""Training clips for the build's stages: a refreshed pool of synthesised clips, and the codec stages' crops."""
from __future__ import annotations

import numpy as np
import torch

from lightning_agx.toyworld.dataset import N_SAMPLES, make_clip, stack_audio
from lightning_agx.toyworld.grammar import KIND_PROBS, KINDS
from lightning_agx.toyworld.synth import EVENTS


class Pool:
    """A pool of training clips, refreshed every ``refresh`` draws (clip synthesis stays off the hot path).

    ``any_pairs``: draw the events of two-event scenes from all pairs, held-out ones included (the classifier
    is the world's evaluator, like PaSST: it must know every combination; only the LM's captions are split).
    """

    def __init__(self, rng: np.random.Generator, size: int, refresh: int, split: str = "train",
                 any_pairs: bool = False):
        self.rng, self.size, self.refresh, self.split, self.any_pairs = rng, size, refresh, split, any_pairs
        self.draws = 0
        self._fill()

    def _fill(self):
        self.clips = [self._clip() for _ in range(self.size)]
        self.audio = torch.from_numpy(stack_audio(self.clips))  # [P, 1, N]
        self.labels = torch.from_numpy(np.stack([c.labels for c in self.clips]))  # [P, E]

    def _clip(self):
        if not self.any_pairs:
            return make_clip(self.rng, self.split)
        kind = str(self.rng.choice(KINDS, p=KIND_PROBS))
        n = 1 if kind == "single" else 2
        events = tuple(str(e) for e in self.rng.choice(EVENTS, n, replace=False))
        return make_clip(self.rng, self.split, kind=kind, events=events)

    def batch(self, bs: int):
        if self.draws and self.draws % self.refresh == 0:
            self._fill()
        self.draws += 1
        idx = torch.from_numpy(self.rng.integers(0, self.size, bs))
        return self.audio[idx], self.labels[idx]


def crop_batch(pool: Pool, rng: np.random.Generator, crop: int, device: str) -> torch.Tensor:
    """16 pool clips cut to one random window of ``crop`` samples (the codec stages train on 0.5 s crops)."""
    wav, _ = pool.batch(16)
    off = int(rng.integers(0, N_SAMPLES - crop + 1))
    return wav[:, :, off:off + crop].to(device)
