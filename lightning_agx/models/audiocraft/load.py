"""The audiocraft models `load_model` routes here (`lightning_agx.models.registry`): audiocraft's debug LM and a
small MAGNeT (seeded, for tests), real checkpoints (`checkpoints`) and real architectures with random weights
(`architectures`), each wrapped behind `TAGModel` (`AudiocraftLM`, or `AudiocraftMagnet` for a MAGNeT)."""
from __future__ import annotations

from pathlib import Path

import torch

from ...errors import UserError
from ..base import TAGModel
from ._install import ensure_audiocraft
from .architectures import ARCH_PREFIX, build_architecture
from .checkpoints import load_checkpoint

REAL_PREFIXES = ("facebook/audiogen", "facebook/musicgen", "facebook/magnet", "facebook/audio-magnet")


def wrap(genmodel, name: str, duration: float | None = None, weights_hash: str | None = None) -> TAGModel:
    """audiocraft's model `genmodel` behind `TAGModel`: `AudiocraftMagnet` for a MAGNeT, else `AudiocraftLM`.
    `duration` (None: the model's own) sets an LM's generation length; a MAGNeT's is the adapter's."""
    ensure_audiocraft()
    from audiocraft.models.lm_magnet import MagnetLMModel

    from .lm import AudiocraftLM
    from .magnet import AudiocraftMagnet
    magnet = isinstance(genmodel.lm, MagnetLMModel)
    if duration is not None and not magnet:  # MAGNeT's generation length is the adapter's (num_steps)
        genmodel.set_generation_params(duration=duration)
    tag = (AudiocraftMagnet if magnet else AudiocraftLM)(genmodel, name=name, duration=duration)
    tag.random_weights = name.startswith(ARCH_PREFIX)
    if weights_hash is not None:
        tag.weights_hash = weights_hash  # TAGModel.weights_hash's setter; else it hashes the state dicts
    return tag


def load_audiocraft(name: str, device: str | torch.device = "cpu", duration: float | None = None,
                    seed: int = 0) -> TAGModel:
    """``arch:<name>`` (a real architecture, random weights from `seed`), ``facebook/...`` or a local folder with
    audiocraft's two checkpoint files (real weights: `load_checkpoint`, one-line `ModelLoadError`s)."""
    ensure_audiocraft()
    if name.startswith(ARCH_PREFIX):
        return wrap(build_architecture(name, device, seed), name, duration)  # unknown names: one line
    if name.startswith(REAL_PREFIXES) or Path(name).is_dir():
        loaded = load_checkpoint(name, device=device)  # one-line ModelLoadError on any failure
        return wrap(loaded.genmodel, name, duration, weights_hash=loaded.weights_hash)
    raise UserError(f"'{name}' is no audiocraft model (arch:<name>, facebook/<name> or a folder with audiocraft "
                    "weights)")


def load_debug(name: str, device: str | torch.device = "cpu", duration: float | None = None, seed: int = 0) -> TAGModel:
    """The catalogue's debug LM (`lightning_agx.models.catalogue`): audiocraft's debug LM (LUT text conditioner, 2 layers, dim 16) and debug codec at 16 kHz, seeded; 1 s."""
    ensure_audiocraft()
    from audiocraft.models import AudioGen
    from audiocraft.models.builders import get_debug_compression_model, get_debug_lm_model

    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        genmodel = AudioGen(name, get_debug_compression_model(device, sample_rate=16000),
                            get_debug_lm_model(device), max_duration=10)
    finally:
        torch.random.set_rng_state(state)
    genmodel.set_generation_params(duration=1.0)
    return wrap(genmodel, name, duration)


def load_debug_magnet(name: str, device: str | torch.device = "cpu", duration: float | None = None,
                      seed: int = 0) -> TAGModel:
    """The catalogue's debug MAGNeT: a small audiocraft MAGNeT, seeded: ``MagnetLMModel`` with audiocraft's debug LM's text conditioner (LUT,
    whitespace tokenizer), 2 layers, dim 16, 4 codebooks of 400 bins, non-causal, spans of 3 frames, stage > 0
    self-attention restricted to 5 frames either side, segment (longest generation) 2 s; the debug codec at
    16 kHz (25 Hz); generates 1 s by default with MAGNeT's default sampling but fewer decoding iterations."""
    ensure_audiocraft()
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
    genmodel = MAGNeT(name=name, compression_model=compression, lm=lm)
    genmodel.set_generation_params(decoding_steps=[8, 4, 4, 4])
    return wrap(genmodel, name, 1.0 if duration is None else duration)


__all__ = ["REAL_PREFIXES", "load_audiocraft", "load_debug", "load_debug_magnet", "wrap"]
