"""The interface every audio classifier adapter implements (used by the faithfulness metrics and FAD)."""
from __future__ import annotations

import math

import julius
import torch.nn.functional as F
from torch import Tensor, nn


class AudioClassifier(nn.Module):
    """An audio classifier at its own ``sample_rate`` with ``labels``.

    ``logits(wav, sample_rate) -> [B, C]`` and ``embed(wav, sample_rate) -> [B, E]`` (penultimate
    features, for FAD) accept mono ``wav`` as ``[B, samples]`` or ``[B, 1, samples]`` at any integer
    ``sample_rate`` and resample it to the classifier's rate first. Any clip of one sample or more is
    classified: one shorter than ``min_samples`` (the network's shortest input at its own rate, its receptive
    length) is zero-padded at the end to that length, i.e. read as the clip followed by silence. Subclasses
    implement ``_logits`` and ``_embed`` on ``[B, samples]`` audio already at ``self.sample_rate``, at least
    ``min_samples`` long.
    """

    sample_rate: int
    labels: list[str]
    min_samples: int = 1

    def prepare(self, wav: Tensor, sample_rate: int) -> Tensor:
        """``wav`` [B, samples] or [B, 1, samples] at ``sample_rate`` -> [B, samples] at ``self.sample_rate``."""
        if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or sample_rate <= 0:
            raise ValueError(f"sample_rate must be a positive int (Hz), got {sample_rate!r}")
        if wav.dim() == 3 and wav.shape[1] == 1:
            wav = wav[:, 0]
        if wav.dim() != 2:
            raise ValueError(
                f"{type(self).__name__} expects mono audio [B, samples] or [B, 1, samples], got shape "
                f"{tuple(wav.shape)}; average the channels first (wav.mean(1))")
        if wav.shape[-1] < 1:
            raise ValueError(f"{type(self).__name__} got an empty clip (0 samples); give at least one sample")
        wav = wav.float()
        if sample_rate != self.sample_rate:  # padded first, so that the clip itself is resampled
            wav = _pad(wav, math.ceil(self.min_samples * sample_rate / self.sample_rate))
            wav = julius.resample_frac(wav, sample_rate, self.sample_rate)  # [B, samples']
        return _pad(wav, self.min_samples)

    def logits(self, wav: Tensor, sample_rate: int) -> Tensor:
        return self._logits(self.prepare(wav, sample_rate))

    def embed(self, wav: Tensor, sample_rate: int) -> Tensor:
        return self._embed(self.prepare(wav, sample_rate))

    def forward(self, wav: Tensor, sample_rate: int) -> Tensor:
        return self.logits(wav, sample_rate)

    def _logits(self, wav: Tensor) -> Tensor:  # [B, samples] at self.sample_rate -> [B, C]
        raise NotImplementedError

    def _embed(self, wav: Tensor) -> Tensor:  # [B, samples] at self.sample_rate -> [B, E]
        raise NotImplementedError


def _pad(wav: Tensor, samples: int) -> Tensor:
    """``[B, n]`` zero-padded at the end to at least `samples`."""
    return F.pad(wav, (0, samples - wav.shape[-1])) if wav.shape[-1] < samples else wav


def module_device(module, fallback=None):
    """The device of `module`'s first parameter or buffer (`fallback` for a module without any)."""
    tensor = next(iter(list(module.parameters()) + list(module.buffers())), None)
    return fallback if tensor is None else tensor.device
