"""Word-level tokenizer with the ToySounds world's fixed vocabulary, a drop-in for audiocraft's tokenizers."""
from __future__ import annotations

import re
import typing as tp
import warnings

import torch

from lightning_agx.models.audiocraft._install import ensure_audiocraft
from lightning_agx.toyworld.grammar import vocabulary

ensure_audiocraft()  # quiet import of audiocraft (xformers), 'torch' attention backend
from audiocraft.modules.conditioners import Tokenizer  # noqa: E402

PAD, UNK = "<pad>", "<unk>"
_PUNCT = re.compile(r"[^\w\s'-]")


class VocabTokenizer(Tokenizer):
    """Every word is a token (fillers included); lowercase, punctuation stripped; pad 0, unknown 1.

    Same contract as ``WhiteSpaceTokenizer.__call__``: ``(tokens int[B, N], mask int[B, N])``; a ``None``
    text (audiocraft's null condition for classifier-free guidance) gives one pad token with mask 0.
    Unknown words map to index 1 with a warning that names them. Prompts are limited to `max_length` words
    (the world's captions have at most 14; the LM never saw longer text).
    """

    max_length = 32

    def __init__(self, vocab: tp.Sequence[str] | None = None, pad_idx: int = 0):
        words = list(vocab) if vocab is not None else vocabulary()
        self.itos = [PAD, UNK] + [w for w in words if w not in (PAD, UNK)]
        self.stoi = {w: i for i, w in enumerate(self.itos)}
        self.pad_idx = pad_idx
        self.unk_idx = 1
        self.n_bins = len(self.itos)
        self.word_dropout = 0.0  # training only: probability that a word of `dropout_words` becomes <unk>
        self.dropout_words: set[str] = set()
        self.generator: torch.Generator | None = None

    def __len__(self) -> int:
        return len(self.itos)

    def words(self, text: str | None) -> list[str]:
        """The token strings of ``text``, aligned one-to-one with the ids (unknown words as themselves)."""
        if text is None:
            return []
        return _PUNCT.sub(" ", text.lower()).split()

    def encode(self, text: str | None) -> list[int]:
        words = self.words(text)
        unknown = [w for w in words if w not in self.stoi]
        if unknown:
            warnings.warn(f"words outside the ToySounds vocabulary map to {UNK}: {unknown}", stacklevel=3)
        ids = [self.stoi.get(w, self.unk_idx) for w in words]
        if self.word_dropout > 0:  # word dropout: the LM learns that <unk> says as little as a filler
            drop = torch.rand(len(ids), generator=self.generator) < self.word_dropout
            ids = [self.unk_idx if d and w in self.dropout_words else i for i, w, d in zip(ids, words, drop.tolist())]
        return ids

    def __call__(self, texts: tp.List[tp.Optional[str]]) -> tp.Tuple[torch.Tensor, torch.Tensor]:
        ids = [self.encode(t) for t in texts]
        width = max([len(i) for i in ids] + [1])
        tokens = torch.full((len(texts), width), self.pad_idx, dtype=torch.int)
        mask = torch.zeros((len(texts), width), dtype=torch.int)
        for b, row in enumerate(ids):
            tokens[b, :len(row)] = torch.tensor(row, dtype=torch.int)
            mask[b, :len(row)] = 1
        return tokens, mask
