"""The diffusion models `load_model` knows: the tiny random ``debug-diffusion`` and the real Stable Audio Open
and AudioLDM 2 through diffusers' ``from_pretrained`` (`lightning_agx.models.diffusers.tag.DiffusersTAG`), with
the text encoders and decoders they need."""
from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import torch
from torch import nn

from ...errors import ModelLoadError, UserError
from .denoiser import StableAudioDenoiser
from .tag import DiffusersTAG
from .text import HashedLUTEncoder, T5TextEncoder  # noqa: F401  HashedLUTEncoder: re-exported

STABLE_AUDIO = "stabilityai/stable-audio-open-1.0"
AUDIOLDM2 = "cvssp/audioldm2"
DIFFUSION_MODELS = (STABLE_AUDIO, AUDIOLDM2)  # the real ones; the debug model is the catalogue's



# ---------------------------------------------------------------------------------------------------- decoders
class OobleckDecoder(nn.Module):
    """Stable Audio's ``AutoencoderOobleck``: latent ``[B, C, L]`` -> waveform ``[B, channels, samples]``."""

    def __init__(self, vae: nn.Module):
        super().__init__()
        self.vae = vae

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        return self.vae.decode(latents.to(next(self.vae.parameters()).dtype)).sample


# ---------------------------------------------------------------------------------------------------- loading
def load_diffusion_model(name: str, device: str | torch.device = "cpu", duration: float | None = None,
                         seed: int = 0) -> DiffusersTAG:
    """`name`: one of `DIFFUSION_MODELS` or a local folder written by a ``StableAudioPipeline`` or
    ``AudioLDM2Pipeline``'s ``save_pretrained`` (`saved_pipeline_class` tells which)."""
    pipeline = saved_pipeline_class(name)
    if name == STABLE_AUDIO or pipeline == "StableAudioPipeline":
        tag = stable_audio(name)
    elif name == AUDIOLDM2 or pipeline == "AudioLDM2Pipeline":
        tag = audioldm2(name)
    elif pipeline is not None:
        raise UserError(f"'{name}' holds a diffusers {pipeline}; supported: StableAudioPipeline, AudioLDM2Pipeline")
    else:
        raise UserError(f"unknown diffusion model '{name}'; available: {', '.join(DIFFUSION_MODELS)}")
    return _placed(tag, device, duration)


def _placed(tag: DiffusersTAG, device, duration: float | None) -> DiffusersTAG:
    if duration is not None:
        tag.num_steps(duration)  # a duration over the model's limit fails here
        tag.duration = float(duration)
    return tag.to(device)


def saved_pipeline_class(name: str) -> str | None:
    """The pipeline class a local ``save_pretrained`` folder holds (its ``model_index.json``), None if `name`
    is no such folder."""
    index = Path(name) / "model_index.json"
    if not index.is_file():
        return None
    try:
        return str(json.loads(index.read_text())["_class_name"])
    except (ValueError, KeyError) as error:
        raise ModelLoadError(f"{index} is not a diffusers model index ({type(error).__name__}: {error}); re-save the "
                             "pipeline with save_pretrained") from None


def load_debug_diffusion(name: str, device: str | torch.device = "cpu", duration: float | None = None,
                         seed: int = 0) -> DiffusersTAG:
    """The catalogue's debug diffusion model (`lightning_agx.models.catalogue`): `debug_diffusion`."""
    return _placed(debug_diffusion(seed, name), device, duration)


def debug_diffusion(seed: int = 0, name: str = "debug-diffusion") -> DiffusersTAG:
    """A tiny randomly initialised Stable-Audio-style model, seeded: diffusers' ``StableAudioDiTModel`` (2
    layers, 2 heads of 8 with one key/value head, 8 latent channels), ``EDMDPMSolverMultistepScheduler`` as
    Stable Audio Open's (v-prediction, sigma 0.3..500, sigma_data 1), 8 sampling steps, guidance 3; a tiny
    random ``AutoencoderOobleck`` decoder (16 kHz mono, 640 samples per frame: 25 frames/s); the hashed LUT
    text encoder (dim 16), its tokens zero-padded to 16 keys as Stable Audio pads T5's. 1 s of audio."""
    from diffusers import AutoencoderOobleck, EDMDPMSolverMultistepScheduler, StableAudioDiTModel
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        text = HashedLUTEncoder(n_bins=128, dim=16, max_tokens=16)
        transformer = StableAudioDiTModel(sample_size=50, in_channels=8, out_channels=8, num_layers=2,
                                          attention_head_dim=8, num_attention_heads=2,
                                          num_key_value_attention_heads=1, cross_attention_dim=16, time_proj_dim=16,
                                          global_states_input_dim=8, cross_attention_input_dim=16)
        with warnings.catch_warnings():  # diffusers' Oobleck still builds with torch's deprecated weight_norm
            warnings.filterwarnings("ignore", message=".*weight_norm.*", category=FutureWarning)
            vae = AutoencoderOobleck(encoder_hidden_size=4, downsampling_ratios=[8, 8, 10], channel_multiples=[1, 2, 2],
                                     decoder_channels=4, decoder_input_channels=8, audio_channels=1,
                                     sampling_rate=16000)
    scheduler = EDMDPMSolverMultistepScheduler(sigma_min=0.3, sigma_max=500, sigma_data=1.0,
                                               prediction_type="v_prediction", sigma_schedule="exponential")
    return DiffusersTAG(StableAudioDenoiser(transformer, text_length=16), scheduler, OobleckDecoder(vae), text,
                        frame_rate=25.0, sample_rate=16000, name=name, duration=1.0, max_duration=2.0,
                        num_inference_steps=8, guidance_scale=3.0, trajectory_points=4)


