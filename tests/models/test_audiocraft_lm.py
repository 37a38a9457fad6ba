"""Exactness of the model adapter on audiocraft's debug LM (float32): what only the audiocraft LM has (the CFG layout,
the cross-attention edit's arithmetic, self-attention recording, the delay pattern's log-probabilities). What every
family shares (the all-ones identity, batch invariance, shapes, methods, explain, checkpoints): tests/contract."""
import pytest
import torch
from einops import rearrange

from lightning_agx.models import CrossAttentionEdit, cross_attention_modules, edit_cross_attention, load_model

TOL = 1e-5  # float32 round-off of a 2-layer model; a real mistake moves latents by >1e-2


def test_cfg_layout_gives_the_same_conditional_latents(debug_tag, debug_generation):
    plain = debug_tag.latents(debug_generation)
    with_cfg = debug_tag.forward_steps(debug_generation, cfg=True).latents
    assert (plain - with_cfg).abs().max() < TOL


def test_all_ones_mask_under_the_cfg_layout_reproduces_unmasked_latents(debug_tag, debug_generation):
    """Under the CFG layout only the conditional half is edited (without CFG: tests/contract)."""
    gen = debug_generation
    n = gen.text.valid.shape[1]
    masked_cfg = debug_tag.forward_steps(gen, CrossAttentionEdit(post_softmax=torch.ones(2, gen.num_steps, n)),
                                         cfg=True).latents
    assert (debug_tag.latents(gen) - masked_cfg).abs().max() < TOL


def test_zero_mask_on_a_token_removes_exactly_its_attention_contribution(debug_tag):
    """out(ones) - out(mask with token j zeroed) == out_proj.weight @ (w_j * v_j), per head, no renormalisation."""
    module = cross_attention_modules(debug_tag.lm)[0]
    torch.manual_seed(1)
    b, t, n, d = 2, 5, 4, debug_tag.dim
    query, key = torch.randn(b, t, d), torch.randn(b, n, d)
    j = 2
    mask = torch.ones(b, t, n)
    mask[:, :, j] = 0
    original = module(query, key, key)[0]
    with edit_cross_attention(debug_tag.lm, CrossAttentionEdit(record=True)) as record:
        unedited = module(query, key, key)[0]
    with edit_cross_attention(debug_tag.lm, CrossAttentionEdit(post_softmax=mask)):
        removed = module(query, key, key)[0]
    assert (original - unedited).abs().max() < TOL  # our forward is audiocraft's forward
    weights = record.layer_weights()[0]  # [b, h, t, n]
    dim = module.in_proj_weight.shape[0] // 3
    v = torch.nn.functional.linear(key, module.in_proj_weight[2 * dim:], module.in_proj_bias[2 * dim:])
    v = rearrange(v, "b n (h d) -> b h n d", h=module.num_heads)
    contribution = weights[..., j, None] * v[:, :, None, j]  # [b, h, t, d]
    expected = rearrange(contribution, "b h t d -> b t (h d)") @ module.out_proj.weight.T
    assert (original - removed - expected).abs().max() < TOL


def test_edit_is_removed_after_the_context(debug_tag, debug_generation):
    modules = cross_attention_modules(debug_tag.lm)
    with edit_cross_attention(debug_tag.lm, CrossAttentionEdit(record=True)):
        assert all("forward" in vars(m) for m in modules)
    assert not any("forward" in vars(m) for m in modules)
    with pytest.raises(ValueError):
        debug_tag.latents(debug_generation, CrossAttentionEdit(post_softmax=torch.ones(2, 3, 4)))
    assert not any("forward" in vars(m) for m in modules)  # restored even after an error
    with pytest.raises(RuntimeError, match="already edited"):
        with edit_cross_attention(debug_tag.lm):
            debug_tag.latents(debug_generation)


def test_tokens_are_the_whitespace_tokenizers(debug_tag, debug_generation):
    """audiocraft's whitespace tokenizer (stop words dropped, words lemmatised) as the token strings (padding and
    token counts: tests/contract)."""
    text = debug_generation.text
    assert text.tokens == [["dog", "bark", "loudly", "near", "river"], ["rain"]]
    assert text.valid[1].sum() == 1


