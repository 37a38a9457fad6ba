"""The diffusion wing's text side: the `TextEncoder` protocol `DiffusersTAG` reads, and the encoders the loaders
(`lightning_agx.models.diffusers.models`) build: a hashed lookup table (the debug model) and T5 (Stable Audio
Open, AudioLDM 2)."""
from __future__ import annotations

import re
import zlib
from typing import Protocol, runtime_checkable

import torch
from torch import nn

_WORD = re.compile(r"[^\w\s'-]")


@runtime_checkable
class TextEncoder(Protocol):
    """What `DiffusersTAG` needs of a text encoder (an ``nn.Module``, so that it moves and hashes with the model).

    ``dim``: D, the width of the embeddings the denoiser's cross-attention reads; ``max_tokens``: the token
    limit (None: none); ``tokens(prompt)``: the token strings, one per embedding; ``__call__(prompts)``: the
    embeddings ``[B, N, D]`` (zeros at padding, N = the longest prompt's tokens) and their validity ``[B, N]``
    bool. A prompt's embeddings must not depend on the other prompts (padding aside). Optional:
    ``vocabulary`` (a closed vocabulary, a set of words; else None); ``extra_conditioning(prompts)``: a second
    stream ``[B, M, D']`` the denoiser reads unmasked (`TextConditioning.extra`; AudioLDM 2's GPT-2 vectors)."""

    dim: int
    max_tokens: int | None

    def tokens(self, prompt: str) -> list[str]: ...

    def __call__(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]: ...


class HashedLUTEncoder(nn.Module):
    """A lookup table over words (lowercase, punctuation dropped, split on whitespace): word w has row
    ``1 + crc32(w) % n_bins`` (row 0: padding), as audiocraft's debug LUT conditioner hashes words. Any word
    is known (open vocabulary). `TextEncoder` protocol."""

    def __init__(self, n_bins: int = 128, dim: int = 16, max_tokens: int = 32):
        super().__init__()
        self.n_bins, self.dim, self.max_tokens = n_bins, dim, max_tokens
        self.embed = nn.Embedding(n_bins + 1, dim)
        self.vocabulary = None

    def tokens(self, prompt: str) -> list[str]:
        return _WORD.sub(" ", prompt.lower()).split()

    def forward(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        words = [self.tokens(p) for p in prompts]
        width = max([len(w) for w in words] + [1])
        ids = torch.zeros(len(prompts), width, dtype=torch.long)
        for b, row in enumerate(words):
            ids[b, :len(row)] = torch.tensor([1 + zlib.crc32(w.encode()) % self.n_bins for w in row], dtype=torch.long)
        ids = ids.to(self.embed.weight.device)
        valid = ids > 0
        return self.embed(ids) * valid[..., None], valid


class T5TextEncoder(nn.Module):
    """A T5 tokenizer and encoder (Stable Audio Open's, AudioLDM 2's Flan-T5) as a `TextEncoder`, optionally
    followed by a projection (Stable Audio's ``projection_model.text_projection``): the embeddings the
    denoiser's cross-attention reads, zero at padding, token strings as the tokenizer splits the prompt
    (sub-word pieces and ``</s>``). T5 encodes each prompt with its padding masked, so a prompt's embeddings do
    not depend on its batch."""

    def __init__(self, tokenizer, encoder: nn.Module, projection: nn.Module | None = None, dim: int | None = None):
        super().__init__()
        self.tokenizer, self.encoder, self.projection = tokenizer, encoder, projection
        self.dim = int(dim or encoder.config.d_model)
        self.max_tokens = int(tokenizer.model_max_length)
        self.vocabulary = None

    def tokens(self, prompt: str) -> list[str]:
        return self.tokenizer.convert_ids_to_tokens(self.tokenizer([prompt])["input_ids"][0])

    def forward(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        device = next(self.encoder.parameters()).device
        inputs = self.tokenizer(prompts, padding="longest", truncation=True, max_length=self.max_tokens,
                                return_tensors="pt").to(device)
        hidden = self.encoder(inputs.input_ids, attention_mask=inputs.attention_mask)[0]
        if self.projection is not None:
            hidden = self.projection(hidden)
        valid = inputs.attention_mask.bool()
        return hidden * valid[..., None].to(hidden.dtype), valid


__all__ = ["HashedLUTEncoder", "T5TextEncoder", "TextEncoder"]
