"""transformers' MusicGen family (`lightning_agx.models.transformers.musicgen`) on a tiny random
``MusicgenForConditionalGeneration`` built from transformers' config classes and saved with ``save_pretrained``
(`tiny_musicgen`): loading, the edit in transformers' cross-attention, generation (delay pattern, guidance,
per-prompt seeds), the reference forward, the methods, explain() end to end, and the real model's loading error
offline."""
import sys
import warnings
from pathlib import Path

import pytest
import torch

from lightning_agx.errors import ModelLoadError, UserError
from lightning_agx.models import CrossAttentionEdit, load_model
from lightning_agx.models.registry import check_model_name
from lightning_agx.models.transformers.musicgen import (ATTENTION_NAME, TransformersMusicgen, cross_attention_modules,
                                                        edited_cross_attention, weights_hash)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tiny_musicgen import musicgen_reload, save_tiny_musicgen  # noqa: E402

PROMPTS = ["a dog barks loudly near a river", "rain"]  # different lengths: "rain" is padded in the batch
TOL = 1e-5  # float32 rounding of a 2-layer model (cached one-step attention vs one pass, batched T5)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return save_tiny_musicgen(tmp_path_factory.mktemp("musicgen") / "tiny")


@pytest.fixture(scope="module")
def tag(folder):
    return load_model(str(folder), duration=0.4)  # 20 frames: T = 20 + 4 - 1 = 23 steps


@pytest.fixture(scope="module")
def generation(tag):
    return tag.generate(PROMPTS, seed=0)


def _mask(generation, value, rows=None):
    return torch.full((rows or len(generation.text), generation.num_steps, generation.text.valid.shape[1]),
                      float(value))


def _reference(tag, generation):
    """transformers' own decoder (its sdpa cross-attention, no edit) over the same delayed sequence."""
    states, mask = tag._conditions(generation.text)
    with torch.no_grad():
        return tag.decoder.model.decoder(input_ids=generation.sequence[..., :-1].reshape(-1, generation.num_steps),
                                         encoder_hidden_states=states, encoder_attention_mask=mask,
                                         use_cache=False).last_hidden_state


# ---------------------------------------------------------------------------------------------------- loading
def test_a_save_pretrained_folder_loads_from_its_safetensors(tag, folder):
    assert isinstance(tag, TransformersMusicgen) and not tag.training and not tag.model.training
    assert tag.weights_hash == weights_hash(folder) and len(tag.weights_hash) == 64
    assert (tag.num_codebooks, tag.delays, tag.frame_rate, tag.sample_rate, tag.dim) == (4, 4, 50.0, 2000, 16)
    assert tag.num_steps() == 23 and tag.output_shape() == (4, 20) and tag.max_duration == pytest.approx(1.92)
    assert tag.generation_params == {"use_sampling": True, "temp": 1.0, "top_k": 8, "top_p": 0.0,
                                     "guidance_scale": 3.0}
    prefixed = load_model(f"transformers:{folder}", duration=0.4)
    assert isinstance(prefixed, TransformersMusicgen) and prefixed.weights_hash == tag.weights_hash
    assert all(not p.requires_grad for p in tag.parameters())


def test_names_are_routed_without_ambiguity():
    assert check_model_name("transformers:facebook/musicgen-small") == "transformers:facebook/musicgen-small"
    assert check_model_name("facebook/musicgen-small") == "facebook/musicgen-small"  # still audiocraft's
    with pytest.raises(UserError):
        check_model_name("transformers:")


def test_the_real_model_not_in_the_cache_is_one_line(monkeypatch, tmp_path):
    """``transformers:facebook/musicgen-small`` offline (HF_HUB_OFFLINE, set by conftest) on an empty cache."""
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(ModelLoadError) as info:
        load_model("transformers:facebook/musicgen-small")
    message = str(info.value)
    assert "\n" not in message and "facebook/musicgen-small" in message and "Hugging Face cache" in message, message


def test_a_folder_without_safetensors_is_one_line(folder, tmp_path):
    broken = tmp_path / "pickles"
    broken.mkdir()
    (broken / "config.json").write_text((folder / "config.json").read_text())
    with pytest.raises(ModelLoadError, match="no safetensors weights") as info:
        load_model(f"transformers:{broken}")
    assert "\n" not in str(info.value)


