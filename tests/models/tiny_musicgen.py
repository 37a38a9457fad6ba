"""A tiny random transformers MusicGen (``MusicgenForConditionalGeneration``), built offline from transformers' own
config classes and saved with ``save_pretrained`` (safetensors), so that `lightning_agx.models.transformers.musicgen`
loads it through its real ``from_pretrained`` code path (no download, no Hugging Face cache).

`save_tiny_musicgen(folder)` writes, as ``facebook/musicgen-small``'s folder holds them: ``config.json`` (model_type
"musicgen": a ``T5Config`` text encoder, an ``EncodecConfig`` codec, a ``MusicgenDecoderConfig`` decoder),
``generation_config.json``, ``model.safetensors`` and the tokenizer's files. T5's own tokenizer files are not
available offline, so the tokenizer is a word-level one built with the ``tokenizers`` library (lowercased,
punctuation dropped, split on whitespace, unknown words -> ``<unk>``, ``</s>`` appended as T5's appends it), saved as
a ``PreTrainedTokenizerFast``.

`tiny_musicgen(folder)` saves it into ``folder / "tiny"`` and returns ``load_model`` of it (a contract-suite family's
``load``); `musicgen_reload(tag, folder)` writes a loaded model again with ``save_pretrained`` and loads it back (its
``reload``).

Sizes: T5 of width 24 (2 layers, 2 heads; != the decoder's width, so ``enc_to_dec_proj`` is exercised), EnCodec at
2 kHz mono with 40 samples per frame (50 frames per second) and 4 codebooks of 32 codes, a decoder of width 16
(2 layers, 2 heads, dropout 0.1 as the real ones: the adapter must run it in eval mode), 100 positions at most
(2 s). Sampling as MusicGen's: top-k (8 here), guidance scale 3.
"""
from __future__ import annotations

import contextlib
import warnings
from pathlib import Path

import torch

WORDS = ("a", "dog", "barks", "loudly", "near", "river", "rain", "siren", "wails", "the", "and", "of", "in", "on",
         "music", "drums", "guitar", "piano", "wind", "birds", "sing", "happy", "rock", "song", "with")
SPECIALS = ("<pad>", "</s>", "<unk>")  # ids 0, 1, 2 as T5's
TEXT_WIDTH = 24
DECODER_WIDTH = 16
CODEBOOKS = 4
CARD = 32  # codes per codebook; the decoder's pad / start token is CARD, as musicgen-small's 2048
SAMPLE_RATE = 2000
HOP = 40  # samples per frame: 50 frames per second
MAX_POSITIONS = 100  # generation_config.max_length: 2 s at most


@contextlib.contextmanager
def quiet_transformers():
    """transformers' logging at error level inside the block."""
    from transformers.utils import logging
    verbosity = logging.get_verbosity()
    logging.set_verbosity_error()
    try:
        yield
    finally:
        logging.set_verbosity(verbosity)


def word_tokenizer(max_length: int = 32):
    """A word-level ``PreTrainedTokenizerFast`` over `WORDS` (see the module docstring)."""
    from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast
    vocab = {token: i for i, token in enumerate(SPECIALS + WORDS)}
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tokenizer.normalizer = normalizers.Sequence([normalizers.Lowercase(),
                                                 normalizers.Replace(Regex(r"[^\w\s'-]"), " ")])
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="<pad>", eos_token="</s>",
                                   unk_token="<unk>", model_max_length=max_length)


def tiny_musicgen_model(seed: int = 0, stereo: bool = False):
    """The tiny ``MusicgenForConditionalGeneration`` (random weights drawn from `seed`) and its tokenizer;
    `stereo`: 2 audio channels (8 codebooks, interleaved left/right, as musicgen-stereo-*)."""
    with quiet_transformers():  # pad/start token = the vocabulary size: MusicGen's design (musicgen-small's too)
        return _build(seed, stereo)


def _build(seed: int, stereo: bool):
    from transformers import (EncodecConfig, GenerationConfig, MusicgenConfig, MusicgenDecoderConfig,
                              MusicgenForConditionalGeneration, T5Config)
    tokenizer = word_tokenizer()
    text = T5Config(vocab_size=len(tokenizer), d_model=TEXT_WIDTH, d_ff=32, d_kv=12, num_heads=2, num_layers=2,
                    relative_attention_num_buckets=8, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0)
    codec = EncodecConfig(sampling_rate=SAMPLE_RATE, upsampling_ratios=[8, 5], codebook_size=CARD,
                          target_bandwidths=[1.0], hidden_size=16, num_filters=4, num_lstm_layers=1,
                          audio_channels=1, chunk_length_s=None, overlap=None)
    assert codec.num_quantizers == CODEBOOKS and codec.frame_rate * HOP == SAMPLE_RATE
    codebooks = 2 * CODEBOOKS if stereo else CODEBOOKS
    decoder = MusicgenDecoderConfig(vocab_size=CARD, num_codebooks=codebooks, hidden_size=DECODER_WIDTH,
                                    num_hidden_layers=2, num_attention_heads=2, ffn_dim=32,
                                    max_position_embeddings=MAX_POSITIONS, audio_channels=2 if stereo else 1,
                                    pad_token_id=CARD, bos_token_id=CARD, dropout=0.1, initializer_factor=0.2)
    config = MusicgenConfig(text_encoder=text, audio_encoder=codec, decoder=decoder)
    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*weight_norm.*")  # EnCodec's convolutions
        torch.manual_seed(seed)
        model = MusicgenForConditionalGeneration(config)
    model.generation_config = GenerationConfig(do_sample=True, guidance_scale=3.0, top_k=8, max_length=MAX_POSITIONS,
                                               bos_token_id=CARD, pad_token_id=CARD, decoder_start_token_id=CARD)
    return model.eval(), tokenizer


def save_tiny_musicgen(folder, seed: int = 0, stereo: bool = False) -> Path:
    """Write the tiny model (weights from `seed`) and its tokenizer into `folder` with ``save_pretrained``; returns
    the folder (what ``load_model`` takes)."""
    folder = Path(folder)
    model, tokenizer = tiny_musicgen_model(seed, stereo)
    save(model, tokenizer, folder)
    return folder


def save(model, tokenizer, folder: Path) -> None:
    """``save_pretrained`` of the model (safetensors, config.json, generation_config.json) and its tokenizer."""
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def tiny_musicgen(folder, duration: float = 0.5, seed: int = 0) -> "TAGModel":
    """The tiny model saved into ``folder / "tiny"`` and loaded by ``load_model(folder)``: 0.5 s by default (25
    frames, T = 28 steps, as audiocraft's debug LM's 1 s)."""
    from lightning_agx.models import load_model
    return load_model(str(save_tiny_musicgen(Path(folder) / "tiny", seed)), duration=duration)


def musicgen_reload(tag, folder) -> "TAGModel":
    """`tag`'s model and tokenizer written again by ``save_pretrained`` to `folder` and loaded with
    ``load_model(folder)`` (the sampling settings, which a run passes, are `tag`'s)."""
    from lightning_agx.models import load_model
    save(tag.model, tag.tokenizer, Path(folder))
    again = load_model(str(folder), duration=tag.duration)
    again.generation_params = dict(tag.generation_params)
    return again


__all__ = ["musicgen_reload", "save_tiny_musicgen", "tiny_musicgen", "tiny_musicgen_model", "word_tokenizer"]
