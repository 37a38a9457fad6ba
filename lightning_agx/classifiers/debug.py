"""A tiny fixed audio classifier for tests and the debug evaluation, at 8 kHz on purpose: the debug model
writes 16 kHz audio, so every call exercises the resampling of `AudioClassifier.prepare`."""
from __future__ import annotations

import torch
from torch import Tensor

from .base import AudioClassifier


class DebugClassifier(AudioClassifier):
    """Log-energy in `bands` frequency bands -> fixed random linear layer -> `classes` logits (seeded)."""

    def __init__(self, sample_rate: int = 8000, classes: int = 10, bands: int = 16, seed: int = 0):
        super().__init__()
        self.sample_rate = sample_rate
        self.labels = [f"class_{i}" for i in range(classes)]
        generator = torch.Generator().manual_seed(seed)
        self.register_buffer("weight", torch.randn(bands, classes, generator=generator))
        self.bands = bands
        self.min_samples = 2 * (bands - 1)  # an rfft of n samples has n // 2 + 1 bins: one per band at least
        self.seen_lengths: list[int] = []  # samples per call after resampling (tests read it)

    def _embed(self, wav: Tensor) -> Tensor:
        self.seen_lengths.append(wav.shape[-1])
        spectrum = torch.fft.rfft(wav, dim=-1).abs().pow(2)  # [B, F]
        bands = torch.tensor_split(spectrum, self.bands, dim=-1)
        return torch.stack([b.mean(-1) for b in bands], dim=-1).add(1e-8).log()  # [B, bands]

    def _logits(self, wav: Tensor) -> Tensor:
        feats = self._embed(wav)
        feats = (feats - feats.mean(-1, keepdim=True)) / feats.std(-1, keepdim=True).clamp_min(1e-6)
        return feats @ self.weight  # [B, classes]