def _offline() -> bool:
    from huggingface_hub import constants
    return bool(constants.HF_HUB_OFFLINE) or os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def _from_pretrained(pipeline_class, name: str):
    """diffusers' ``from_pretrained`` (local files only when offline); any failure is one `ModelLoadError` line."""
    offline = _offline()
    try:
        return pipeline_class.from_pretrained(name, local_files_only=offline, dtype=torch.float32)
    except Exception as error:  # noqa: BLE001  diffusers/huggingface_hub raise many kinds: one line for all
        if offline:
            raise ModelLoadError(
                f"the weights of '{name}' are not in the Hugging Face cache and downloads are off (HF_HUB_OFFLINE=1): "
                f"download them once online (`hf download {name}`; gated models need "
                "`hf auth login` and the licence accepted on huggingface.co) or unset HF_HUB_OFFLINE") from None
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ModelLoadError(f"could not load '{name}' with diffusers ({type(error).__name__}: {first[:200]}); check "
                             f"the name, your network and `hf auth login` for gated models") from None


def stable_audio(name: str = STABLE_AUDIO) -> DiffusersTAG:
    """Stable Audio Open 1.0 (``StableAudioPipeline``; `name`: a Hub id or a local folder written by the
    pipeline's ``save_pretrained``): T5-base tokens (padded to 128) through the projection model, the DiT with
    the duration conditioning, the pipeline's scheduler (EDM DPM-Solver), 100 steps, guidance 7, the Oobleck VAE
    at 44.1 kHz stereo (2048 samples per frame); 10 s by default (or the model's longest, if shorter). Unlike
    the pipeline, which always denoises its full 1024 frames (47.5 s) and crops the waveform, the latent has the
    requested duration's frames (one mask row per frame of the clip)."""
    from diffusers import StableAudioPipeline
    pipe = _from_pretrained(StableAudioPipeline, name)
    projection = pipe.projection_model
    text = T5TextEncoder(pipe.tokenizer, pipe.text_encoder, projection.text_projection,
                         dim=pipe.transformer.config.cross_attention_input_dim)
    vae = pipe.vae
    hop = int(vae.hop_length)
    frame_rate = vae.config.sampling_rate / hop
    denoiser = StableAudioDenoiser(pipe.transformer, projection, text_length=int(pipe.tokenizer.model_max_length))
    max_duration = pipe.transformer.config.sample_size / frame_rate
    return DiffusersTAG(denoiser, pipe.scheduler, OobleckDecoder(vae), text, frame_rate=frame_rate,
                        sample_rate=int(vae.config.sampling_rate), name=name, duration=min(10.0, max_duration),
                        max_duration=max_duration, num_inference_steps=100,
                        guidance_scale=7.0, trajectory_points=4)


def audioldm2(name: str = AUDIOLDM2) -> DiffusersTAG:
    """AudioLDM 2 (``AudioLDM2Pipeline``; `name`: a Hub id or a local folder written by the pipeline's
    ``save_pretrained``), `lightning_agx.models.diffusers.audioldm2`: the UNet over the 2-D mel latent (a step is one
    latent time row: 25 per second for cvssp/audioldm2), the explained stream the Flan-T5 tokens, the GPT-2
    "8 vectors" stream read unmasked (out of the mask's reach), the unconditional branch the encodings of
    ``""``; the pipeline's scheduler (DDIM), 200 steps and guidance 3.5 (its defaults); decoding through the
    VAE and the HiFi-GAN vocoder (16 kHz mono). 10 s by default (or the trained length, if shorter); at most
    the trained length (the UNet's ``sample_size`` rows: 10.24 s)."""
    from diffusers import AudioLDM2Pipeline
    from transformers import VitsModel

    from .audioldm2 import AudioLDM2Denoiser, AudioLDM2TextEncoder, MelVocoderDecoder
    pipe = _from_pretrained(AudioLDM2Pipeline, name)
    if isinstance(pipe.text_encoder_2, VitsModel):
        raise UserError(f"'{name}' is an AudioLDM 2 text-to-speech model (VITS phonemes, not T5 tokens); only the "
                        "text-to-audio models (T5 second encoder, e.g. cvssp/audioldm2) are supported")
    text = AudioLDM2TextEncoder(pipe).eval()
    with torch.no_grad():
        embeddings, valid = text([""])  # the pipeline's unconditional prompt
        negative = (embeddings, valid, text.extra_conditioning([""]))
    scale = int(pipe.vae_scale_factor)
    vocoder = pipe.vocoder.config
    hop = int(torch.tensor(vocoder.upsample_rates).prod())
    frame_rate = vocoder.sampling_rate / hop / scale
    max_duration = pipe.unet.config.sample_size / frame_rate
    denoiser = AudioLDM2Denoiser(pipe.unet, int(vocoder.model_in_dim) // scale, negative)
    return DiffusersTAG(denoiser, pipe.scheduler, MelVocoderDecoder(pipe.vae, pipe.vocoder), text,
                        frame_rate=frame_rate, sample_rate=int(vocoder.sampling_rate), name=name,
                        duration=min(10.0, max_duration), max_duration=max_duration, num_inference_steps=200,
                        guidance_scale=3.5, trajectory_points=4)


__all__ = ["AUDIOLDM2", "DIFFUSION_MODELS", "HashedLUTEncoder", "OobleckDecoder", "STABLE_AUDIO", "T5TextEncoder",
           "audioldm2", "debug_diffusion", "load_debug_diffusion", "load_diffusion_model", "saved_pipeline_class", "stable_audio"]
