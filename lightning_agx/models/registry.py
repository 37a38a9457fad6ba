"""Load a TAG model by name: the embedded ToySounds model, audiocraft's debug models, or real weights."""
from __future__ import annotations

from pathlib import Path

import torch

from ..errors import ModelLoadError, UserError  # noqa: F401  ModelLoadError: re-exported by lightning_agx.models
from .architectures import ARCH_PREFIX, architecture_names
from .base import TAGModel
from .transformers_musicgen import is_musicgen_folder, is_transformers_name

REAL_MODELS = ("facebook/audiogen-medium", "facebook/musicgen-small", "facebook/musicgen-medium",
               "facebook/musicgen-large", "facebook/musicgen-melody")
EMBEDDED_MODELS = ("toysounds", "toysounds-diffusion", "debug")
MAGNET_MODELS = ("debug-magnet", "facebook/audio-magnet-small", "facebook/audio-magnet-medium",
                 "facebook/magnet-small-10secs", "facebook/magnet-medium-10secs", "facebook/magnet-small-30secs",
                 "facebook/magnet-medium-30secs")  # audiocraft's MAGNeT: lightning_agx.models.audiocraft_magnet
DIFFUSION_MODELS = ("debug-diffusion", "stabilityai/stable-audio-open-1.0", "cvssp/audioldm2")  # diffusers_models
REAL_PREFIXES = ("facebook/audiogen", "facebook/musicgen", "facebook/magnet", "facebook/audio-magnet")


def available_models() -> list[str]:
    return [*EMBEDDED_MODELS, *REAL_MODELS, *MAGNET_MODELS, *DIFFUSION_MODELS, *architecture_names()]


def check_model_name(name) -> str:
    """`name` is one `load_model` takes (an embedded, debug, real or ``arch:`` model, or a local folder); else a
    one-line `UserError` listing them. Weights are not looked at: a real model's may still be missing."""
    if not isinstance(name, str) or not name.strip():
        raise UserError(f"the model name must be a non-empty string; got {name!r}")
    if (name in available_models() or name.startswith(REAL_PREFIXES) or _is_local_dir(name)
            or name in DIFFUSION_MODELS or is_transformers_name(name)):
        return name
    if name.startswith(ARCH_PREFIX):
        raise UserError(f"unknown architecture '{name}'; available: {', '.join(architecture_names())}")
    raise UserError(f"unknown model '{name}'; available: {', '.join(available_models())} "
                    "(or a local folder with audiocraft weights or a diffusers model_index.json)")


def sampling_keys_of(name: str) -> tuple[str, ...] | None:
    """The sampling settings of model `name`'s family, known from the name alone (None: known once it is loaded,
    e.g. a local folder or a MAGNeT, whose settings its checkpoint sets)."""
    if name in MAGNET_MODELS or name.startswith(("facebook/magnet", "facebook/audio-magnet")):
        return None
    if name == "toysounds-diffusion" or name in DIFFUSION_MODELS:
        from .diffusers_tag import SAMPLING_KEYS
        return SAMPLING_KEYS
    if name in ("toysounds", "debug") or name.startswith((ARCH_PREFIX, "facebook/audiogen", "facebook/musicgen")):
        from ._audiocraft import LM_SAMPLING_KEYS
        return LM_SAMPLING_KEYS
    return None


