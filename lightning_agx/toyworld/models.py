"""The ToySounds models, built from audiocraft's own classes (used as a library).

  codec       audiocraft EncodecModel: SEANet encoder/decoder + residual VQ, 16 kHz mono, 25 Hz, K=4
  text        audiocraft LUTConditioner whose tokenizer is the world's VocabTokenizer
  lm          audiocraft LMModel, delayed pattern, cross-attention to the text, norm_first (has out_norm)
  genmodel    audiocraft AudioGen wrapping codec + lm (3 s clips, top-k 250, CFG 3.0)
  classifier  small multi-label log-mel CNN over the ten events: the embedded stand-in for PaSST
"""
from __future__ import annotations

import dataclasses
import typing as tp
from dataclasses import dataclass, field

import torch
import torchaudio
from torch import nn

from lightning_agx.models.audiocraft._install import ensure_audiocraft

ensure_audiocraft()  # quiet import, 'torch' attention backend

from audiocraft import quantization as qt  # noqa: E402
from audiocraft.models import AudioGen, EncodecModel, LMModel  # noqa: E402
from audiocraft.modules import SEANetDecoder, SEANetEncoder  # noqa: E402
from audiocraft.modules.codebooks_patterns import DelayedPatternProvider  # noqa: E402
from audiocraft.modules.conditioners import ConditionFuser, ConditioningProvider, LUTConditioner  # noqa: E402

from lightning_agx.toyworld.grammar import vocabulary  # noqa: E402
from lightning_agx.toyworld.synth import EVENTS, SAMPLE_RATE  # noqa: E402
from lightning_agx.toyworld.tokenizer import VocabTokenizer  # noqa: E402


class SavedConfig:
    """A dataclass saved as JSON next to the weights it describes (``config.json``, ``diffusion.json``)."""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict):
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown {cls.__name__} fields {sorted(unknown)}; known: {sorted(known)}")
        return cls(**d)


@dataclass
class ToyConfig(SavedConfig):
    """Every architecture choice of the ToySounds models (saved next to the weights as config.json)."""
    sample_rate: int = SAMPLE_RATE
    duration: float = 3.0
    # codec
    ratios: list[int] = field(default_factory=lambda: [8, 5, 4, 4])  # hop 640 -> 25 Hz at 16 kHz
    n_filters: int = 8
    n_residual_layers: int = 1
    codec_dim: int = 64
    n_q: int = 4
    bins: int = 256
    # text conditioner + LM
    vocab: list[str] = field(default_factory=vocabulary)
    text_dim: int = 64
    lm_dim: int = 128
    lm_layers: int = 4
    lm_heads: int = 4
    cfg_dropout: float = 0.2
    cfg_coef: float = 3.0
    top_k: int = 250
    # sinusoidal positions added to the text tokens seen by cross-attention (audiocraft's ConditionFuser
    # option): a lookup-table conditioner has no word order otherwise, so "X then Y" = "Y then X"
    text_positions: bool = True
    # classifier
    labels: list[str] = field(default_factory=lambda: list(EVENTS))
    n_mels: int = 64
    clf_channels: int = 32

    @property
    def frame_rate(self) -> int:
        hop = 1
        for r in self.ratios:
            hop *= r
        return self.sample_rate // hop



def build_codec(cfg: ToyConfig) -> EncodecModel:
    kw = dict(channels=1, dimension=cfg.codec_dim, n_filters=cfg.n_filters,
              n_residual_layers=cfg.n_residual_layers, ratios=list(cfg.ratios))
    quantizer = qt.ResidualVectorQuantizer(dimension=cfg.codec_dim, n_q=cfg.n_q, bins=cfg.bins)
    return EncodecModel(SEANetEncoder(**kw), SEANetDecoder(**kw), quantizer,
                        frame_rate=cfg.frame_rate, sample_rate=cfg.sample_rate, channels=1)


def build_lm(cfg: ToyConfig, tokenizer: VocabTokenizer | None = None) -> LMModel:
    tokenizer = tokenizer or VocabTokenizer(cfg.vocab)
    text = LUTConditioner(n_bins=len(tokenizer), dim=cfg.text_dim, output_dim=cfg.lm_dim, tokenizer="noop")
    text.tokenizer = tokenizer
    provider = ConditioningProvider({"description": text})
    fuser = ConditionFuser({"cross": ["description"], "prepend": [], "sum": [], "input_interpolate": []},
                           cross_attention_pos_emb=cfg.text_positions)
    return LMModel(DelayedPatternProvider(n_q=cfg.n_q), provider, fuser, n_q=cfg.n_q, card=cfg.bins,
                   dim=cfg.lm_dim, num_heads=cfg.lm_heads, num_layers=cfg.lm_layers, hidden_scale=4,
                   norm_first=True, cross_attention=True, causal=True, custom=True,
                   cfg_dropout=cfg.cfg_dropout, cfg_coef=cfg.cfg_coef)


def build_genmodel(cfg: ToyConfig, codec: EncodecModel, lm: LMModel) -> AudioGen:
    model = AudioGen("toysounds", codec.eval(), lm.eval(), max_duration=cfg.duration)
    model.set_generation_params(duration=cfg.duration, top_k=cfg.top_k, cfg_coef=cfg.cfg_coef)
    return model


class EventClassifier(nn.Module):
    """Multi-label CNN over log-mel: ``forward(wav[B, 1, samples] at 16 kHz) -> logits[B, len(labels)]``."""

    def __init__(self, labels: tp.Sequence[str] = EVENTS, sample_rate: int = SAMPLE_RATE, n_mels: int = 64,
                 channels: int = 32):
        super().__init__()
        self.labels = list(labels)
        self.sample_rate = sample_rate
        self.mel = torchaudio.transforms.MelSpectrogram(sample_rate, n_fft=1024, hop_length=320, n_mels=n_mels)
        c = channels

        def block(cin, cout):
            return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(),
                                 nn.MaxPool2d(2))

        self.net = nn.Sequential(block(1, c // 2), block(c // 2, c), block(c, 2 * c), block(2 * c, 2 * c))
        self.head = nn.Linear(4 * c, len(self.labels))

    def features(self, wav: torch.Tensor) -> torch.Tensor:
        """log-mel [B, 1, n_mels, frames]."""
        return torch.log(self.mel(wav) + 1e-6)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        if wav.dim() != 3 or wav.shape[1] != 1:
            raise ValueError(f"expected wav of shape [B, 1, samples] at {self.sample_rate} Hz, got {tuple(wav.shape)}")
        x = self.net(self.features(wav))  # [B, 2c, mels', frames']
        x = torch.cat([x.mean(dim=(2, 3)), x.amax(dim=(2, 3))], dim=1)  # [B, 4c]
        return self.head(x)


def build_classifier(cfg: ToyConfig) -> EventClassifier:
    return EventClassifier(cfg.labels, cfg.sample_rate, cfg.n_mels, cfg.clf_channels)
