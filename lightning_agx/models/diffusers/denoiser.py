"""The diffusion wing's denoiser interface, `Denoiser`, which `DiffusersTAG` (`lightning_agx.models.diffusers.tag`)
calls, and its Stable Audio implementation: diffusers' ``StableAudioDiTModel`` called as ``StableAudioPipeline``
calls it. AudioLDM 2's UNet (`lightning_agx.models.diffusers.audioldm2.AudioLDM2Denoiser`) and the embedded
world's diffusion model (`lightning_agx.toyworld.diffusion`, a `StableAudioDenoiser`) implement it too.

diffusers itself is imported only when a denoiser runs."""
from __future__ import annotations

import abc
from dataclasses import dataclass

import torch
from torch import nn

from ...errors import UserError


@dataclass
class Conditions:
    """The denoiser's conditioning of a batch: cross-attention keys, global states, key validity."""

    hidden: torch.Tensor  # [b, keys, D'] encoder hidden states (the first N keys are the text tokens)
    glob: torch.Tensor | None  # [b, 1, G] global hidden states (Stable Audio)
    key_valid: torch.Tensor | None  # [b, keys] bool, None: every key is attended
    extra: torch.Tensor | None = None  # [b, M, D''] a second, unmasked cross-attention stream (AudioLDM 2's GPT-2)

    @staticmethod
    def cat(parts: list["Conditions"]) -> "Conditions":
        def join(name):
            values = [getattr(p, name) for p in parts]
            return None if values[0] is None else torch.cat(values)
        return Conditions(join("hidden"), join("glob"), join("key_valid"), join("extra"))


class Denoiser(nn.Module, abc.ABC):
    """What `DiffusersTAG` needs of a denoiser: an ``nn.Module`` (it moves and hashes with the model) wrapping a
    diffusers model, called on the latent ``[b, C, T, *rest]`` (rest: () for 1-D latents, (W,) for 2-D ones).

    - ``query_offset``: the attention queries before the first latent position (Stable Audio's global token: 1);
    - ``channels`` C, ``latent_shape(frames)`` one prompt's latent, ``step_features`` F the latent values of
      one step (a frame's channels, or a time row's C * W values), ``grid(frames)`` the 2-D query grid of
      `AttentionState` (None: 1-D frames);
    - ``attention_model`` the diffusers model whose attention processors are replaced, ``cross_names`` the
      processors of the explained text cross-attention, ``self_names`` those of the frame self-attention
      recorded for Chefer's method ([] when not recorded); ``dtype`` of its weights;
    - ``conditions(embeddings, valid, seconds, extra)`` the `Conditions` of a batch (``extra``: a second,
      unmasked stream), ``unconditional(cond)`` the unconditional branch's;
    - ``forward(sample, timesteps, cond)`` the model output (float) for latents scaled by the scheduler;
    - ``cascade()`` the cascading-randomisation order of its modules, output side first.
    """

    query_offset: int = 0

    @property
    @abc.abstractmethod
    def channels(self) -> int: ...

    @property
    @abc.abstractmethod
    def attention_model(self) -> nn.Module: ...

    @abc.abstractmethod
    def latent_shape(self, frames: int) -> tuple[int, ...]: ...

    @property
    @abc.abstractmethod
    def step_features(self) -> int: ...

    @abc.abstractmethod
    def grid(self, frames: int) -> tuple[int, int] | None: ...

    @property
    @abc.abstractmethod
    def cross_names(self) -> list[str]: ...

    @property
    @abc.abstractmethod
    def self_names(self) -> list[str]: ...

    @property
    @abc.abstractmethod
    def dtype(self) -> torch.dtype: ...

    @abc.abstractmethod
    def conditions(self, embeddings: torch.Tensor, valid: torch.Tensor, seconds: float,
                   extra: torch.Tensor | None = None) -> Conditions: ...

    @abc.abstractmethod
    def unconditional(self, cond: Conditions) -> Conditions: ...

    @abc.abstractmethod
    def forward(self, sample: torch.Tensor, timesteps: torch.Tensor, cond: Conditions) -> torch.Tensor: ...

    @abc.abstractmethod
    def cascade(self) -> list[tuple[str, list[nn.Module]]]: ...


