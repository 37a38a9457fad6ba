"""Every explanation method on audiocraft's debug LM: shape, range, padding, determinism, and sanity checks."""
import pytest
import torch

from lightning_agx.explanation import build_explanations
from lightning_agx.methods import METHODS, get_method, run_method
from lightning_agx.methods._common import recorded_layers
from lightning_agx.models import CrossAttentionEdit

FAST = {"audiogenx": {"epochs": 3}, "audiogenx_factual": {"epochs": 3}, "audiogenx_counterfactual": {"epochs": 3}}


@pytest.fixture(scope="module", autouse=True)
def amortized_checkpoint(debug_tag, untrained_amortized):
    FAST["audiogenx_amortized"] = {"checkpoint": untrained_amortized(debug_tag)}  # no shipped one for debug


@pytest.fixture(scope="module")
def outputs(debug_tag, debug_generation):
    return {name: run_method(name, debug_tag, debug_generation, seed=0, **FAST.get(name, {})) for name in METHODS}


@pytest.mark.parametrize("name", sorted(METHODS))
def test_shape_range_padding(name, outputs, debug_generation):
    x = outputs[name]
    gen = debug_generation
    assert x.shape == (2, gen.num_steps, gen.text.valid.shape[1])
    assert torch.isfinite(x).all()
    assert x.min() >= 0 and x.max() <= 1 + 1e-6, "every method ends in [0, 1] (max/min-max scaled or a probability)"
    padding = ~gen.text.valid[:, None, :].expand_as(x)
    assert padding.any(), "the fixture batch has padding ('rain' is shorter)"
    assert (x[padding] == 0).all()
    assert x[1, :, 0].abs().sum() > 0 or name == "atman", "the short prompt's only token gets importance"


@pytest.mark.parametrize("name", sorted(METHODS))
def test_deterministic_with_seed(name, outputs, debug_tag, debug_generation):
    again = run_method(name, debug_tag, debug_generation, seed=0, **FAST.get(name, {}))
    assert torch.allclose(again, outputs[name], atol=1e-6)


def test_seed_changes_random_and_audiogenx(debug_tag, debug_generation, outputs):
    assert not torch.allclose(run_method("random", debug_tag, debug_generation, seed=1), outputs["random"])
    other = run_method("audiogenx", debug_tag, debug_generation, seed=1, epochs=3)
    assert not torch.allclose(other, outputs["audiogenx"])


def test_max_scaled_methods_reach_one(outputs):
    for name in ("gradcam_a", "gradcam_e", "chefer", "attention"):
        top = outputs[name].flatten(1).amax(1)
        assert torch.allclose(top, torch.ones(2)), f"{name} is max-scaled per sequence"


def test_atman_min_max_scaled_over_valid_tokens(outputs, debug_generation):
    x = outputs["atman"][0]  # long prompt: several tokens, a real spread of loss increases
    assert x.max() == pytest.approx(1.0) and x.min() == pytest.approx(0.0)


def test_attention_equals_manual_average_of_recorded_weights(debug_tag, debug_generation, outputs):
    edit = CrossAttentionEdit(record=True)
    debug_tag.forward_steps(debug_generation, edit=edit)
    weights = edit.layer_weights()
    manual = sum(w.mean(1) for w in weights) / len(weights)  # [B, T, N]
    valid = debug_generation.text.valid[:, None, :]
    manual = manual * valid
    manual = manual / manual.flatten(1).amax(1)[:, None, None]
    assert torch.allclose(outputs["attention"], manual, atol=1e-6)
    raw = run_method("attention", debug_tag, debug_generation, scale=False)
    assert (raw.sum(-1) <= 1 + 1e-5).all() and (raw.sum(-1) > 0).all(), \
        "unscaled: softmax weights of the valid tokens, a part of each row's unit mass (padding is attended too)"


def test_atman_without_suppression_is_zero(debug_tag, debug_generation):
    x = run_method("atman", debug_tag, debug_generation, suppression=0.0)
    assert (x == 0).all(), "multiplying the scores by 1 changes nothing, so no token is important"


def test_atman_suppression_changes_loss(debug_tag, debug_generation, outputs):
    assert outputs["atman"][0].std() > 0


def test_gradcam_e_gradients_are_nonzero(debug_tag, debug_generation):
    from lightning_agx.methods.gradcam_e import attention_gradients
    weights, grads = attention_gradients(debug_tag, debug_generation)
    assert len(grads) == debug_tag.output_shape()[0]  # one per codebook
    for g in grads:
        assert g.shape == weights.shape and g.abs().sum() > 0


def test_gradcam_a_nonzero(outputs):
    assert (outputs["gradcam_a"].flatten(1).amax(1) > 0).all()


def test_chefer_with_and_without_self_attention_differ(debug_tag, debug_generation, outputs):
    cross_only = run_method("chefer", debug_tag, debug_generation, self_attention=False)
    assert not torch.allclose(cross_only, outputs["chefer"])


def test_recorded_layers_keep_the_graph(debug_tag, debug_generation):
    edit = CrossAttentionEdit(record=True)
    h = debug_tag.forward_steps(debug_generation, edit=edit, grad=True).latents
    (g,) = torch.autograd.grad(h.sum(), recorded_layers(edit)[0])
    assert g.abs().sum() > 0
    assert not any(p.requires_grad for p in debug_tag.parameters()), "the weights stay frozen"


def test_unknown_method_lists_available():
    with pytest.raises(ValueError, match=r"unknown method 'gradcam'; available: atman, attention, audiogenx"):
        get_method("gradcam")


def test_explanations_drop_padding(debug_tag, debug_generation, outputs):
    expl = build_explanations(debug_tag, debug_generation, outputs["random"], "random", [{"i": 0}, {"i": 1}])
    assert [e.mask.shape[1] for e in expl] == [len(t) for t in debug_generation.text.tokens]
    assert expl[1].mask.shape == (debug_generation.num_steps, 1) and expl[0].method == "random"
    assert [e.metadata["i"] for e in expl] == [0, 1], "one metadata dict per prompt"
    assert [e.metadata["seed"] for e in expl] == debug_generation.seeds
    with pytest.raises(ValueError, match="3 metadata dicts for 2 prompts"):
        build_explanations(debug_tag, debug_generation, outputs["random"], "random", [{}] * 3)


def test_chefer_says_when_it_falls_back_to_the_cross_attention_rule(debug_tag, debug_generation, monkeypatch, outputs):
    import lightning_agx.methods.chefer as chefer
    monkeypatch.setattr(type(debug_tag), "records_self_attention", property(lambda self: False))
    with pytest.warns(UserWarning, match="falling back to the cross-attention rule only"):
        fallback = chefer.chefer(debug_tag, debug_generation)
    assert torch.allclose(fallback, chefer.chefer(debug_tag, debug_generation, self_attention=False))