def test_the_checkpoint_round_trip_keeps_the_weights_and_the_audio(tag, generation, tmp_path):
    again = musicgen_reload(tag, tmp_path / "saved")
    assert again.weights_hash == tag.weights_hash, "save_pretrained of the same weights: the same safetensors"
    assert torch.equal(again.generate(PROMPTS, seed=0).codes, generation.codes)


# ---------------------------------------------------------------------------------------------------- the edit
def test_the_edited_attention_is_transformers_attention(tag, generation):
    """Our explicit softmax in transformers' attention interface reproduces transformers' own cross-attention;
    only the cross-attention is switched, and only inside the block."""
    plain = tag.forward_steps(generation)
    torch.testing.assert_close(plain.latents, _reference(tag, generation)[:len(PROMPTS)], atol=TOL, rtol=TOL)
    shared = tag.decoder.config
    modules = cross_attention_modules(tag.decoder)
    with edited_cross_attention(tag.decoder, None, generation.text.valid):
        assert all(m.config._attn_implementation == ATTENTION_NAME for m in modules)
        assert all(layer.self_attn.config is shared for layer in tag.decoder.model.decoder.layers)
        assert shared._attn_implementation != ATTENTION_NAME, "self-attention and the masks keep transformers'"
        with pytest.raises(RuntimeError, match="already edited"):
            with edited_cross_attention(tag.decoder, None, generation.text.valid):
                pass
    assert all(m.config is shared for m in modules)
    with pytest.raises(ValueError):  # an error inside the block restores transformers' attention too
        tag.forward_steps(generation, CrossAttentionEdit(post_softmax=_mask(generation, 1)[:, :3]))
    assert all(m.config is shared for m in modules) and tag.forward_steps(generation).latents.equal(plain.latents)


def test_generation_is_transformers_generate(tag):
    """Greedy decoding: our loop (delay pattern, guidance, cache) and transformers' ``generate`` give the same
    codes, hence the same audio."""
    ours = tag.generate(PROMPTS, seed=0, use_sampling=False)
    inputs = tag.tokenizer(PROMPTS, padding="longest", return_tensors="pt")
    with torch.no_grad():
        audio = tag.model.generate(**inputs, do_sample=False, guidance_scale=3.0, max_length=ours.sequence.shape[-1])
    torch.testing.assert_close(tag.decode(ours.codes), audio, atol=1e-6, rtol=0)


def test_all_ones_mask_is_the_identity(tag, generation):
    ones = CrossAttentionEdit(post_softmax=_mask(generation, 1))
    assert torch.equal(tag.generate(PROMPTS, seed=0, edit=ones).codes, generation.codes)
    plain = tag.forward_steps(generation, log_probs=True)
    masked = tag.forward_steps(generation, CrossAttentionEdit(post_softmax=_mask(generation, 1)), log_probs=True)
    assert torch.equal(masked.latents, plain.latents) and torch.equal(masked.log_probs, plain.log_probs)
    pre = tag.forward_steps(generation, CrossAttentionEdit(pre_softmax=_mask(generation, 1)))
    assert torch.equal(pre.latents, plain.latents)
    cfg = tag.forward_steps(generation, CrossAttentionEdit(post_softmax=_mask(generation, 1)), cfg=True)
    assert torch.equal(cfg.latents, plain.latents), "the unconditional rows change nothing of the conditional ones"


def test_a_zero_mask_edits_the_conditional_rows_only(tag, generation):
    b = len(PROMPTS)
    zeros = _mask(generation, 0)
    assert (tag.forward_steps(generation, CrossAttentionEdit(post_softmax=zeros)).latents
            - tag.forward_steps(generation).latents).abs().max() > 1e-3
    plain, edited = CrossAttentionEdit(record=True), CrossAttentionEdit(post_softmax=zeros, record=True)
    silenced = tag.generate(PROMPTS, seed=0, edit=edited)
    tag.generate(PROMPTS, seed=0, edit=plain)
    assert not torch.equal(silenced.codes, generation.codes)
    first, again = plain.weights[0][0], edited.weights[0][0]  # layer 0 at step 0 (the same input): [2B, h, 1, N]
    assert first.shape[0] == 2 * b and bool((again[:b] == 0).all())
    assert torch.equal(again[b:], first[b:]), "the unconditional half is untouched"
    w = plain.layer_weights()[0]  # [2B, heads, T, N], steps concatenated
    assert w.shape[2] == generation.num_steps
    assert bool((w[:b][~generation.text.valid[:, None, None, :].expand_as(w[:b])] == 0).all()), "padding: no weight"


