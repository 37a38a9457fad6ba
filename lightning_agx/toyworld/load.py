"""Load the shipped ToySounds models (no network): ``load_toysounds(device='cpu') -> ToySounds``."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from lightning_agx.toyworld.models import (EventClassifier, ToyConfig, build_classifier, build_codec,
                                           build_genmodel, build_lm)
from lightning_agx.toyworld.tokenizer import VocabTokenizer

ASSETS = Path(__file__).resolve().parent.parent / "assets" / "toysounds"
BUILD_CMD = "python -m lightning_agx.toyworld.build"
WEIGHT_FILES = ("codec.safetensors", "lm.safetensors", "classifier.safetensors")


class ToySoundsWeightsError(RuntimeError):
    """The ToySounds weights are missing or unreadable."""


@dataclass
class ToySounds:
    genmodel: "AudioGen"  # noqa: F821  audiocraft.models.AudioGen (codec + LM), 16 kHz, 3 s
    classifier: EventClassifier  # forward(wav[B, 1, samples]) -> logits[B, 10]; .labels
    tokenizer: VocabTokenizer  # the LM conditioner's tokenizer (words(text) aligned with token ids)
    config: ToyConfig

    @property
    def lm(self):
        return self.genmodel.lm

    @property
    def codec(self):
        return self.genmodel.compression_model


def load_state(module: nn.Module, path: Path) -> None:
    """Load a safetensors state dict into ``module`` (strict), with a clear error naming the build command."""
    from safetensors.torch import load_file
    path = Path(path)
    if not path.exists():
        raise ToySoundsWeightsError(f"ToySounds weights file {path} is missing; build the weights with `{BUILD_CMD}`")
    try:
        state = load_file(str(path))
        module.load_state_dict(state, strict=True)
    except Exception as err:  # corrupt file or architecture mismatch
        raise ToySoundsWeightsError(
            f"ToySounds weights file {path} is corrupt or does not match the config ({type(err).__name__}: "
            f"{str(err)[:200]}); rebuild the weights with `{BUILD_CMD}`") from err


def load_config(directory: Path = ASSETS) -> ToyConfig:
    path = Path(directory) / "config.json"
    if not path.exists():
        raise ToySoundsWeightsError(f"ToySounds config {path} is missing; build the weights with `{BUILD_CMD}`")
    try:
        return ToyConfig.from_dict(json.loads(path.read_text()))
    except Exception as err:
        raise ToySoundsWeightsError(f"ToySounds config {path} is unreadable ({err}); rebuild with `{BUILD_CMD}`") from err


def load_toysounds(device: str = "cpu", directory: str | Path | None = None) -> ToySounds:
    """The trained ToySounds AudioGen, classifier and tokenizer, in eval mode on ``device``."""
    directory = Path(directory) if directory is not None else ASSETS
    cfg = load_config(directory)
    tokenizer = VocabTokenizer(cfg.vocab)
    codec, lm, clf = build_codec(cfg), build_lm(cfg, tokenizer), build_classifier(cfg)
    for module, name in zip((codec, lm, clf), WEIGHT_FILES):
        load_state(module, directory / name)
    codec, lm, clf = codec.to(device).eval(), lm.to(device).eval(), clf.to(device).eval()
    return ToySounds(genmodel=build_genmodel(cfg, codec, lm), classifier=clf, tokenizer=tokenizer, config=cfg)


def load_toysounds_model(name: str = "toysounds", device: str = "cpu", duration: float | None = None, seed: int = 0):
    """``load_model("toysounds")`` (its loader in `lightning_agx.models.catalogue`): the shipped LM behind the
    audiocraft family's `AudiocraftLM`, with the world's ground truth. `seed` is unused (the shipped weights)."""
    from lightning_agx.models.audiocraft.load import wrap
    from lightning_agx.toyworld.truth import ToySoundsTruth
    tag = wrap(load_toysounds(device=device).genmodel, name, duration)
    tag.ground_truth = ToySoundsTruth()
    return tag


def world_tokenizer(directory: str | Path = ASSETS) -> VocabTokenizer:
    """The world's tokenizer (its closed vocabulary, from ``config.json``): prompts are checked with it before any
    weights load (`lightning_agx.models.text_check`)."""
    return VocabTokenizer(load_config(Path(directory)).vocab)
