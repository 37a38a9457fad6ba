"""Figures of an explanation: the [T, N] mask under a spectrogram of the audio, and audio-level bars.

Bounded for any prompt the model accepts: the canvas is at most `MAX_INCHES` on a side, a token label is at most `MAX_LABEL_CHARS` characters and a title `MAX_TITLE_CHARS`
(cut with an ellipsis), past `MAX_LABELS` tokens the tick labels are thinned, and a figure is closed even when
drawing or writing it fails."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from .explanation import Explanation  # noqa: E402

MAX_INCHES = 24.0  # figures stay bounded for any prompt length (tick labels thinned past MAX_LABELS tokens)
MAX_LABELS = 80
MAX_LABEL_CHARS = 24
MAX_TITLE_CHARS = 100


def shorten(text: str, limit: int = MAX_LABEL_CHARS) -> str:
    """`text` cut to `limit` characters, the cut marked with an ellipsis."""
    text = str(text)
    return text if len(text) <= limit else text[:limit - 1] + "\u2026"


def _token_ticks(tokens: list[str]) -> tuple[list[int], list[str]]:
    step = max(1, -(-len(tokens) // MAX_LABELS))
    ticks = list(range(0, len(tokens), step))
    return ticks, [shorten(tokens[i]) for i in ticks]


def log_spectrogram(audio: torch.Tensor, n_fft: int = 512, hop: int = 128) -> np.ndarray:
    """``[C, samples]`` or ``[samples]`` -> dB magnitude ``[freq, frames]`` of the channel mean."""
    wav = audio.float().reshape(-1, audio.shape[-1]).mean(0)
    spec = torch.stft(wav, n_fft, hop, window=torch.hann_window(n_fft), return_complex=True).abs()
    return (20 * torch.log10(spec + 1e-5)).numpy()


def heatmap_figure(explanation: Explanation, title: str | None = None):
    """Spectrogram (when the audio is kept) over the tokens x time mask, sharing the time axis in seconds."""
    has_audio = explanation.audio is not None and explanation.sample_rate
    rows = 2 if has_audio else 1
    n = len(explanation.tokens)
    rows_inches = min(0.28 * n, MAX_INCHES - 4.4)
    fig, axes = plt.subplots(rows, 1, figsize=(9, 2.2 + rows_inches + (2.2 if has_audio else 0)), sharex=True,
                             gridspec_kw={"height_ratios": [2.2, 0.6 + rows_inches] if has_audio else [1]},
                             squeeze=False)
    axes = axes[:, 0]
    duration = explanation.duration
    if has_audio:
        spec = log_spectrogram(explanation.audio)
        audio_seconds = explanation.audio.shape[-1] / explanation.sample_rate
        axes[0].imshow(spec, origin="lower", aspect="auto", cmap="magma",
                       extent=(0, audio_seconds, 0, explanation.sample_rate / 2000), vmin=spec.max() - 80)
        axes[0].set_ylabel("kHz")
        # the delay pattern's last K-1 steps only complete the final frames: show the audio's span
        duration = audio_seconds
    mask = explanation.mask.float().T.numpy()  # [N, T]
    image = axes[-1].imshow(mask, aspect="auto", cmap="viridis", vmin=0, vmax=max(1.0, float(mask.max())),
                            extent=(0, explanation.num_steps / explanation.frame_rate, n - 0.5, -0.5),
                            interpolation="nearest")
    axes[-1].set_yticks(*_token_ticks(explanation.tokens))
    axes[-1].set_xlabel("time (s)")
    axes[-1].set_xlim(0, duration)
    fig.colorbar(image, ax=list(axes), fraction=0.025, pad=0.01, label="importance")
    axes[0].set_title(shorten(title or f"{explanation.method}: {explanation.prompt}", MAX_TITLE_CHARS), fontsize=10)
    return fig


def bars_figure(explanation: Explanation, title: str | None = None):
    """Audio-level importance (mean over time, Eq. 7) of every token."""
    values = explanation.audio_level().numpy()
    fig, ax = plt.subplots(figsize=(min(MAX_INCHES, max(4.0, 0.55 * len(values) + 1.5)), 3.0))
    ax.bar(range(len(values)), values, color=plt.cm.viridis(values / max(1e-6, values.max())))
    ax.set_xticks(*_token_ticks(explanation.tokens), rotation=45, ha="right")
    ax.set_ylabel("audio-level importance")
    ax.set_ylim(0, max(1.0, float(values.max()) * 1.05))
    ax.set_title(shorten(title or explanation.prompt, MAX_TITLE_CHARS), fontsize=10)
    fig.tight_layout()
    return fig


def save_figures(explanation: Explanation, folder: str | Path) -> list[Path]:
    """Write heatmap.png and bars.png into `folder`; returns their paths."""
    folder = Path(folder)
    paths = []
    for name, make in (("heatmap.png", heatmap_figure), ("bars.png", bars_figure)):
        paths.append(write_figure(make, explanation, folder / name))
    return paths


def write_figure(make, explanation: Explanation, path: str | Path, dpi: int = 110) -> Path:
    """``make(explanation)`` drawn to the PNG at `path` and closed, also when drawing fails; returns the path.
    The tight bounding box stays bounded: every text of the figure is (`shorten`)."""
    figures_before = set(plt.get_fignums())
    try:
        fig = make(explanation)
        fig.savefig(path, dpi=dpi, bbox_inches="tight")
    finally:  # the figure `make` opened, also when it raised half way
        for number in set(plt.get_fignums()) - figures_before:
            plt.close(number)
    return Path(path)
