"""Tiny real-format diffusers pipelines, built offline from diffusers' and transformers' own classes and saved
with ``save_pretrained``, so that the loaders of `lightning_agx.models.diffusers.models` run their real
``from_pretrained`` code path on them (no download, no Hugging Face cache).

- `save_tiny_stable_audio(path)`: a ``StableAudioPipeline`` (``StableAudioDiTModel``, ``StableAudioProjectionModel``,
  ``AutoencoderOobleck``, ``T5EncoderModel``, a T5 tokenizer, ``EDMDPMSolverMultistepScheduler``);
- `save_tiny_audioldm2(path)`: an ``AudioLDM2Pipeline`` (``ClapModel`` + a RoBERTa tokenizer, ``T5EncoderModel`` + a
  T5 tokenizer, ``GPT2LMHeadModel``, ``AudioLDM2ProjectionModel``, ``AudioLDM2UNet2DConditionModel``,
  ``AutoencoderKL``, ``SpeechT5HifiGan``, ``DDIMScheduler``, ``ClapFeatureExtractor``).

The tokenizers are built in code: a T5 tokenizer over a small Unigram vocabulary (whole words of the test
prompts and single letters, so that any lowercase word tokenizes) and a RoBERTa tokenizer over a byte-level BPE
vocabulary of the 256 byte symbols (no merges). Sizes follow diffusers' own fast pipeline tests.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import torch

WORDS = ("a", "dog", "barks", "loudly", "near", "river", "rain", "siren", "wails", "the", "and", "of", "in", "on")
LETTERS = "abcdefghijklmnopqrstuvwxyz"
T5_WIDTH = 32  # d_model of the tiny T5 encoders


def t5_tokenizer(max_length: int = 32):
    """A T5 tokenizer (transformers' ``T5Tokenizer``, tokenizers backend) over a small Unigram vocabulary:
    ``<pad>`` 0, ``</s>`` 1, ``<unk>`` 2, then the words of `WORDS` as ``▁word`` pieces, ``▁`` and single letters.
    It appends ``</s>`` as T5's does."""
    from transformers import T5Tokenizer
    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    vocab += [(f"\u2581{w}", -1.0) for w in WORDS]
    vocab += [("\u2581", -3.0)] + [(c, -4.0) for c in LETTERS]
    vocab += [(f"\u2581{c}", -3.5) for c in LETTERS if c not in WORDS]
    return T5Tokenizer(vocab=vocab, extra_ids=0, model_max_length=max_length)


def roberta_tokenizer(max_length: int = 64):
    """A RoBERTa tokenizer (byte-level BPE) whose vocabulary is the special tokens and the 256 byte symbols, no
    merges: every prompt tokenizes, one token per byte (CLAP's text branch reads them)."""
    from transformers import RobertaTokenizer
    from transformers.convert_slow_tokenizer import bytes_to_unicode
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "<mask>": 4}
    for symbol in bytes_to_unicode().values():
        vocab.setdefault(symbol, len(vocab))
    return RobertaTokenizer(vocab=vocab, merges=[], model_max_length=max_length)


def _t5_encoder(vocab_size: int):
    from transformers import T5Config, T5EncoderModel
    return T5EncoderModel(T5Config(vocab_size=vocab_size, d_model=T5_WIDTH, d_ff=37, d_kv=8, num_heads=2,
                                   num_layers=2, decoder_start_token_id=0, pad_token_id=0, eos_token_id=1))


