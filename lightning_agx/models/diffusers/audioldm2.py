"""AudioLDM 2 (diffusers' ``AudioLDM2Pipeline``) behind `lightning_agx.models.diffusers.tag.DiffusersTAG`.

AudioLDM 2's ``AudioLDM2UNet2DConditionModel`` denoises a 2-D mel latent ``[B, C, H, W]`` (H latent time rows,
W frequency bins; axis 2 is time) and reads two cross-attention streams:

- ``encoder_hidden_states_1``: the Flan-T5 tokens of the prompt (with their padding mask). **This is the
  explained stream**: the mask ``[B, T, N]`` (T = H time rows, N T5 tokens, with their token strings)
  scales the T5 cross-attention of every UNet level (`AudioLDM2Denoiser.cross_names`), each level's queries
  pooling the mask rows of their time span (`lightning_agx.models.diffusers.attention`, ``grid``);
- ``encoder_hidden_states``: the "8 vectors" GPT-2 generates from the CLAP and T5 encodings
  (``AudioLDM2Pipeline.encode_prompt``). **This stream is left unmasked** (``TextConditioning.extra``): what
  the prompt's words reach the audio through it is out of the mask's reach, so an explanation measures the
  T5 route only.

Classifier-free guidance uses what the pipeline uses without a negative prompt: the encodings of ``""`` (its
T5 tokens, key-masked to the batch's T5 length, and its GPT-2 vectors), computed once at load time; the mask
never touches them. Each prompt (and ``""``) is encoded alone: GPT-2 reads the concatenated CLAP and T5
sequence without position ids, so in a padded batch a prompt's GPT-2 vectors would depend on the longest
prompt; alone, they are what the pipeline computes for a batch of one.

Decoding is the pipeline's: latent / ``vae.config.scaling_factor`` -> ``AutoencoderKL.decode`` -> mel
``[B, 1, H * vae_scale, n_mels]`` -> ``SpeechT5HifiGan`` -> waveform.
"""
from __future__ import annotations

import torch
from torch import nn

from ...errors import UserError
from .denoiser import Conditions, Denoiser
from .text import T5TextEncoder