def test_masks_of_the_wrong_shape_and_bad_settings_are_refused(tag, generation):
    for mask in (_mask(generation, 1)[:, :-1], torch.ones(2, generation.num_steps + 2, 3),
                 torch.ones(2, generation.num_steps, generation.text.valid.shape[1] + 1)):
        with pytest.raises(ValueError):
            tag.forward_steps(generation, CrossAttentionEdit(post_softmax=mask))
        with pytest.raises(ValueError):
            tag.generate(PROMPTS, seed=0, edit=CrossAttentionEdit(post_softmax=mask))
    with pytest.raises(UserError, match="no sampling setting cfg_coef.*guidance_scale"):
        tag.generate(PROMPTS, seed=0, cfg_coef=3.0)
    with pytest.raises(UserError, match="longer than the 1.92 s"):
        tag.generate(PROMPTS, duration=5.0)
    with pytest.raises(NotImplementedError):
        tag.forward_steps(generation, self_attention=True)


# ---------------------------------------------------------------------------------------------------- generation
def test_generation_shapes_delay_pattern_and_decoding(tag, generation):
    b, k, frames = generation.codes.shape
    assert (b, k, frames) == (2, 4, 20) and generation.num_steps == 23 and generation.sequence.shape == (2, 4, 24)
    seq = generation.sequence
    for codebook in range(k):  # codebook k delayed by k; the pad/start token where it has no frame
        assert torch.equal(seq[:, codebook, codebook + 1:codebook + 1 + frames], generation.codes[:, codebook])
        assert bool((seq[:, codebook, :codebook + 1] == tag.pad_token).all())
        assert bool((seq[:, codebook, codebook + 1 + frames:] == tag.pad_token).all())
    assert generation.latents.shape == (2, 23, tag.dim)
    wav = tag.decode(generation.codes)
    assert wav.shape == (2, 1, int(0.4 * tag.sample_rate)) and bool(torch.isfinite(wav).all())


def test_per_prompt_seeds_and_batch_invariance(tag, generation):
    state = torch.random.get_rng_state()
    assert torch.equal(tag.generate(PROMPTS, seed=0).codes, generation.codes), "same seed, same audio"
    assert torch.equal(torch.random.get_rng_state(), state), "the caller's random state is untouched"
    assert not torch.equal(tag.generate(PROMPTS, seed=1).codes, generation.codes)
    alone = tag.generate(PROMPTS[1:], seed=generation.seeds[1:])  # "rain" without its longer neighbour
    n = len(generation.text.tokens[1])
    assert alone.text.tokens[0] == generation.text.tokens[1] == ["rain", "</s>"]
    torch.testing.assert_close(alone.text.embeddings[0, :n], generation.text.embeddings[1, :n], atol=TOL, rtol=TOL)
    assert torch.equal(alone.codes[0], generation.codes[1])
    torch.testing.assert_close(alone.latents[0], generation.latents[1], atol=TOL, rtol=TOL)
    torch.testing.assert_close(tag.forward_steps(alone).latents[0], tag.forward_steps(generation).latents[1],
                               atol=TOL, rtol=TOL)


def test_a_stereo_model_generates_two_channels(tmp_path):
    stereo = load_model(str(save_tiny_musicgen(tmp_path / "stereo", stereo=True)), duration=0.2)
    gen = stereo.generate(["rain"], seed=0)
    assert stereo.delays == 4 and gen.codes.shape == (1, 8, 10) and gen.num_steps == 10 + 4 - 1
    pads = gen.sequence == stereo.pad_token  # [1, 8, 14]
    assert torch.equal(pads[:, 0], pads[:, 1]) and not torch.equal(pads[:, 0], pads[:, 2]), \
        "left and right codebooks interleaved, each pair with one delay"
    assert stereo.decode(gen.codes).shape == (1, 2, 400)


