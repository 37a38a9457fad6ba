"""Load a TAG model by name: the catalogue's (the embedded ToySounds models, the debug models) or real weights.

Each name routes to one family wing, imported only then: the catalogue's models to their loaders
(`lightning_agx.models.catalogue`, named as strings), ``transformers:`` names and transformers' MusicGen folders
to `lightning_agx.models.transformers`, the diffusion models and diffusers folders to
`lightning_agx.models.diffusers`, the rest (audiocraft's checkpoints, ``arch:`` names, folders) to
`lightning_agx.models.audiocraft`. Checking a name imports no family.
"""
from __future__ import annotations

from pathlib import Path

import torch

from ..errors import ModelLoadError, UserError  # noqa: F401  ModelLoadError: re-exported by lightning_agx.models
from . import catalogue
from .audiocraft.architectures import ARCH_PREFIX, architecture_names
from .base import TAGModel
from .transformers import is_musicgen_folder, is_transformers_name

REAL_MODELS = ("facebook/audiogen-medium", "facebook/musicgen-small", "facebook/musicgen-medium",
               "facebook/musicgen-large", "facebook/musicgen-melody")
MAGNET_MODELS = ("facebook/audio-magnet-small", "facebook/audio-magnet-medium", "facebook/magnet-small-10secs",
                 "facebook/magnet-medium-10secs", "facebook/magnet-small-30secs",
                 "facebook/magnet-medium-30secs")  # audiocraft's MAGNeT: lightning_agx.models.audiocraft.magnet
DIFFUSION_MODELS = ("stabilityai/stable-audio-open-1.0", "cvssp/audioldm2")  # lightning_agx.models.diffusers.models
REAL_PREFIXES = ("facebook/audiogen", "facebook/musicgen", "facebook/magnet", "facebook/audio-magnet")
MAGNET_PREFIXES = ("facebook/magnet", "facebook/audio-magnet")


def available_models() -> list[str]:
    """The named models: the embedded world's first, then each family's (its catalogued debug model first)."""
    entries = catalogue.CATALOGUE.values()

    def debug(family):
        return [e.name for e in entries if not e.world and e.family == family]
    return [*catalogue.world_models(), *debug("audiocraft-lm"), *REAL_MODELS, *debug("audiocraft-magnet"),
            *MAGNET_MODELS, *debug("diffusers"), *DIFFUSION_MODELS, *architecture_names()]


def check_model_name(name) -> str:
    """`name` is one `load_model` takes (a catalogued, real or ``arch:`` model, or a local folder); else a
    one-line `UserError` listing them. Weights are not looked at: a real model's may still be missing."""
    if not isinstance(name, str) or not name.strip():
        raise UserError(f"the model name must be a non-empty string; got {name!r}")
    if (name in available_models() or name.startswith(REAL_PREFIXES) or _is_local_dir(name)
            or is_transformers_name(name)):
        return name
    if name.startswith(ARCH_PREFIX):
        raise UserError(f"unknown architecture '{name}'; available: {', '.join(architecture_names())}")
    raise UserError(f"unknown model '{name}'; available: {', '.join(available_models())} "
                    "(or a local folder with audiocraft weights or a diffusers model_index.json)")


def sampling_keys_of(name: str) -> tuple[str, ...] | None:
    """The sampling settings of model `name`'s family, known from the name alone (None: known once it is loaded,
    e.g. a local folder or a MAGNeT, whose settings its checkpoint sets)."""
    found = catalogue.entry(name)
    if found is not None:
        family = found.family
    elif name in MAGNET_MODELS or name.startswith(MAGNET_PREFIXES):
        family = "audiocraft-magnet"
    elif name in DIFFUSION_MODELS:
        family = "diffusers"
    elif name.startswith((ARCH_PREFIX, "facebook/audiogen", "facebook/musicgen")):
        family = "audiocraft-lm"
    else:
        return None
    if family == "audiocraft-lm":
        from .audiocraft._install import LM_SAMPLING_KEYS  # imports no audiocraft
        return LM_SAMPLING_KEYS
    if family == "diffusers":
        from .diffusers.tag import SAMPLING_KEYS  # imports no diffusers
        return SAMPLING_KEYS
    return None  # a MAGNeT's: its checkpoint's


