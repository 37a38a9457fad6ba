"""audiocraft's real architectures with random weights (``arch:``): offline, audiocraft's numbers, seeded, explainable."""
import math

import pytest
import torch

from lightning_agx.api import explain
from lightning_agx.errors import UserError
from lightning_agx.explainer import ExplainerConfig
from lightning_agx.models import available_models, load_model
from lightning_agx.models.audiocraft.architectures import architecture, compression_config, lm_config

QUIET = {"enable_progress_bar": False}
FAST = ExplainerConfig(hidden=16, epochs=3)


@pytest.fixture(scope="module")
def xsmall():
    with pytest.warns(UserWarning, match="RANDOM weights"):
        return load_model("arch:audiogen-xsmall", seed=0)


def test_xsmall_has_audiogens_codec_and_the_xsmall_lm(xsmall):
    # audiocraft's yamls: encodec_large_nq4_s320 (16 kHz, hop 320 -> 50 Hz, 4 x 2048), model_scale/xsmall.yaml
    # (dim 64, 2 heads, 2 layers), audiogen_lm.yaml (delay pattern, pre-norm), text2sound (t5-large: 1024)
    assert (xsmall.sample_rate, xsmall.frame_rate) == (16000, 50.0)
    assert (xsmall.lm.num_codebooks, xsmall.lm.card, xsmall.dim) == (4, 2048, 64)
    assert len(xsmall.lm.transformer.layers) == 2 and xsmall.lm.transformer.layers[0].self_attn.num_heads == 2
    assert xsmall.lm.out_norm is not None  # norm_first
    assert type(xsmall.lm.pattern_provider).__name__ == "DelayedPatternProvider"
    conditioner = xsmall.text_conditioner
    assert conditioner.dim == 1024 and conditioner.output_proj.out_features == 64  # T5-large width -> LM dim
    assert xsmall.num_steps(5.0) == 253  # 250 frames + 3 delays: the paper's ~253 steps for 5 s


def test_the_composed_configs_are_audiocrafts_real_sizes():
    medium = lm_config(architecture("arch:audiogen-medium")).transformer_lm
    assert (medium.dim, medium.num_heads, medium.num_layers, medium.n_q, medium.card) == (1536, 24, 48, 4, 2048)
    small = lm_config(architecture("musicgen-small"))
    assert (small.transformer_lm.dim, small.transformer_lm.num_layers) == (1024, 24)
    assert small.conditioners.description.lut.dim == 768  # t5-base
    music = compression_config(architecture("arch:musicgen-medium"))
    assert music.encodec.sample_rate / math.prod(music.seanet.ratios) == 50  # 32 kHz, hop 640


def test_musicgen_xsmall_runs_at_32_khz():
    with pytest.warns(UserWarning, match="RANDOM weights"):
        tag = load_model("arch:musicgen-xsmall")
    generation = tag.generate(["a calm piano melody"], duration=0.2, seed=0)
    assert generation.codes.shape == (1, 4, 10)
    assert tag.decode(generation.codes).shape == (1, 1, 6400)  # 0.2 s at 32 kHz
    assert generation.text.tokens == [["a", "calm", "piano", "melody"]]  # every word kept, as written


def test_the_same_seed_gives_the_same_weights(xsmall):
    with pytest.warns(UserWarning):
        again = load_model("arch:audiogen-xsmall", seed=0)
        other = load_model("arch:audiogen-xsmall", seed=1)
    assert again.weights_hash == xsmall.weights_hash
    assert other.weights_hash != xsmall.weights_hash


def test_explain_runs_and_says_the_weights_are_random(xsmall):
    prompts = ["a dog barks twice", "rain"]
    first = explain(xsmall, prompts, config=FAST, duration=0.3, batch_size=2, trainer=QUIET, figures=False)
    second = explain(xsmall, prompts, config=FAST, duration=0.3, batch_size=2, trainer=QUIET, figures=False)
    steps = xsmall.num_steps(0.3)  # 15 frames + 3 delays
    assert [e.mask.shape for e in first] == [(steps, 4), (steps, 1)]
    assert all(e.metadata["random_weights"] is True and e.metadata["model"] == "arch:audiogen-xsmall" for e in first)
    for a, b in zip(first, second):  # seeded: the same explanation twice
        assert torch.equal(a.codes, b.codes) and torch.equal(a.mask, b.mask)
    assert not (first[0].mask == first[0].mask[0, 0]).all()  # the optimisation moved the mask


def test_other_models_are_not_marked_random(debug_tag):
    assert debug_tag.random_weights is False


def test_unknown_architecture_is_one_line_listing_them():
    assert "arch:audiogen-medium" in available_models()
    with pytest.raises(UserError, match=r"unknown architecture 'arch:audiogen-huge'; available: arch:audiogen-xsmall, "):
        load_model("arch:audiogen-huge")