# ---------------------------------------------------------------------------------------------------- reference forward
def test_the_reference_forward(tag, generation):
    b, t, n = len(PROMPTS), generation.num_steps, generation.text.valid.shape[1]
    torch.testing.assert_close(tag.forward_steps(generation).latents, generation.latents, atol=TOL, rtol=TOL)
    mask = torch.full((2 * b, t, n), 0.5, requires_grad=True)
    edit = CrossAttentionEdit(post_softmax=mask, record=True)
    out = tag.forward_steps(generation, edit, repeats=2, log_probs=True, grad=True)
    assert out.latents.shape == (2 * b, t, tag.latent_dim) and out.log_probs.shape == (2 * b, 4, t)
    assert bool((out.log_probs <= 0).all()) and torch.equal(out.latents[:b], out.latents[b:])
    no_frame = generation.sequence[:, :, 1:] == tag.pad_token
    assert no_frame.any() and bool((out.log_probs[:b][no_frame] == 0).all()), "no frame (delay pattern): no score"
    logits = tag.decoder.lm_heads[2](out.latents[0, 5])
    expected = torch.log_softmax(logits, -1)[generation.sequence[0, 2, 6]]
    torch.testing.assert_close(out.log_probs[0, 2, 5], expected)
    assert [tuple(w.shape) for w in edit.layer_weights()] == [(2 * b, 2, t, n)] * 2
    (grad,) = torch.autograd.grad(out.latents.pow(2).sum() + out.log_probs.sum(), mask)
    for i in range(b):
        assert grad[i][:, generation.text.valid[i]].abs().sum() > 0
    assert all(p.grad is None for p in tag.parameters())


def test_generation_from_codes_reproduces_the_reference_forward(tag, generation):
    rebuilt = tag.generation_from_codes(PROMPTS, generation.codes.cpu(), generation.seeds)
    assert torch.equal(rebuilt.sequence, generation.sequence) and rebuilt.num_steps == generation.num_steps
    first, second = tag.forward_steps(generation, log_probs=True), tag.forward_steps(rebuilt, log_probs=True)
    assert torch.equal(first.latents, second.latents) and torch.equal(first.log_probs, second.log_probs)


def test_randomization_cascade(tag):
    steps = tag.randomization_cascade()
    assert [name for name, _ in steps] == ["layer 1", "layer 0", "embeddings+heads+text"]
    owned = {id(m) for m in tag.modules()}
    assert all(id(m) in owned for _, modules in steps for m in modules)


# ---------------------------------------------------------------------------------------------------- methods, explain
@pytest.mark.parametrize("method", ["random", "attention", "atman", "gradcam_a", "gradcam_e", "chefer",
                                    "audiogenx_amortized"])
def test_every_baseline_method_runs(tag, generation, method, tmp_path):
    from lightning_agx.methods import run_method
    options = {"checkpoint": _untrained_amortized(tag, tmp_path)} if method == "audiogenx_amortized" else {}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="chefer: the self-attention")  # not recorded: R_aa = I
        importance = run_method(method, tag, generation, seed=generation.seeds, **options)
    assert importance.shape == (len(PROMPTS), generation.num_steps, generation.text.valid.shape[1])
    assert bool(torch.isfinite(importance).all())
    assert bool((importance[1, :, len(generation.text.tokens[1]):] == 0).all()), "padding gets no importance"
    assert importance[0].abs().sum() > 0 and importance[1].abs().sum() > 0


def _untrained_amortized(tag, folder: Path) -> str:
    """conftest's `untrained_amortized` (the amortised network at its seeded initialisation), in `folder`: this
    model's name is a folder path, which tmp_path_factory cannot name a folder after."""
    from lightning_agx.amortized import AmortizedExplainer, save_explainer
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        explainer = AmortizedExplainer(tag.dim, hidden=16, latent_dim=tag.latent_dim)
    return str(save_explainer(explainer, folder / "init", tag))


def test_explain_end_to_end(tag, generation, tmp_path):
    from lightning_agx.api import explain
    from lightning_agx.explainer import ExplainerConfig
    explanations = explain(tag, PROMPTS, output_dir=tmp_path, config=ExplainerConfig(epochs=2, hidden=8),
                           trainer={"enable_progress_bar": False}, figures=False)
    assert [tuple(e.mask.shape) for e in explanations] == [(23, 8), (23, 2)]
    for i, e in enumerate(explanations):
        assert e.tokens == generation.text.tokens[i] and e.frame_rate == 50.0
        assert torch.equal(e.codes, generation.codes[i].cpu()), "explain's audio is generate's, same seed"
        assert bool(torch.isfinite(e.mask).all()) and 0 < float(e.mask.min()) and float(e.mask.max()) < 1
        assert e.audio.shape == (1, 800)
    assert explanations[0].metadata["run"]["weights"] == tag.weights_hash