@pytest.mark.parametrize("prompts, message", [([""], "empty"), (["ok", "   "], "prompt 1 is empty"), ([], "no prompts")])
def test_bad_prompts_are_named(debug_tag, prompts, message):
    with pytest.raises(ValueError, match=message):
        debug_tag.encode_text(prompts)


def test_mask_of_the_wrong_shape_is_named(debug_tag, debug_generation):
    gen = debug_generation
    with pytest.raises(ValueError, match="N=7 text tokens"):
        debug_tag.latents(gen, CrossAttentionEdit(post_softmax=torch.ones(2, gen.num_steps, 7)))
    with pytest.raises(ValueError, match="must be \\[B, T, N\\]"):
        CrossAttentionEdit(post_softmax=torch.ones(gen.num_steps, 3))


def test_unknown_model_lists_the_available_ones():
    with pytest.raises(ValueError, match="available: toysounds, toysounds-diffusion, debug, facebook/audiogen-medium"):
        load_model("audiogen-huge")


def test_missing_real_weights_give_a_clear_error(monkeypatch, tmp_path):
    from lightning_agx.models import ModelLoadError
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    with pytest.raises(ModelLoadError, match="could not load 'facebook/audiogen-medium': its state_dict.bin is not "
                                             "in the Hugging Face cache.*HF_HUB_OFFLINE is set.*HF_HOME.*'toysounds'"):
        load_model("facebook/audiogen-medium")


@pytest.mark.real_weights
def test_real_audiogen_loads_and_explains_shapes():
    pytest.importorskip("audiocraft")
    try:
        tag = load_model("facebook/audiogen-medium", duration=1.0)
    except Exception as error:  # noqa: BLE001
        pytest.skip(f"audiogen-medium weights cannot be downloaded here ({type(error).__name__})")
    gen = tag.generate(["a clock ticktocks with music"], seed=0)
    assert (tag.latents(gen) - gen.latents).abs().max() < 1e-3


def test_self_attention_recording_is_exact_and_restored(debug_tag, debug_generation):
    from lightning_agx.models.audiocraft.self_attention import record_self_attention
    plain = debug_tag.latents(debug_generation)
    with record_self_attention(debug_tag.lm) as records:
        patched = debug_tag.latents(debug_generation)
    assert (plain - patched).abs().max() < 1e-5, "the explicit causal attention reproduces audiocraft's"
    assert len(records) == len(debug_tag.lm.transformer.layers)
    t = debug_generation.num_steps
    assert records[0].shape[-2:] == (t, t)
    assert torch.allclose(records[0].sum(-1), torch.ones(()), atol=1e-5)
    assert records[0][..., 0, 1:].abs().max() == 0, "causal: step 0 sees only itself"
    assert all("forward" not in vars(layer.self_attn) for layer in debug_tag.lm.transformer.layers)
    out = debug_tag.forward_steps(debug_generation, self_attention=True)
    assert len(out.self_attention) == len(records) and torch.allclose(out.self_attention[0], records[0])


def test_log_probs_are_the_generated_tokens_under_the_conditional_heads(debug_tag, debug_generation):
    out = debug_tag.forward_steps(debug_generation, log_probs=True)
    lm, seq = debug_tag.lm, debug_generation.sequence
    k, t = 0, 3  # codebook 0 has a frame at every step after the first
    logits = lm.linears[k](out.latents)[0, t]
    expected = torch.log_softmax(logits, -1)[seq[0, k, t + 1]]
    assert out.log_probs.shape == (2, lm.num_codebooks, debug_generation.num_steps)
    assert torch.allclose(out.log_probs[0, k, t], expected, atol=1e-5)
    special = seq[:, :, 1:] == lm.special_token_id
    assert special.any() and (out.log_probs[special] == 0).all(), "no frame (delay pattern): no score"
