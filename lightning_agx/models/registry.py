"""Load a TAG model by name: the embedded ToySounds model, audiocraft's debug model, or real weights."""
from __future__ import annotations

from pathlib import Path

import torch

from .._audiocraft import ensure_audiocraft
from ..errors import ModelLoadError, UserError  # noqa: F401  ModelLoadError: re-exported by lightning_agx.models
from .audiocraft_lm import AudiocraftLM
from .base import TAGModel
from .checkpoints import load_checkpoint

REAL_MODELS = ("facebook/audiogen-medium", "facebook/musicgen-small", "facebook/musicgen-medium",
               "facebook/musicgen-large", "facebook/musicgen-melody")
EMBEDDED_MODELS = ("toysounds", "debug")


def available_models() -> list[str]:
    return [*EMBEDDED_MODELS, *REAL_MODELS]


def load_model(name: str = "toysounds", device: str | torch.device = "cpu", duration: float | None = None,
               seed: int = 0) -> TAGModel:
    """Load the TAG model `name` on `device`, frozen, behind the `TAGModel` interface.

    - ``toysounds``: the embedded model trained by ``python -m lightning_agx.toyworld.build`` (default).
    - ``debug``: audiocraft's randomly initialised debug LM and codec (seeded), for tests.
    - ``facebook/audiogen-medium``, ``facebook/musicgen-*`` or a local folder with audiocraft's
      ``state_dict.bin`` and ``compression_state_dict.bin``: real weights, read safely and built with
      audiocraft's builders by `lightning_agx.models.checkpoints.load_checkpoint` (one-line `ModelLoadError`s).

    For real weights, ``tag.weights_hash`` (a sha256 hex id of the weights) is set from the sha256 of the two
    checkpoint files (`LoadedCheckpoint.weights_hash`); the other models keep `TAGModel`'s own, computed
    from the state dicts.
    """
    ensure_audiocraft()

    weights_hash = None
    if name == "toysounds":
        from ..toyworld.load import load_toysounds
        genmodel = load_toysounds(device=device).genmodel
    elif name == "debug":
        genmodel = _debug_model(device, seed)
    elif name.startswith("facebook/audiogen") or name.startswith("facebook/musicgen") or _is_local_dir(name):
        loaded = load_checkpoint(name, device=device)  # one-line ModelLoadError on any failure
        genmodel, weights_hash = loaded.genmodel, loaded.weights_hash
    else:
        raise UserError(f"unknown model '{name}'; available: {', '.join(available_models())} "
                         "(or a local folder with audiocraft weights)")
    if duration is not None:
        genmodel.set_generation_params(duration=duration)
    tag = AudiocraftLM(genmodel, name=name, duration=duration)
    if name == "toysounds":
        from ..toyworld.truth import ToySoundsTruth
        tag.ground_truth = ToySoundsTruth()
    if weights_hash is not None:
        tag.weights_hash = weights_hash  # TAGModel.weights_hash's setter; else it hashes the state dicts
    return tag


def _is_local_dir(name: str) -> bool:
    return Path(name).is_dir()


def _debug_model(device, seed: int):
    """audiocraft's debug LM (LUT text conditioner, 2 layers, dim 16) and debug codec at 16 kHz, seeded."""
    from audiocraft.models import AudioGen
    from audiocraft.models.builders import get_debug_compression_model, get_debug_lm_model

    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        genmodel = AudioGen("debug", get_debug_compression_model(device, sample_rate=16000),
                            get_debug_lm_model(device), max_duration=10)
    finally:
        torch.random.set_rng_state(state)
    genmodel.set_generation_params(duration=1.0)
    return genmodel