class StableAudioDenoiser(Denoiser):
    """diffusers' ``StableAudioDiTModel`` called as ``StableAudioPipeline`` calls it.

    - text keys: the text embeddings X ``[B, N, D]``; with `text_length` they are zero-padded to that many keys
      (the pipeline pads T5's tokens to 128 and gives no key mask: padding keys are zero vectors that still
      take some attention), else padded to the batch's longest with padding keys masked out; either way a
      prompt's result does not depend on its batch;
    - with `projection_model` (Stable Audio's ``StableAudioProjectionModel``) the duration conditioning
      (seconds start 0 and end = the clip's duration) is appended to the keys and forms the global token, as
      in the pipeline; without it the global token is zeros (the embedded toy model) and no key is appended;
    - the unconditional branch of classifier-free guidance reads all-zero keys (the pipeline without a
      negative prompt) and the same global token;
    - rotary positions over the global token and the L frames (``get_1d_rotary_pos_embed``).
    """

    query_offset = 1  # the prepended global token is query 0

    def __init__(self, transformer: nn.Module, projection_model: nn.Module | None = None,
                 text_length: int | None = None):
        super().__init__()
        self.transformer = transformer
        self.projection_model = projection_model
        self.text_length = text_length

    @property
    def channels(self) -> int:
        return int(self.transformer.config.in_channels)

    @property
    def attention_model(self) -> nn.Module:
        """The diffusers model whose attention processors `edited_attention` replaces."""
        return self.transformer

    def latent_shape(self, frames: int) -> tuple[int, ...]:
        """One prompt's latent for `frames` steps: ``[C, L]``."""
        return (self.channels, frames)

    @property
    def step_features(self) -> int:
        """F: latent values per step (a frame's C channels)."""
        return self.channels

    def grid(self, frames: int) -> tuple[int, int] | None:
        """The 2-D query grid of `AttentionState` (None: 1-D frames)."""
        return None

    @property
    def cross_names(self) -> list[str]:
        return [f"transformer_blocks.{i}.attn2.processor" for i in range(len(self.transformer.transformer_blocks))]

    @property
    def self_names(self) -> list[str]:
        return [f"transformer_blocks.{i}.attn1.processor" for i in range(len(self.transformer.transformer_blocks))]

    @property
    def dtype(self) -> torch.dtype:
        return next(self.transformer.parameters()).dtype

    def conditions(self, embeddings: torch.Tensor, valid: torch.Tensor, seconds: float,
                   extra: torch.Tensor | None = None) -> Conditions:
        if extra is not None:
            raise ValueError("Stable Audio's DiT reads one text stream; this text encoder gives a second one "
                             "(extra_conditioning): pair it with a denoiser that reads it")
        b, n, _ = embeddings.shape
        dtype = self.dtype
        x = embeddings.to(dtype) * valid[..., None].to(dtype)
        key_valid = valid.bool()
        if self.text_length is not None:
            if n > self.text_length:
                raise UserError(f"a prompt has {n} text tokens, more than the model's {self.text_length}")
            x = nn.functional.pad(x, (0, 0, 0, self.text_length - n))
            key_valid = None
        if self.projection_model is not None:
            seconds_in = torch.tensor([0.0] * b, device=x.device), torch.tensor([float(seconds)] * b, device=x.device)
            out = self.projection_model(start_seconds=seconds_in[0], end_seconds=seconds_in[1])
            start, end = out.seconds_start_hidden_states.to(dtype), out.seconds_end_hidden_states.to(dtype)
            x = torch.cat([x, start, end], dim=1)
            glob = torch.cat([start, end], dim=2)
            if key_valid is not None:
                key_valid = torch.cat([key_valid, torch.ones(b, 2, dtype=torch.bool, device=x.device)], dim=1)
        else:
            glob = torch.zeros(b, 1, self.transformer.config.global_states_input_dim, device=x.device, dtype=dtype)
        return Conditions(x, glob, key_valid)

    def unconditional(self, cond: Conditions) -> Conditions:
        return Conditions(torch.zeros_like(cond.hidden), cond.glob, cond.key_valid)

    def forward(self, sample: torch.Tensor, timesteps: torch.Tensor, cond: Conditions) -> torch.Tensor:
        """The model output for latents ``[b, C, L]`` (already scaled by the scheduler) at `timesteps` ``[b]``."""
        from diffusers.models.embeddings import get_1d_rotary_pos_embed
        head_dim = self.transformer.config.attention_head_dim
        rotary = get_1d_rotary_pos_embed(head_dim // 2, sample.shape[-1] + 1, use_real=True,
                                         repeat_interleave_real=False)
        rotary = tuple(r.to(sample.device) for r in rotary)
        out = self.transformer(sample.to(self.dtype), timesteps.to(sample.device), encoder_hidden_states=cond.hidden,
                               global_hidden_states=cond.glob, rotary_embedding=rotary, return_dict=False)[0]
        return out.float()

    def cascade(self) -> list[tuple[str, list[nn.Module]]]:
        t = self.transformer
        blocks = list(t.transformer_blocks)
        steps = [(f"layer {i}", [blocks[i]]) for i in reversed(range(len(blocks)))]
        steps.append(("embeddings+heads+text", [t.time_proj, t.timestep_proj, t.global_proj, t.cross_attention_proj,
                                                t.preprocess_conv, t.proj_in, t.proj_out, t.postprocess_conv]))
        return steps


__all__ = ["Conditions", "Denoiser", "StableAudioDenoiser"]
