"""The diffusion family (`lightning_agx.models.diffusers.tag.DiffusersTAG`) on the tiny random ``debug-diffusion``
model: what only this family has (the mask in diffusers' attention processors, CFG's unconditional half, Stable
Audio's fixed-length text, its schedulers, its sampling settings in a run's identity) and the real models' loading
error offline. What every family shares (the all-ones identity, batch invariance, the reference forward, every
method, explain and evaluate, checkpoints): tests/contract."""
import pytest
import torch

from lightning_agx.errors import ModelLoadError, UserError
from lightning_agx.models import CrossAttentionEdit, load_model
from lightning_agx.models.diffusers.attention import AttentionState, edited_attention
from lightning_agx.models.diffusers.denoiser import StableAudioDenoiser
from lightning_agx.models.diffusers.tag import DiffusersTAG

from family_fixtures import model_fixtures
from tiny_pipelines import assert_zero_mask_changes_the_conditional_half_only

PROMPTS = ["a dog barks loudly near a river", "rain"]  # different lengths: padding in the batch


tag, generation = model_fixtures("debug-diffusion", PROMPTS)


def _inputs(tag, generation):
    """One denoiser call's inputs: the first trajectory point of both prompts, conditional."""
    schedule = tag.schedule(generation.inference_steps)
    x = generation.trajectory[:, 0]
    point = torch.zeros(len(PROMPTS), dtype=torch.long)
    cond = tag.denoiser.conditions(generation.text.embeddings, generation.text.valid, 1.0)
    return schedule.model_input(x, point), schedule.timesteps[point], cond


def test_edited_processor_with_an_all_ones_mask_is_diffusers_own(tag, generation):
    """Our processor against diffusers' StableAudioAttnProcessor2_0 (the identity in generation and in the reference
    forward, within the family's own numerics: tests/contract)."""
    sample, timesteps, cond = _inputs(tag, generation)
    with torch.no_grad():
        original = tag.denoiser(sample, timesteps, cond)  # diffusers' own StableAudioAttnProcessor2_0
        ones = torch.ones(len(PROMPTS), generation.num_steps, generation.text.valid.shape[1])
        state = AttentionState(CrossAttentionEdit(post_softmax=ones), torch.arange(len(PROMPTS)), generation.num_steps,
                               text_keys=ones.shape[-1], query_offset=1)
        with edited_attention(tag.denoiser.transformer, state, tag.denoiser.cross_names):
            edited = tag.denoiser(sample, timesteps, cond)
    # a written-out softmax instead of scaled_dot_product_attention: float rounding only
    torch.testing.assert_close(edited, original, atol=1e-5, rtol=1e-5)


def test_processors_are_restored_after_the_block_and_after_an_error(tag):
    model = tag.denoiser.transformer
    before = dict(model.attn_processors)
    state = AttentionState(CrossAttentionEdit(), torch.arange(1), 25, text_keys=16, query_offset=1)
    with edited_attention(model, state, tag.denoiser.cross_names):
        assert all(type(model.attn_processors[n]).__name__ == "EditedAttnProcessor" for n in tag.denoiser.cross_names)
    assert model.attn_processors == before
    with pytest.raises(RuntimeError, match="boom"):
        with edited_attention(model, state, tag.denoiser.cross_names):
            raise RuntimeError("boom")
    assert model.attn_processors == before, "an error inside the block leaves diffusers' processors in place"


def test_zero_mask_changes_the_conditional_half_only(tag, generation):
    """A zero mask removes the text from the conditional rows; CFG's unconditional rows are untouched."""
    assert_zero_mask_changes_the_conditional_half_only(tag, generation, PROMPTS)


def test_batch_invariance_with_masked_padding_keys(tag):
    """text_length=None: padded to the batch's longest, padding keys get no attention (not Stable Audio's
    fixed-length zero padding): a prompt's audio does not depend on its neighbours' lengths either."""
    masked = DiffusersTAG(StableAudioDenoiser(tag.denoiser.transformer, text_length=None), tag.scheduler, tag.decoder,
                          tag.text_encoder, frame_rate=25.0, sample_rate=16000, duration=1.0,
                          num_inference_steps=4, guidance_scale=3.0)
    both = masked.generate(PROMPTS, seed=[5, 6])
    alone = masked.generate(PROMPTS[1:], seed=[6])
    torch.testing.assert_close(alone.codes[0], both.codes[1], atol=1e-5, rtol=1e-5)


def test_forward_steps_layout(tag, generation):
    """h_t stacks the K trajectory points' 8 channels; the DiT's 2 layers record [rB, K * heads, T, N] cross- and
    [rB, K * heads, T, T] self-attention weights; the least noisy point is the closest to the clean latent
    (shapes, gradients and independent rows in general: tests/contract)."""
    b, t, n = len(PROMPTS), generation.num_steps, generation.text.valid.shape[1]
    k = generation.trajectory.shape[1]
    edit = CrossAttentionEdit(post_softmax=torch.full((2 * b, t, n), 0.5), record=True)
    out = tag.forward_steps(generation, edit, repeats=2, log_probs=True, self_attention=True)
    assert tag.latent_dim == k * 8 and out.log_probs.shape == (2 * b, k, t)
    heads = tag.denoiser.transformer.config.num_attention_heads
    assert [tuple(w.shape) for w in edit.layer_weights()] == [(2 * b, k * heads, t, n)] * 2
    assert [tuple(w.shape) for w in out.self_attention] == [(2 * b, k * heads, t, t)] * 2
    assert out.log_probs[:, -1].mean() > out.log_probs[:, 0].mean()