# ---------------------------------------------------------------------------------------------------- Stable Audio
def tiny_stable_audio(seed: int = 0):
    """A tiny ``StableAudioPipeline``: 2-layer DiT (2 heads of 8, 4 latent channels, 64 frames at most), Oobleck
    at 1 kHz mono with 40 samples per frame (25 frames per second: 2.56 s at most), T5 of width 32 (tokens padded
    to 16), duration conditioning 0..32 s, Stable Audio Open's scheduler class and settings."""
    from diffusers import (AutoencoderOobleck, EDMDPMSolverMultistepScheduler, StableAudioDiTModel,
                           StableAudioPipeline, StableAudioProjectionModel)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        tokenizer = t5_tokenizer(max_length=16)
        text_encoder = _t5_encoder(len(tokenizer))
        transformer = StableAudioDiTModel(sample_size=64, in_channels=4, out_channels=4, num_layers=2,
                                          attention_head_dim=8, num_attention_heads=2,
                                          num_key_value_attention_heads=1, cross_attention_dim=16, time_proj_dim=16,
                                          global_states_input_dim=16, cross_attention_input_dim=8)
        projection = StableAudioProjectionModel(text_encoder_dim=T5_WIDTH, conditioning_dim=8, min_value=0,
                                                max_value=32)
        with warnings.catch_warnings():  # diffusers' Oobleck still builds with torch's deprecated weight_norm
            warnings.filterwarnings("ignore", message=".*weight_norm.*", category=FutureWarning)
            vae = AutoencoderOobleck(encoder_hidden_size=4, downsampling_ratios=[4, 10], channel_multiples=[1, 2],
                                     decoder_channels=4, decoder_input_channels=4, audio_channels=1,
                                     sampling_rate=1000)
    scheduler = EDMDPMSolverMultistepScheduler(sigma_min=0.3, sigma_max=500, sigma_data=1.0,
                                               prediction_type="v_prediction", sigma_schedule="exponential")
    return StableAudioPipeline(vae=vae, text_encoder=text_encoder, projection_model=projection, tokenizer=tokenizer,
                               transformer=transformer, scheduler=scheduler)


def save_pipeline(pipeline, path: str | Path) -> Path:
    """`pipeline` saved with ``save_pretrained`` (the format of the Hub's repositories) at `path`."""
    path = Path(path)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning)
        pipeline.save_pretrained(path)
    return path


def save_tiny_stable_audio(path: str | Path, seed: int = 0) -> Path:
    """`tiny_stable_audio` saved at `path`."""
    return save_pipeline(tiny_stable_audio(seed), path)


