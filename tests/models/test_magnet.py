"""audiocraft's MAGNeT (non-autoregressive, the same cross-attention) behind `TAGModel`: the small embedded
``debug-magnet`` (a `MagnetLMModel` built from audiocraft's classes, 1 s at 25 Hz): what only MAGNeT has (span
trimming, the two span-masked reference passes, its stage attention and sampling settings); a MAGNeT saved in
audiocraft's training-config checkpoint format loads through `load_model(folder)`. What every family shares (the
all-ones identity, batch invariance, every method, explain and evaluate, checkpoints): tests/contract."""
import warnings

import pytest
import torch

from lightning_agx.errors import UserError
from lightning_agx.methods import run_method
from lightning_agx.models import (AudiocraftMagnet, CrossAttentionEdit, available_models, edit_cross_attention,
                                  load_model)
from lightning_agx.models.audiocraft.magnet import stage_attention

from family_fixtures import model_fixtures

TOL = 1e-5
PROMPTS = ["a dog barks loudly near a river", "rain"]  # "rain" is padded by 5 tokens in the batch


magnet, generation = model_fixtures("debug-magnet", PROMPTS, model_fixture="magnet")


def test_listed_and_a_magnet(magnet):
    from audiocraft.models import MAGNeT
    from audiocraft.models.lm_magnet import MagnetLMModel
    assert "debug-magnet" in available_models()
    assert isinstance(magnet, AudiocraftMagnet) and isinstance(magnet.genmodel, MAGNeT)
    assert isinstance(magnet.lm, MagnetLMModel) and not magnet.lm.causal and not magnet.records_self_attention


def test_generation_is_trimmed_to_whole_spans(magnet, generation):
    """MAGNeT's span trimming, and no mask token is left in the codes (shapes and decoding: tests/contract)."""
    frames = int(magnet.duration * magnet.frame_rate)  # 25
    assert magnet.num_steps() == frames - frames % magnet.lm.span_len == 24
    assert generation.codes.shape == (2, magnet.lm.num_codebooks, 24) and generation.num_steps == 24
    assert 0 <= int(generation.codes.min()) and int(generation.codes.max()) < magnet.lm.card


def test_reference_forward_reads_the_generated_audio(magnet, generation):
    """h_t depends on the generated codebook 0 of the other spans (not on the text alone)."""
    codes = generation.codes.clone()
    codes[:, 0, 3:6] = (codes[:, 0, 3:6] + 1) % magnet.lm.card  # span 1: masked in the second pass
    other = magnet.latents(magnet.generation_from_codes(generation.text, codes))
    changed = (other - magnet.latents(generation)).abs().amax(-1)  # [B, T]
    assert changed[:, 0:3].min() > 1e-4  # span 0 (predicted in the first pass) reads span 1
    out = magnet.forward_steps(generation, log_probs=True)
    assert out.log_probs.shape == (2, 1, 24) and (out.log_probs < 0).all()


def test_reference_forward_is_two_edited_passes_of_magnet(magnet, generation):
    """forward_steps == MAGNeT's own forward (stage 0) on the two span-masked inputs under
    `edit_cross_attention`, frame t from the pass where it is masked: latents and log-probabilities."""
    lm, codes = magnet.lm, generation.codes
    first = magnet.first_pass_frames(24)
    mask = torch.rand(2, 24, generation.text.valid.shape[1], generator=torch.Generator().manual_seed(0))
    hidden, logp = [], []
    hook = lm.transformer.register_forward_hook(lambda m, i, out: hidden.append(out))
    try:
        for predicted in (first, ~first):
            sequence = torch.full_like(codes, lm.special_token_id)
            sequence[:, 0] = torch.where(predicted, lm.special_token_id, codes[:, 0])
            with edit_cross_attention(lm, CrossAttentionEdit(post_softmax=mask), streaming=False):
                logits = lm(sequence, [], generation.text.conditions(), stage=0)  # [B, K, T, card]
            logp.append(torch.log_softmax(logits[:, 0], -1).gather(-1, codes[:, 0, :, None])[..., 0])
    finally:
        hook.remove()
    out = magnet.forward_steps(generation, CrossAttentionEdit(post_softmax=mask), log_probs=True)
    assert lm.out_norm is None  # the transformer's output is the final hidden state
    assert (out.latents - torch.where(first[None, :, None], *hidden)).abs().max() < TOL
    assert (out.log_probs[:, 0] - torch.where(first, *logp)).abs().max() < TOL