def test_ddim_scheduler_family(tag):
    """The toy model's scheduler family (DDPM-type, v-prediction) generates and re-explains as the EDM one."""
    from diffusers import DDIMScheduler
    scheduler = DDIMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2",
                              prediction_type="v_prediction", clip_sample=False, set_alpha_to_one=True,
                              timestep_spacing="trailing")
    ddim = DiffusersTAG(tag.denoiser, scheduler, tag.decoder, tag.text_encoder, frame_rate=25.0, sample_rate=16000,
                        duration=1.0, num_inference_steps=5, guidance_scale=3.0)
    gen = ddim.generate(PROMPTS, seed=0)
    rebuilt = ddim.generation_from_codes(PROMPTS, gen.codes, gen.seeds)
    assert torch.equal(ddim.forward_steps(gen).latents, ddim.forward_steps(rebuilt).latents)
    assert torch.isfinite(gen.codes).all()


def test_clear_errors(tag):
    with pytest.raises(UserError, match="has no sampling setting top_k; its settings: guidance_scale, num_inference_steps"):
        tag.generate(PROMPTS, seed=0, top_k=250)
    with pytest.raises(NotImplementedError, match="record it in forward_steps"):
        tag.generate(PROMPTS, seed=0, edit=CrossAttentionEdit(record=True))
    with pytest.raises(UserError, match="longer than the 2 s"):
        tag.generate(PROMPTS, duration=5.0)
    from lightning_agx.methods import run_method
    with pytest.raises(UserError):  # no amortised explainer ships for this model
        run_method("audiogenx_amortized", tag, tag.generate(PROMPTS[:1], seed=0))


def test_stable_audio_denoiser_reads_one_text_stream(tag, generation):
    """A second (unmasked) text stream is AudioLDM 2's; Stable Audio's DiT refuses one rather than drop it."""
    text = generation.text
    with pytest.raises(ValueError, match="reads one text stream"):
        tag.denoiser.conditions(text.embeddings, text.valid, 1.0, extra=torch.zeros(len(PROMPTS), 8, 16))
    assert text.extra is None and text.select([1]).extra is None


@pytest.mark.parametrize("name", ["stabilityai/stable-audio-open-1.0", "cvssp/audioldm2"])
def test_real_model_not_in_the_cache_is_one_line(name, monkeypatch, tmp_path):
    """diffusers' real from_pretrained, local files only (HF_HUB_OFFLINE, set by conftest), on an empty cache."""
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(ModelLoadError) as info:
        load_model(name)
    message = str(info.value)
    assert "\n" not in message and name in message and "Hugging Face cache" in message, message


REAL_AUDIO = {  # each real model's check of its generated 2 s clip and its decoded audio
    "stabilityai/stable-audio-open-1.0": lambda gen, wav: wav.shape[1] == 2,  # stereo
    "cvssp/audioldm2": lambda gen, wav: gen.num_steps == 50 and wav.shape == (1, 1, 32000),  # 25 rows/s, 16 kHz
}


@pytest.mark.real_weights
@pytest.mark.parametrize("name", list(REAL_AUDIO))
def test_real_diffusion_model_explains(name):
    try:
        tag = load_model(name, duration=2.0)
    except ModelLoadError as error:
        pytest.skip(str(error))
    gen = tag.generate(["a dog barks"], seed=0, num_inference_steps=10)
    out = tag.forward_steps(gen, log_probs=True)
    assert out.latents.shape == (1, gen.num_steps, tag.latent_dim) and torch.isfinite(out.latents).all()
    assert REAL_AUDIO[name](gen, tag.decode(gen.codes))


def test_a_rerun_with_another_guidance_scale_is_another_run(tag, tmp_path):
    """The diffusion family's sampling settings are part of a run's identity: results made with another guidance
    scale or number of sampling steps are never reused."""
    from lightning_agx.api import explain
    from lightning_agx.explainer import ExplainerConfig

    def run(**generation):
        return explain(tag, ["rain"], output_dir=tmp_path / "run", config=ExplainerConfig(hidden=16, epochs=1),
                       trainer={"enable_progress_bar": False}, figures=False, save_audio=False,
                       generation=generation or None)
    [e] = run()
    assert e.metadata["run"]["generation"] == tag.generation_params
    with pytest.raises(UserError, match=r"another run \(generation\.guidance_scale: 3\.0 -> 2\.0\)"):
        run(guidance_scale=2.0)
    with pytest.raises(UserError, match=r"generation\.num_inference_steps: \d+ -> 3"):
        run(num_inference_steps=3)
