"""PaSST (Koutini et al. 2022) on AudioSet, 527 classes at 32 kHz, through ``hear21passt`` (lazy import).

``hear21passt`` downloads its weights from GitHub at first use, which cannot work offline. Provide
them instead as a local checkpoint: download ``WEIGHTS_URL`` on a machine with network and pass
``checkpoint=PATH`` or set ``LIGHTNING_AGX_PASST_CKPT=PATH``. The file is loaded with
``torch.load(..., weights_only=True)``; it can be the released state dict of the PaSST net, or the
state dict of hear21passt's wrapper (keys prefixed ``net.``), optionally under a ``state_dict`` key.
"""
from __future__ import annotations

import contextlib
import csv
import io
import os
from pathlib import Path

import torch
from torch import Tensor

from ..errors import UserError
from .base import AudioClassifier

CKPT_ENV = "LIGHTNING_AGX_PASST_CKPT"
ARCH = "passt_s_swa_p16_128_ap476"
WEIGHTS_URL = "https://github.com/kkoutini/PaSST/releases/download/v0.0.1-audioset/passt-s-f128-p16-s10-ap.476-swa.pt"
NUM_CLASSES = 527
MIN_SAMPLES = 1 + 15 * 320  # 16 mel frames (hop 320 after a 2-tap pre-emphasis) for one 16 x 16 patch


class ClassifierLoadError(UserError, RuntimeError):
    """A classifier's weights could not be loaded (not downloadable, missing, unreadable, not matching): one line."""


def _import_hear21passt():
    try:
        from hear21passt.base import get_basic_model
        from hear21passt.models.passt import get_model
        from hear21passt.models.preprocess import AugmentMelSTFT
        from hear21passt.wrapper import PasstBasicWrapper
    except ImportError as e:
        raise ImportError(f"PaSSTClassifier needs hear21passt (and timm): pip install hear21passt timm ({e})") from e
    return get_basic_model, get_model, AugmentMelSTFT, PasstBasicWrapper


def _read_labels(labels_csv: str | Path | None) -> list[str]:
    """AudioSet names from ``class_labels_indices.csv`` (index,mid,display_name), else ``audioset_000``..."""
    if labels_csv is None:
        return [f"audioset_{i:03d}" for i in range(NUM_CLASSES)]
    with open(labels_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    if len(rows) != NUM_CLASSES:
        raise ValueError(f"{labels_csv} has {len(rows)} labels, expected the {NUM_CLASSES} AudioSet classes")
    return [r["display_name"] for r in sorted(rows, key=lambda r: int(r["index"]))]


def _brief(error: BaseException, limit: int = 200) -> str:
    """``Type: message`` on one line, shortened (state-dict and unpickling errors span many lines)."""
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text[:limit - 3] + '...' if len(text) > limit else text}"


class PaSSTClassifier(AudioClassifier):
    """PaSST-S (SWA, mAP .476) AudioSet tagger: ``logits`` [B, 527], ``embed`` [B, 768] (the CLS/distillation
    token features before the head).

    Args:
        checkpoint: local weights file; ``None`` reads ``$LIGHTNING_AGX_PASST_CKPT``, and if that is unset
            too, lets hear21passt download (or reuse its torch-hub cache), raising a one-line
            `ClassifierLoadError` (a ``UserError`` and ``RuntimeError``) that explains how to provide the
            weights when the download fails; likewise for a missing, unreadable or non-matching checkpoint.
        labels_csv: AudioSet ``class_labels_indices.csv`` for readable label names (optional).

    Clips up to 10 s go through the net in one pass (its positional embedding covers 998 frames); clips
    shorter than one patch (16 frames: ``MIN_SAMPLES``, 0.15 s) are zero-padded to it.
    """

    min_samples = MIN_SAMPLES

    def __init__(self, checkpoint: str | Path | None = None, labels_csv: str | Path | None = None):
        super().__init__()
        get_basic_model, get_model, AugmentMelSTFT, PasstBasicWrapper = _import_hear21passt()
        self.sample_rate = 32000
        self.labels = _read_labels(labels_csv)
        checkpoint = checkpoint if checkpoint is not None else os.environ.get(CKPT_ENV) or None
        how = (f"download {WEIGHTS_URL} on a machine with network, then pass PaSSTClassifier(checkpoint=PATH) "
               f"or set {CKPT_ENV}=PATH")
        if checkpoint is None:
            try:
                with contextlib.redirect_stdout(io.StringIO()):  # hear21passt prints the whole net
                    self.model = get_basic_model(mode="all", arch=ARCH)
            except Exception as e:  # URLError, HTTPError, OSError, ... from the GitHub download
                raise ClassifierLoadError(f"PaSST weights could not be downloaded ({_brief(e)}); {how}") from None
        else:
            path = Path(checkpoint)
            if not path.is_file():
                raise ClassifierLoadError(f"PaSST checkpoint {path} does not exist; {how}")
            with contextlib.redirect_stdout(io.StringIO()):  # hear21passt prints the whole net
                mel = AugmentMelSTFT(n_mels=128, sr=32000, win_length=800, hopsize=320, n_fft=1024, freqm=48,
                                     timem=192, htk=False, fmin=0.0, fmax=None, norm=1, fmin_aug_range=10,
                                     fmax_aug_range=2000)  # as hear21passt.base.get_basic_model
                net = get_model(arch=ARCH, pretrained=False)  # architecture only, no download
            try:
                state = torch.load(path, map_location="cpu", weights_only=True)
            except Exception as e:  # noqa: BLE001  truncated file, not a checkpoint, refused pickle
                raise ClassifierLoadError(f"PaSST checkpoint {path} is unreadable ({_brief(e)}); {how}") from None
            if not isinstance(state, dict):
                raise ClassifierLoadError(f"PaSST checkpoint {path} holds a {type(state).__name__}, not a state dict; "
                                          f"{how}")
            state = state.get("state_dict", state)
            state = {k.removeprefix("net."): v for k, v in state.items() if not k.startswith("mel.")}
            state.pop("device_proxy", None)
            try:
                net.load_state_dict(state, strict=True)
            except RuntimeError as e:
                raise ClassifierLoadError(f"PaSST checkpoint {path} does not match {ARCH} ({_brief(e, 300)}); "
                                          f"{how}") from None
            self.model = PasstBasicWrapper(mel=mel, net=net, mode="all")
        self.model.eval()

    def _run(self, wav: Tensor) -> tuple[Tensor, Tensor]:
        with contextlib.redirect_stdout(io.StringIO()):  # shape prints on the first call
            out = self.model(wav)  # [B, 527 + 768] in mode="all": logits then features
        return out[:, :NUM_CLASSES], out[:, NUM_CLASSES:]

    def _logits(self, wav: Tensor) -> Tensor:
        return self._run(wav)[0]

    def _embed(self, wav: Tensor) -> Tensor:
        return self._run(wav)[1]