def test_sampling_parameters_are_magnets(magnet):
    with pytest.raises(UserError, match="cfg_coef.*max_cfg_coef.*accepted: .*decoding_steps") as info:
        magnet.generate(["rain"], seed=0, cfg_coef=3.0)
    assert "\n" not in str(info.value)
    with pytest.raises(UserError, match="one entry per codebook"):
        magnet.generate(["rain"], seed=0, decoding_steps=[2, 2])
    greedy = magnet.generate(["rain"], seed=0, use_sampling=False, decoding_steps=[2, 1, 1, 1])
    assert torch.equal(greedy.codes, magnet.generate(["rain"], seed=1, use_sampling=False,
                                                     decoding_steps=[2, 1, 1, 1]).codes)


def test_stage_attention_is_audiocrafts_masked_attention(magnet):
    """Where audiocraft's own (non-xformers) path can apply the stage mask (a sequence of the mask's padded
    length), `stage_attention` gives the same logits; it also runs any shorter length."""
    lm = magnet.lm
    length = lm.attn_mask_per_stage[1].shape[-1]
    text = magnet.encode_text(["rain"])
    sequence = torch.randint(0, lm.card, (2, lm.num_codebooks, length), generator=torch.Generator().manual_seed(0))
    own = lm(sequence, [], text.conditions(cfg=True), stage=1)
    with stage_attention(lm):
        ours = lm(sequence, [], text.conditions(cfg=True), stage=1)
        lm(sequence[..., :24], [], text.conditions(cfg=True), stage=1)
    assert (own - ours).abs().max() < TOL


def test_chefer_warns_that_it_falls_back(magnet, generation):
    """MAGNeT's self-attention is not recorded: Chefer falls back to R_aa = I, and says so."""
    with pytest.warns(UserWarning, match="^chefer:.*falling back"):
        run_method("chefer", magnet, generation, seed=0)


# ---------------------------------------------------------------------------------------------------- checkpoints
def magnet_lm_config() -> dict:
    """audiocraft's audio-MAGNeT training config (solver/magnet/audio_magnet_16khz.yaml over audiogen_lm), dim 16."""
    from test_checkpoints import lm_config
    cfg = lm_config("audiogen")
    cfg.update(lm_model="transformer_lm_magnet", solver="audio_magnet", masking={"span_len": 3},
               codebooks_pattern={"modeling": "parallel", "parallel": {"empty_initial": 0}})
    cfg["transformer_lm"] = {**cfg["transformer_lm"], "causal": False, "custom": True, "memory_efficient": True,
                             "subcodes_context": 5, "compression_model_framerate": 50, "segment_duration": 0,
                             "span_len": -1}
    return cfg


def test_a_magnet_checkpoint_loads_through_load_model(tmp_path):
    from audiocraft.models import MAGNeT, builders
    from omegaconf import OmegaConf
    from test_checkpoints import compression_config, save_checkpoint  # the LM checkpoints' configs and format
    from lightning_agx.models.audiocraft.checkpoints import COMPRESSION_FILE, LM_FILE
    cfg = magnet_lm_config()
    torch.manual_seed(0)
    building = {**cfg, "device": "cpu", "transformer_lm": {**cfg["transformer_lm"], "segment_duration": 10,
                                                           "span_len": 3}}
    lm_state = builders.get_lm_model(OmegaConf.create(building)).state_dict()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*weight_norm.*deprecated", category=FutureWarning)  # seanet
        codec = builders.get_compression_model(OmegaConf.create({**compression_config("audiogen"), "device": "cpu"}))
    codec_state = codec.state_dict()
    save_checkpoint(tmp_path / LM_FILE, cfg, lm_state, "dictconfig")
    save_checkpoint(tmp_path / COMPRESSION_FILE, compression_config("audiogen"), codec_state, "yaml")
    tag = load_model(str(tmp_path), duration=0.2)  # 10 frames at 50 Hz -> 9 (spans of 3)
    assert isinstance(tag, AudiocraftMagnet) and isinstance(tag.genmodel, MAGNeT) and tag.max_duration == 10
    assert tag.lm.span_len == 3 and tag.lm.attn_mask_per_stage[1].shape[-1] == 504  # 10 s at 50 Hz, aligned
    assert all(torch.equal(tag.lm.state_dict()[k], v) for k, v in lm_state.items())
    gen = tag.generate(["a dog barks", "rain"], seed=0)
    assert gen.codes.shape == (2, 4, 9) and tag.latents(gen).shape == (2, 9, 16)