class AudioLDM2TextEncoder(nn.Module):
    """AudioLDM 2's text side as a `TextEncoder`: the Flan-T5 tokens (masked, explained; `T5TextEncoder` over
    ``tokenizer_2`` / ``text_encoder_2``) and, as `extra_conditioning`, the GPT-2 vectors the pipeline's own
    ``encode_prompt`` computes for each prompt alone (CLAP, T5, the projection model, GPT-2)."""

    def __init__(self, pipeline):
        super().__init__()
        self.t5 = T5TextEncoder(pipeline.tokenizer_2, pipeline.text_encoder_2)
        self.clap = pipeline.text_encoder
        self.projection_model = pipeline.projection_model
        self.language_model = pipeline.language_model
        self.dim, self.max_tokens, self.vocabulary = self.t5.dim, self.t5.max_tokens, None
        self.max_new_tokens = _max_new_tokens(pipeline.language_model)
        self._pipeline = pipeline  # its encode_prompt; its modules are the ones registered above

    def tokens(self, prompt: str) -> list[str]:
        return self.t5.tokens(prompt)

    def forward(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        return self.t5(prompts)

    def extra_conditioning(self, prompts: list[str]) -> torch.Tensor:
        """``[B, M, D']`` the GPT-2 vectors of each prompt, encoded alone (M = the pipeline's max_new_tokens)."""
        device = next(self.language_model.parameters()).device
        rows = [self._pipeline.encode_prompt([p], device, num_waveforms_per_prompt=1,
                                             do_classifier_free_guidance=False,
                                             max_new_tokens=self.max_new_tokens)[2] for p in prompts]
        return torch.cat(rows).float()


def _max_new_tokens(language_model: nn.Module) -> int:
    """The GPT-2 vectors to generate: the language model's ``max_new_tokens`` (cvssp/audioldm2: 8)."""
    for config in (language_model.config, getattr(language_model, "generation_config", None)):
        value = getattr(config, "max_new_tokens", None)
        if value:
            return int(value)
    raise UserError("the AudioLDM 2 language model's config sets no max_new_tokens (how many GPT-2 vectors to "
                    "generate); set language_model.config.max_new_tokens (cvssp/audioldm2: 8)")


class AudioLDM2Denoiser(Denoiser):
    """diffusers' ``AudioLDM2UNet2DConditionModel`` called as ``AudioLDM2Pipeline`` calls it (the
    `StableAudioDenoiser` interface of `DiffusersTAG`; module docstring): ``encoder_hidden_states`` = the
    GPT-2 vectors (unmasked), ``encoder_hidden_states_1`` = the T5 tokens with ``encoder_attention_mask_1``.

    unet: the UNet; frequency_bins: W, the latent's frequency columns (the vocoder's mel bins / the VAE's
    scale factor); negative: the T5 embeddings ``[1, n, D]``, their validity ``[1, n]`` and the GPT-2 vectors
    ``[1, M, D']`` of ``""`` (the unconditional branch), fixed at load time (buffers: a cascading
    randomisation of the text encoder leaves them as they were)."""

    query_offset = 0  # every query is a latent position

    def __init__(self, unet: nn.Module, frequency_bins: int,
                 negative: tuple[torch.Tensor, torch.Tensor, torch.Tensor]):
        super().__init__()
        self.unet = unet
        self.frequency_bins = int(frequency_bins)
        embeddings, valid, extra = negative
        self.register_buffer("negative_embeddings", embeddings.float() * valid[..., None].float())
        self.register_buffer("negative_valid", valid.bool())
        self.register_buffer("negative_extra", extra.float())
        if not self.cross_names:
            raise UserError(f"{type(unet).__name__} has no T5-stream cross-attention (cross_attention_dim entries "
                            "past the second); it is not an AudioLDM 2 text-to-audio UNet")

    @property
    def channels(self) -> int:
        return int(self.unet.config.in_channels)

    @property
    def attention_model(self) -> nn.Module:
        return self.unet

    def latent_shape(self, frames: int) -> tuple[int, ...]:
        """One prompt's latent for `frames` time rows: ``[C, H, W]``."""
        return (self.channels, frames, self.frequency_bins)

    @property
    def step_features(self) -> int:
        """F: latent values per time row (C channels x W frequency bins)."""
        return self.channels * self.frequency_bins

    def grid(self, frames: int) -> tuple[int, int]:
        return (frames, self.frequency_bins)

    @property
    def cross_names(self) -> list[str]:
        """The T5-stream cross-attention processors of every UNet level, in the order the UNet runs them: in a
        block with cross-attention dims ``(d_0, d_1, d_2, ...)`` per layer, attention ``i * len + idx`` reads
        the T5 tokens where ``idx > 1`` and ``d_idx`` is set (diffusers' routing; idx 0-1 read GPT-2)."""
        u = self.unet
        blocks = [*(f"down_blocks.{i}" for i in range(len(u.down_blocks))), "mid_block",
                  *(f"up_blocks.{i}" for i in range(len(u.up_blocks)))]
        names = []
        for prefix in blocks:
            block = u.get_submodule(prefix)
            dims = getattr(block, "cross_attention_dim", None)
            if not hasattr(block, "attentions") or dims is None:
                continue
            for j, attention in enumerate(block.attentions):
                idx = j % len(dims)
                if idx > 1 and dims[idx] is not None:
                    names += [f"{prefix}.attentions.{j}.transformer_blocks.{b}.attn2.processor"
                              for b in range(len(attention.transformer_blocks))]
        return names

    @property
    def self_names(self) -> list[str]:
        return []  # the self-attention of a 2-D level is not a [T, T] frame attention: not recorded

    @property
    def dtype(self) -> torch.dtype:
        return next(self.unet.parameters()).dtype

    def conditions(self, embeddings: torch.Tensor, valid: torch.Tensor, seconds: float,
                   extra: torch.Tensor | None = None) -> Conditions:
        """The T5 keys (zero and key-masked at padding) and the GPT-2 vectors `extra` of a batch."""
        if extra is None:
            raise ValueError("AudioLDM 2 needs the prompt's GPT-2 vectors (TextConditioning.extra); encode the "
                             "prompts with the model's own text encoder (tag.encode_text)")
        dtype = self.dtype
        x = embeddings.to(dtype) * valid[..., None].to(dtype)
        return Conditions(x, None, valid.bool(), extra.to(dtype))

    def unconditional(self, cond: Conditions) -> Conditions:
        """The encodings of ``""`` padded to the batch's T5 keys (padding key-masked), for every row."""
        b, keys = cond.hidden.shape[:2]
        n = self.negative_embeddings.shape[1]
        if n > keys:
            raise ValueError(f"the unconditional prompt has {n} T5 tokens, more than the batch's {keys}")
        dtype = cond.hidden.dtype
        hidden = nn.functional.pad(self.negative_embeddings.to(dtype), (0, 0, 0, keys - n)).expand(b, -1, -1)
        valid = nn.functional.pad(self.negative_valid, (0, keys - n), value=False).expand(b, -1)
        return Conditions(hidden, None, valid, self.negative_extra.to(dtype).expand(b, -1, -1))

    def forward(self, sample: torch.Tensor, timesteps: torch.Tensor, cond: Conditions) -> torch.Tensor:
        """The UNet's output (noise or v) for latents ``[b, C, H, W]`` at `timesteps` ``[b]``."""
        out = self.unet(sample.to(self.dtype), timesteps.to(sample.device), encoder_hidden_states=cond.extra,
                        encoder_hidden_states_1=cond.hidden, encoder_attention_mask_1=cond.key_valid.long(),
                        return_dict=False)[0]
        return out.float()

    def cascade(self) -> list[tuple[str, list[nn.Module]]]:
        """Output side first: the up blocks (last first), the mid block, the down blocks (deepest first), then
        the embeddings and heads."""
        u = self.unet
        steps = [(f"up block {i}", [u.up_blocks[i]]) for i in reversed(range(len(u.up_blocks)))]
        steps.append(("mid block", [u.mid_block]))
        steps += [(f"down block {i}", [u.down_blocks[i]]) for i in reversed(range(len(u.down_blocks)))]
        heads = [u.conv_in, u.time_embedding, u.conv_norm_out, u.conv_out]
        steps.append(("embeddings+heads+text", [m for m in heads if m is not None]))
        return steps


class MelVocoderDecoder(nn.Module):
    """AudioLDM 2's decoding, as the pipeline's: latent ``[B, C, H, W]`` / ``scaling_factor`` ->
    ``AutoencoderKL.decode`` -> mel ``[B, 1, frames, n_mels]`` -> ``SpeechT5HifiGan`` -> ``[B, 1, samples]``."""

    def __init__(self, vae: nn.Module, vocoder: nn.Module):
        super().__init__()
        self.vae, self.vocoder = vae, vocoder

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        latents = latents.to(next(self.vae.parameters()).dtype) / self.vae.config.scaling_factor
        mel = self.vae.decode(latents).sample.squeeze(1)  # [B, frames, n_mels]
        return self.vocoder(mel.to(next(self.vocoder.parameters()).dtype)).float()[:, None]


__all__ = ["AudioLDM2Denoiser", "AudioLDM2TextEncoder", "MelVocoderDecoder"]