def load_model(name: str = "toysounds", device: str | torch.device = "cpu", duration: float | None = None,
               seed: int = 0, performance=None) -> TAGModel:
    """Load the TAG model `name` on `device`, frozen, behind the `TAGModel` interface.

    The catalogue's models (`lightning_agx.models.catalogue`) load through their catalogued loaders:

    - ``toysounds``: the embedded model trained by ``python -m lightning_agx.toyworld.build`` (default).
    - ``debug``: audiocraft's randomly initialised debug LM and codec (seeded), for tests.
    - ``debug-magnet``: a small randomly initialised audiocraft MAGNeT (``MagnetLMModel``) on the debug codec
      (seeded), for tests (`lightning_agx.models.audiocraft.load`).
    - ``facebook/audiogen-medium``, ``facebook/musicgen-*``, ``facebook/magnet-*``,
      ``facebook/audio-magnet-*`` or a local folder with audiocraft's
      ``state_dict.bin`` and ``compression_state_dict.bin``: real weights, read safely and built with
      audiocraft's builders by `lightning_agx.models.audiocraft.checkpoints.load_checkpoint` (one-line `ModelLoadError`s).
    - ``arch:audiogen-medium``, ``arch:musicgen-small`` ... (`lightning_agx.models.audiocraft.architectures`): audiocraft's
      real architectures and codecs with RANDOM weights drawn from `seed`, to measure cost; ``tag.random_weights``
      is True and every explanation's metadata says so.

    - ``toysounds-diffusion``: the embedded world's diffusion model (diffusers' ``StableAudioDiTModel`` trained by
      ``python -m lightning_agx.toyworld.build --stages codes,diffusion,diffusion_eval``) on the world's codec,
      with the world's ground truth (`lightning_agx.toyworld.diffusion`).
    - ``debug-diffusion``: a tiny randomly initialised Stable-Audio-style diffusion model (diffusers'
      ``StableAudioDiTModel``, seeded), for tests; ``stabilityai/stable-audio-open-1.0`` and ``cvssp/audioldm2``:
      real diffusion models through diffusers' ``from_pretrained`` (`lightning_agx.models.diffusers.models`,
      `lightning_agx.models.diffusers.tag.DiffusersTAG`; one-line `ModelLoadError` when not in the cache offline);
      a local folder with a ``model_index.json`` (diffusers' ``save_pretrained`` of either pipeline) loads the same way.
    - ``transformers:facebook/musicgen-small`` (``transformers:`` + any Hub id or folder) or a local folder whose
      ``config.json`` has model_type "musicgen" (``save_pretrained`` of a ``MusicgenForConditionalGeneration``):
      transformers' MusicGen from its safetensors (`lightning_agx.models.transformers.musicgen`; one-line
      `ModelLoadError` when not in the cache offline). The prefix, not the bare name: the Hub's facebook/musicgen-*
      repositories hold both audiocraft's checkpoint and transformers', and the bare name keeps loading audiocraft's.

    `performance` (a `lightning_agx.performance.Performance`; None: its defaults, all off on CPU) sets the speed
    and memory options of the model's teacher-forced passes (``tag.performance``, changeable at any time).

    For real weights, ``tag.weights_hash`` (a sha256 hex id of the weights) is set from the sha256 of the two
    checkpoint files (`LoadedCheckpoint.weights_hash`); the other models keep `TAGModel`'s own, computed
    from the state dicts.
    """
    from ..inputs import check_duration_value, check_seed
    check_model_name(name)
    check_duration_value(duration)
    check_seed(seed, "the model's seed")
    found = catalogue.entry(name)
    if found is not None:  # the catalogue's models: their loaders (the toy world's, the debug models')
        tag = found.load(device=device, duration=duration, seed=seed)
    elif is_transformers_name(name) or is_musicgen_folder(name):  # transformers' MusicGen
        from .transformers.musicgen import load_transformers_musicgen
        tag = load_transformers_musicgen(name, device=device, duration=duration)
    elif name in DIFFUSION_MODELS or (Path(name) / "model_index.json").is_file():  # diffusers save_pretrained
        from .diffusers.models import load_diffusion_model
        tag = load_diffusion_model(name, device=device, duration=duration, seed=seed)
    else:  # audiocraft's checkpoints, arch: names, folders with audiocraft weights
        from .audiocraft.load import load_audiocraft
        tag = load_audiocraft(name, device=device, duration=duration, seed=seed)
    if performance is not None:
        tag.performance = performance
    return tag


def _is_local_dir(name: str) -> bool:
    return Path(name).is_dir()


__all__ = ["DIFFUSION_MODELS", "MAGNET_MODELS", "ModelLoadError", "REAL_MODELS", "available_models",
           "check_model_name", "load_model", "sampling_keys_of"]
