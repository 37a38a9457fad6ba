"""The ToySounds diffusion model, built from diffusers' classes (used as a library): the second model family of
the embedded world.

  latents      the ToySounds codec's quantised latent [64, 75] per 3 s clip (25 frames/s; the sum of its RVQ
               codebook vectors, exactly what the codec's decoder reads), normalised per channel
  text         `ToyTextEncoder`: the world's word vocabulary (`VocabTokenizer`), a lookup table, sinusoidal
               word positions and a 2-layer transformer encoder: contextual token embeddings [N, 64], as T5
               gives Stable Audio (zeros at padding)
  denoiser     diffusers' `StableAudioDiTModel` (Stable Audio Open's DiT: latent frames are the queries of its
               text cross-attention), 6 layers, width 128, v-prediction
  scheduler    diffusers' `DDIMScheduler` (cosine betas, 1000 training steps, v-prediction), 30 steps to sample,
               classifier-free guidance 5
  decoder      the ToySounds codec's decoder (SEANet) on the de-normalised latent

Conventions are Stable Audio's pipeline's (`StableAudioPipeline`): text embeddings zero at padding and no
cross-attention mask; the unconditional branch of classifier-free guidance reads all-zero text embeddings;
the global (duration) token is zeros. Trained by ``python -m lightning_agx.toyworld.build --stages
latents,diffusion,diffusion_eval`` (`lightning_agx.toyworld.build.diffusion`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from lightning_agx.models.diffusers.denoiser import StableAudioDenoiser
from lightning_agx.toyworld.grammar import vocabulary
from lightning_agx.toyworld.models import SavedConfig

WEIGHTS = "diffusion.safetensors"  # in the world's assets folder, beside codec.safetensors
CONFIG = "diffusion.json"


@dataclass
class DiffusionConfig(SavedConfig):
    """Every choice of the ToySounds diffusion model (saved as diffusion.json next to its weights)."""
    vocab: list[str] = field(default_factory=vocabulary)
    latent_dim: int = 64  # the codec's latent channels
    frames: int = 75  # 3 s at 25 frames/s
    text_dim: int = 64
    text_layers: int = 2
    text_heads: int = 4
    layers: int = 4
    heads: int = 4
    head_dim: int = 32
    cross_dim: int = 128
    time_dim: int = 64
    global_dim: int = 64
    # sinusoidal channels of the frame index appended to the denoiser's input (Stable Audio's DiT knows frame
    # positions only relative to each other, through rotary self-attention); 0: none (the first shipped model)
    position_channels: int = 0
    train_timesteps: int = 1000
    sample_steps: int = 30
    cfg_coef: float = 5.0  # chosen on validation prompts (README); the first shipped models sampled at 3.0
    cfg_dropout: float = 0.2
    latent_mean: list[float] = field(default_factory=list)  # per channel, from the training latents
    latent_std: list[float] = field(default_factory=list)



def sinusoids(length: int, dim: int) -> torch.Tensor:
    """``[length, dim]`` sinusoidal positions (word order: "X followed by Y" is not "Y followed by X")."""
    position = torch.arange(length, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    out = torch.zeros(length, dim)
    out[:, 0::2], out[:, 1::2] = torch.sin(position * freq), torch.cos(position * freq)
    return out


class ToyTextEncoder(nn.Module):
    """Word ids ``[B, N]`` and their mask -> contextual embeddings ``[B, N, text_dim]``, zero at padding."""

    def __init__(self, n_words: int, dim: int = 64, layers: int = 2, heads: int = 4, max_words: int = 32):
        super().__init__()
        self.embed = nn.Embedding(n_words, dim)
        self.register_buffer("positions", sinusoids(max_words, dim), persistent=False)
        layer = nn.TransformerEncoderLayer(dim, heads, 4 * dim, dropout=0.0, batch_first=True, norm_first=True)
        # layers 0: a lookup table with word positions (each token carries only its own word, as the LM's text)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False) if layers else None
        self.norm = nn.LayerNorm(dim)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        valid = mask.bool()
        x = self.embed(ids) + self.positions[:ids.shape[1]]
        if self.encoder is not None:
            x = self.encoder(x, src_key_padding_mask=~valid)
        return self.norm(x) * valid[..., None]


def build_denoiser(cfg: DiffusionConfig):
    from diffusers import StableAudioDiTModel
    return StableAudioDiTModel(sample_size=cfg.frames, in_channels=cfg.latent_dim + cfg.position_channels,
                               out_channels=cfg.latent_dim,
                               num_layers=cfg.layers, attention_head_dim=cfg.head_dim, num_attention_heads=cfg.heads,
                               num_key_value_attention_heads=cfg.heads, cross_attention_dim=cfg.cross_dim,
                               time_proj_dim=cfg.time_dim, global_states_input_dim=cfg.global_dim,
                               cross_attention_input_dim=cfg.text_dim)


def with_positions(latents: torch.Tensor, channels: int) -> torch.Tensor:
    """``[B, C, L]`` -> ``[B, C + channels, L]``: sinusoids of the frame index appended (nothing when 0)."""
    if not channels:
        return latents
    pos = sinusoids(latents.shape[-1], channels).T.to(latents.device, latents.dtype)  # [channels, L]
    return torch.cat([latents, pos.expand(latents.shape[0], -1, -1)], dim=1)


def build_scheduler(cfg: DiffusionConfig):
    from diffusers import DDIMScheduler
    return DDIMScheduler(num_train_timesteps=cfg.train_timesteps, beta_schedule="squaredcos_cap_v2",
                         prediction_type="v_prediction", clip_sample=False, set_alpha_to_one=True,
                         timestep_spacing="trailing")


class ToyDiffusion(nn.Module):
    """The trainable parts, saved together: the text encoder and the denoiser."""

    def __init__(self, cfg: DiffusionConfig):
        super().__init__()
        from lightning_agx.toyworld.tokenizer import VocabTokenizer
        self.cfg = cfg
        self.tokenizer = VocabTokenizer(cfg.vocab)
        self.text = ToyTextEncoder(len(self.tokenizer), cfg.text_dim, cfg.text_layers, cfg.text_heads,
                                   VocabTokenizer.max_length)
        self.denoiser = build_denoiser(cfg)

    def encode_text(self, prompts: list[str | None]) -> torch.Tensor:
        """``[B, 32, text_dim]`` token embeddings of `prompts`, zero-padded to the fixed 32 tokens of the world's
        tokenizer (as Stable Audio pads T5 to a fixed length, so a prompt's keys never depend on its batch); a
        None prompt (the unconditional branch): all zeros."""
        ids, mask = self.tokenizer(prompts)
        width = self.tokenizer.max_length
        ids = torch.nn.functional.pad(ids, (0, width - ids.shape[1]), value=self.tokenizer.pad_idx)
        mask = torch.nn.functional.pad(mask, (0, width - mask.shape[1]))
        device = self.text.embed.weight.device
        x = self.text(ids.to(device).long(), mask.to(device))
        keep = torch.tensor([p is not None for p in prompts], device=device)
        # where, not a product: in eval mode torch's fused encoder path gives NaN for a row whose keys are all
        # padding (a None prompt), and NaN * 0 stays NaN
        return torch.where(keep[:, None, None], x, torch.zeros_like(x))

    def dit(self) -> StableAudioDenoiser:
        """The denoiser called as `DiffusersTAG` calls it (`StableAudioDenoiser`, with the frame positions when the
        model has them), the text keys padded to the tokenizer's fixed length: training and explaining run one
        call. A fresh wrapper each time, so the denoiser's weights keep their one name in the state dict."""
        if self.cfg.position_channels:
            return PositionalDenoiser(self.denoiser, self.cfg.position_channels, text_length=self.tokenizer.max_length)
        return StableAudioDenoiser(self.denoiser, text_length=self.tokenizer.max_length)

    def predict(self, latents: torch.Tensor, timesteps: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """The denoiser's v-prediction for latents ``[B, C, L]`` at `timesteps` ``[B]`` given text ``[B, N, D]``
        (`encode_text`'s: already zero-padded to the fixed length)."""
        dit = self.dit()
        return dit(latents, timesteps, dit.conditions(text, torch.ones(text.shape[:2], dtype=torch.bool,
                                                                        device=text.device), 0.0))

    def normalise(self, latent: torch.Tensor) -> torch.Tensor:
        mean, std = self._stats(latent)
        return (latent - mean) / std

    def denormalise(self, latent: torch.Tensor) -> torch.Tensor:
        mean, std = self._stats(latent)
        return latent * std + mean

    def _stats(self, like: torch.Tensor):
        mean = torch.tensor(self.cfg.latent_mean, device=like.device, dtype=like.dtype)[:, None]
        std = torch.tensor(self.cfg.latent_std, device=like.device, dtype=like.dtype)[:, None]
        return mean, std


def load_diffusion(directory=None, device: str = "cpu") -> ToyDiffusion:
    """The shipped (or `directory`'s) ToySounds diffusion model, eval mode, frozen."""
    import json
    from pathlib import Path

    from lightning_agx.toyworld.load import ASSETS, load_state
    directory = Path(directory) if directory is not None else ASSETS
    path = directory / CONFIG
    if not path.is_file():
        from lightning_agx.toyworld.load import ToySoundsWeightsError
        raise ToySoundsWeightsError(f"no ToySounds diffusion model in {directory} ({CONFIG} missing): build it with "
                                    "`python -m lightning_agx.toyworld.build --stages codes,diffusion,diffusion_eval`")
    model = ToyDiffusion(DiffusionConfig.from_dict(json.loads(path.read_text())))
    load_state(model, directory / WEIGHTS)
    return model.to(device).eval().requires_grad_(False)


class ToyTextModule(nn.Module):
    """The model's text encoder behind `lightning_agx.models.diffusers.text.TextEncoder` protocol: the world's
    word tokens, their contextual embeddings ``[B, N, 64]`` (zeros at padding) and validity."""

    def __init__(self, model: ToyDiffusion):
        super().__init__()
        self.tokenizer = model.tokenizer
        self.text = model.text
        self.dim = model.cfg.text_dim
        self.max_tokens = self.tokenizer.max_length
        self.vocabulary = set(model.cfg.vocab)

    def tokens(self, prompt: str) -> list[str]:
        return self.tokenizer.words(prompt)

    def forward(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        ids, mask = self.tokenizer(list(prompts))
        device = self.text.embed.weight.device
        valid = mask.to(device).bool()
        return self.text(ids.to(device).long(), valid), valid


class ToyLatentDecoder(nn.Module):
    """Normalised latent ``[B, 64, L]`` -> waveform ``[B, 1, L * 640]``: de-normalised, then the codec's decoder."""

    def __init__(self, model: ToyDiffusion, codec: nn.Module):
        super().__init__()
        self.model, self.codec_decoder = model, codec.decoder

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        return self.codec_decoder(self.model.denormalise(latents))


class PositionalDenoiser(StableAudioDenoiser):
    """Stable Audio's denoiser call with the frame-position channels appended to its input latents."""

    def __init__(self, transformer: nn.Module, position_channels: int, text_length: int | None = None):
        super().__init__(transformer, text_length=text_length)
        self.position_channels = position_channels

    @property
    def channels(self) -> int:
        return int(self.transformer.config.in_channels) - self.position_channels

    def forward(self, sample, timesteps, cond):
        return super().forward(with_positions(sample, self.position_channels), timesteps, cond)


def load_toysounds_diffusion(device: str = "cpu", directory=None, duration: float | None = None,
                             name: str = "toysounds-diffusion", seed: int = 0):
    """``load_model("toysounds-diffusion")`` (its loader in `lightning_agx.models.catalogue`): the shipped model
    behind `DiffusersTAG` (the diffusion family's adapter) on the world's codec, with the world's ground truth.
    `seed` is unused (the shipped weights)."""
    from lightning_agx.models.diffusers.tag import DiffusersTAG
    from lightning_agx.toyworld.load import ASSETS, load_config, load_state
    from lightning_agx.toyworld.models import build_codec
    from lightning_agx.toyworld.truth import ToySoundsTruth
    from pathlib import Path
    directory = ASSETS if directory is None else Path(directory)
    model = load_diffusion(directory, device)
    world = load_config(directory)
    codec = build_codec(world)
    load_state(codec, directory / "codec.safetensors")
    codec = codec.to(device).eval().requires_grad_(False)
    denoiser = model.dit()
    tag = DiffusersTAG(denoiser,
                       build_scheduler(model.cfg), ToyLatentDecoder(model, codec), ToyTextModule(model),
                       frame_rate=world.frame_rate, sample_rate=world.sample_rate, name=name,
                       duration=world.duration, max_duration=world.duration,
                       num_inference_steps=model.cfg.sample_steps, guidance_scale=model.cfg.cfg_coef)
    if duration is not None:
        tag.num_steps(duration)
        tag.duration = float(duration)
    tag.ground_truth = ToySoundsTruth()
    return tag.to(device)
