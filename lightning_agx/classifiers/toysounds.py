"""Adapter for the embedded world's 10-class sound classifier (``lightning_agx/toyworld``)."""
from __future__ import annotations

from pathlib import Path

from torch import Tensor, nn
from torchaudio.transforms import MelSpectrogram

from .base import AudioClassifier


class ToySoundsClassifier(AudioClassifier):
    """Wraps a module with the toyworld contract: ``forward(wav [B, 1, samples] at 16 kHz) -> logits [B, 10]``
    and a ``labels`` list attribute.

    ``embed`` returns the input of the module's last ``nn.Linear`` (in registration order, i.e. the
    classification head), captured by a forward hook; inputs with extra dims ``[B, ..., E]`` are
    averaged over them. A module with no ``nn.Linear`` falls back to its logits.

    Clips shorter than ``min_samples`` are zero-padded to it (`AudioClassifier`): the toyworld classifier needs
    0.3 s (`receptive_samples`).
    """

    def __init__(self, module: nn.Module, sample_rate: int | None = None, labels: list[str] | None = None,
                 min_samples: int | None = None):
        """``sample_rate``/``labels``: default to the module's own attributes (16 kHz if it has none);
        ``min_samples``: the module's shortest input, by default `receptive_samples` of it."""
        super().__init__()
        self.min_samples = min_samples if min_samples is not None else receptive_samples(module)
        self.module = module.eval()
        self.sample_rate = sample_rate if sample_rate is not None else int(getattr(module, "sample_rate", 16000))
        labels = labels if labels is not None else getattr(module, "labels", None)
        if labels is None:
            raise ValueError("the toysounds module has no `labels` attribute; pass labels=[...]")
        self.labels = list(labels)
        linears = [m for m in module.modules() if isinstance(m, nn.Linear)]
        self._head = linears[-1] if linears else None

    @classmethod
    def from_toyworld(cls, device: str = "cpu", directory: str | Path | None = None) -> "ToySoundsClassifier":
        """The trained classifier shipped with the embedded world (``lightning_agx/assets/toysounds``, or
        `directory`), in eval mode on `device`. Only its config and ``classifier.safetensors`` are read (the
        codec and LM weights need not exist); `lightning_agx.toyworld.load.ToySoundsWeightsError` if they fail."""
        from lightning_agx.toyworld.load import ASSETS, load_config, load_state
        from lightning_agx.toyworld.models import build_classifier

        directory = Path(directory) if directory is not None else ASSETS
        module = build_classifier(load_config(directory))
        load_state(module, directory / "classifier.safetensors")
        return cls(module.to(device).eval())

    def _logits(self, wav: Tensor) -> Tensor:
        return self.module(wav.unsqueeze(1))  # [B, 1, samples] -> [B, C]

    def _embed(self, wav: Tensor) -> Tensor:
        if self._head is None:
            return self._logits(wav)
        captured = []
        handle = self._head.register_forward_hook(lambda mod, args, out: captured.append(args[0]))
        try:
            self._logits(wav)
        finally:
            handle.remove()
        feats = captured[-1]  # [B, ..., E]
        return feats.reshape(feats.shape[0], -1, feats.shape[-1]).mean(1)  # [B, E]


def receptive_samples(module: nn.Module) -> int:
    """The shortest clip `module` takes: its ``min_samples`` attribute if it has one; for a mel CNN such as the
    toyworld's ``EventClassifier`` (a centred STFT of ``1 + samples // hop`` frames, then 2 x 2 max-pools that
    each halve the frames) ``hop * (2 ** pools - 1)`` samples, and more than ``n_fft / 2`` (the STFT's
    reflection padding); 1 for other modules."""
    if getattr(module, "min_samples", None):
        return int(module.min_samples)
    mel = getattr(module, "mel", None)
    if not isinstance(mel, MelSpectrogram):
        return 1
    pools = sum(isinstance(m, nn.MaxPool2d) for m in module.modules())
    return max(mel.hop_length * (2 ** pools - 1), mel.n_fft // 2 + 1)