# ---------------------------------------------------------------------------------------------------- AudioLDM 2
def tiny_audioldm2(seed: int = 0):
    """A tiny ``AudioLDM2Pipeline``: a UNet of three cross-attention levels (strides 1, 2, 4; channels 8-16-16,
    2 heads, cross-attention dims ``[None, 16, 32]``: self, GPT-2, T5), an ``AutoencoderKL`` of scale 2 over 8 mel
    bins (4 latent channels, W = 4 frequency columns), a HiFi-GAN of hop 16 at 800 Hz (50 mel frames per second:
    25 latent rows per second), CLAP's text branch of width 16, T5 of width 32, GPT-2 of width 16 generating 8
    vectors, ``DDIMScheduler`` as diffusers' tests set it (epsilon prediction)."""
    from diffusers import (AudioLDM2Pipeline, AudioLDM2ProjectionModel, AudioLDM2UNet2DConditionModel, AutoencoderKL,
                           DDIMScheduler)
    from transformers import (ClapAudioConfig, ClapConfig, ClapFeatureExtractor, ClapModel, ClapTextConfig,
                              GPT2Config, GPT2LMHeadModel, SpeechT5HifiGan, SpeechT5HifiGanConfig)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        unet = AudioLDM2UNet2DConditionModel(
            block_out_channels=(8, 16, 16), layers_per_block=1, norm_num_groups=4, attention_head_dim=2,
            sample_size=32, in_channels=4, out_channels=4, down_block_types=("CrossAttnDownBlock2D",) * 3,
            up_block_types=("CrossAttnUpBlock2D",) * 3, cross_attention_dim=([None, 16, 32],) * 3)
        vae = AutoencoderKL(block_out_channels=[8, 16], norm_num_groups=4, in_channels=1, out_channels=1,
                            down_block_types=["DownEncoderBlock2D"] * 2, up_block_types=["UpDecoderBlock2D"] * 2,
                            latent_channels=4)
        tokenizer = roberta_tokenizer(max_length=64)
        text_config = ClapTextConfig(bos_token_id=0, eos_token_id=2, pad_token_id=1, hidden_size=16,
                                     intermediate_size=37, num_attention_heads=2, num_hidden_layers=2,
                                     vocab_size=len(tokenizer), projection_dim=16, max_position_embeddings=70)
        audio_config = ClapAudioConfig(spec_size=64, window_size=4, num_mel_bins=64, intermediate_size=37,
                                       depths=[2, 2], num_attention_heads=[2, 2], num_hidden_layers=2,
                                       hidden_size=192, projection_dim=16, patch_size=2, patch_stride=2,
                                       patch_embed_input_channels=4)
        clap = ClapModel(ClapConfig(text_config=text_config, audio_config=audio_config, projection_dim=16))
        tokenizer_2 = t5_tokenizer(max_length=32)
        t5 = _t5_encoder(len(tokenizer_2))
        language_model = GPT2LMHeadModel(GPT2Config(n_embd=16, n_head=2, n_layer=2, vocab_size=64, n_positions=99,
                                                    bos_token_id=0, eos_token_id=0))
        language_model.config.max_new_tokens = 8
        projection = AudioLDM2ProjectionModel(text_encoder_dim=16, text_encoder_1_dim=T5_WIDTH,
                                              langauge_model_dim=16)
        vocoder = SpeechT5HifiGan(SpeechT5HifiGanConfig(
            model_in_dim=8, sampling_rate=800, upsample_initial_channel=16, upsample_rates=[4, 4],
            upsample_kernel_sizes=[8, 8], resblock_kernel_sizes=[3], resblock_dilation_sizes=[[1, 3, 5]],
            normalize_before=False))
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                              set_alpha_to_one=False)
    return AudioLDM2Pipeline(vae=vae, text_encoder=clap, text_encoder_2=t5, projection_model=projection,
                             language_model=language_model, tokenizer=tokenizer, tokenizer_2=tokenizer_2,
                             feature_extractor=ClapFeatureExtractor(), unet=unet, scheduler=scheduler,
                             vocoder=vocoder)


def save_tiny_audioldm2(path: str | Path, seed: int = 0) -> Path:
    """`tiny_audioldm2` saved at `path`."""
    return save_pipeline(tiny_audioldm2(seed), path)


def assert_zero_mask_changes_the_conditional_half_only(tag, generation, prompts: list[str]) -> None:
    """A diffusion family's zero mask removes the text from the conditional rows of every denoiser call while
    CFG's unconditional rows ([uncond; cond], the pipelines' order) stay bitwise the same."""
    from lightning_agx.models import CrossAttentionEdit
    outputs = []
    hook = tag.denoiser.register_forward_hook(lambda m, i, out: outputs.append(out.detach()))
    try:
        tag.generate(prompts, seed=0)
        zero = torch.zeros(len(prompts), generation.num_steps, generation.text.valid.shape[1])
        masked = tag.generate(prompts, seed=0, edit=CrossAttentionEdit(post_softmax=zero))
    finally:
        hook.remove()
    plain, edited = outputs[0], outputs[generation.inference_steps]  # first denoising step of each: the same input
    b = len(prompts)
    assert torch.equal(plain[:b], edited[:b]), "the unconditional half changed"
    assert not torch.allclose(plain[b:], edited[b:]), "the conditional half kept its text"
    assert not torch.allclose(masked.codes, generation.codes)


def loaded_for_tests(load, folder, seconds: float = 1.0, steps: int = 4):
    """A saved tiny pipeline loaded through the real loader `load` (``stable_audio``, ``audioldm2``), set to
    generate `seconds` with `steps` sampling steps (a test's speed)."""
    tag = load(str(folder))
    tag.duration = seconds
    tag.generation_params["num_inference_steps"] = steps
    return tag