def load_model(name: str = "toysounds", device: str | torch.device = "cpu", duration: float | None = None,
               seed: int = 0, performance=None) -> TAGModel:
    """Load the TAG model `name` on `device`, frozen, behind the `TAGModel` interface.

    - ``toysounds``: the embedded model trained by ``python -m lightning_agx.toyworld.build`` (default).
    - ``debug``: audiocraft's randomly initialised debug LM and codec (seeded), for tests.
    - ``debug-magnet``: a small randomly initialised audiocraft MAGNeT (``MagnetLMModel``) on the debug codec
      (seeded), for tests (`lightning_agx.models.audiocraft_magnet`).
    - ``facebook/audiogen-medium``, ``facebook/musicgen-*``, ``facebook/magnet-*``,
      ``facebook/audio-magnet-*`` or a local folder with audiocraft's
      ``state_dict.bin`` and ``compression_state_dict.bin``: real weights, read safely and built with
      audiocraft's builders by `lightning_agx.models.checkpoints.load_checkpoint` (one-line `ModelLoadError`s).
    - ``arch:audiogen-medium``, ``arch:musicgen-small`` ... (`lightning_agx.models.architectures`): audiocraft's
      real architectures and codecs with RANDOM weights drawn from `seed`, to measure cost; ``tag.random_weights``
      is True and every explanation's metadata says so.

    - ``toysounds-diffusion``: the embedded world's diffusion model (diffusers' ``StableAudioDiTModel`` trained by
      ``python -m lightning_agx.toyworld.build --stages codes,diffusion,diffusion_eval``) on the world's codec,
      with the world's ground truth (`lightning_agx.toyworld.diffusion`).
    - ``debug-diffusion``: a tiny randomly initialised Stable-Audio-style diffusion model (diffusers'
      ``StableAudioDiTModel``, seeded), for tests; ``stabilityai/stable-audio-open-1.0`` and ``cvssp/audioldm2``:
      real diffusion models through diffusers' ``from_pretrained`` (`lightning_agx.models.diffusers_models`,
      `lightning_agx.models.diffusers_tag.DiffusersTAG`; one-line `ModelLoadError` when not in the cache offline);
      a local folder with a ``model_index.json`` (diffusers' ``save_pretrained`` of either pipeline) loads the same way.
    - ``transformers:facebook/musicgen-small`` (``transformers:`` + any Hub id or folder) or a local folder whose
      ``config.json`` has model_type "musicgen" (``save_pretrained`` of a ``MusicgenForConditionalGeneration``):
      transformers' MusicGen from its safetensors (`lightning_agx.models.transformers_musicgen`; one-line
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
    if name == "toysounds-diffusion":  # the embedded world's diffusion model (lightning_agx.toyworld.diffusion)
        from ..toyworld.diffusion import load_toysounds_diffusion
        tag = load_toysounds_diffusion(device, duration=duration)
        if performance is not None:
            tag.performance = performance
        return tag
    if is_transformers_name(name) or is_musicgen_folder(name):  # transformers' MusicGen (transformers_musicgen)
        from .transformers_musicgen import load_transformers_musicgen
        tag = load_transformers_musicgen(name, device=device, duration=duration)
        if performance is not None:
            tag.performance = performance
        return tag
    if name in DIFFUSION_MODELS or (Path(name) / "model_index.json").is_file():  # a diffusers save_pretrained folder
        from .diffusers_models import load_diffusion_model
        tag = load_diffusion_model(name, device=device, duration=duration, seed=seed)
        if performance is not None:
            tag.performance = performance
        return tag
    from ._audiocraft import ensure_audiocraft
    ensure_audiocraft()
    from audiocraft.models.lm_magnet import MagnetLMModel

    from .architectures import build_architecture
    from .audiocraft_lm import AudiocraftLM
    from .audiocraft_magnet import AudiocraftMagnet
    from .checkpoints import load_checkpoint

    weights_hash = None
    if name == "toysounds":
        from ..toyworld.load import load_toysounds
        genmodel = load_toysounds(device=device).genmodel
    elif name == "debug":
        genmodel = _debug_model(device, seed)
    elif name == "debug-magnet":
        genmodel = _debug_magnet(device, seed)
        duration = 1.0 if duration is None else duration
    elif name.startswith(ARCH_PREFIX):
        genmodel = build_architecture(name, device, seed)  # unknown names: one line listing the architectures
    elif name.startswith(REAL_PREFIXES) or _is_local_dir(name):
        loaded = load_checkpoint(name, device=device)  # one-line ModelLoadError on any failure
        genmodel, weights_hash = loaded.genmodel, loaded.weights_hash
    else:
        raise UserError(f"unknown model '{name}'; available: {', '.join(available_models())} "
                         "(or a local folder with audiocraft weights)")
    magnet = isinstance(genmodel.lm, MagnetLMModel)
    if duration is not None and not magnet:  # MAGNeT's generation length is the adapter's (num_steps)
        genmodel.set_generation_params(duration=duration)
    tag = (AudiocraftMagnet if magnet else AudiocraftLM)(genmodel, name=name, duration=duration)
    if name == "toysounds":
        from ..toyworld.truth import ToySoundsTruth
        tag.ground_truth = ToySoundsTruth()
    tag.random_weights = name.startswith(ARCH_PREFIX)
    if performance is not None:
        tag.performance = performance
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


def _debug_magnet(device, seed: int):
    """A small audiocraft MAGNeT, seeded: ``MagnetLMModel`` with audiocraft's debug LM's text conditioner (LUT,
    whitespace tokenizer), 2 layers, dim 16, 4 codebooks of 400 bins, non-causal, spans of 3 frames, stage > 0
    self-attention restricted to 5 frames either side, segment (longest generation) 2 s; the debug codec at
    16 kHz (25 Hz); generates 1 s by default with MAGNeT's default sampling but fewer decoding iterations."""
    from audiocraft.models import MAGNeT
    from audiocraft.models.builders import get_debug_compression_model
    from audiocraft.models.lm_magnet import MagnetLMModel
    from audiocraft.modules.codebooks_patterns import ParallelPatternProvider
    from audiocraft.modules.conditioners import ConditionFuser, ConditioningProvider, LUTConditioner
    from omegaconf import OmegaConf

    dim, segment = 16, 2
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        compression = get_debug_compression_model(device, sample_rate=16000)
        text = LUTConditioner(n_bins=128, dim=dim, output_dim=dim, tokenizer="whitespace")
        lm = MagnetLMModel(
            pattern_provider=ParallelPatternProvider(n_q=4),
            condition_provider=ConditioningProvider({"description": text}),
            fuser=ConditionFuser({"cross": ["description"], "prepend": [], "sum": [], "input_interpolate": []}),
            n_q=4, card=400, dim=dim, num_heads=4, num_layers=2, custom=True, cross_attention=True, causal=False,
            subcodes_context=5, span_len=3, compression_model_framerate=int(compression.frame_rate),
            segment_duration=segment, device=device, dtype=torch.float32).to(device).eval()
    finally:
        torch.random.set_rng_state(state)
    lm.cfg = OmegaConf.create({"dataset": {"segment_duration": segment}})  # MAGNeT reads its length there
    genmodel = MAGNeT(name="debug-magnet", compression_model=compression, lm=lm)
    genmodel.set_generation_params(decoding_steps=[8, 4, 4, 4])
    return genmodel
