"""The ToySounds models: shipped weights load and generate; missing/corrupt weights fail clearly; unknown words warn."""
import json

import pytest
import torch

from lightning_agx.toyworld.load import (ASSETS, BUILD_CMD, WEIGHT_FILES, ToySoundsWeightsError,
                                         load_toysounds)
from lightning_agx.toyworld.models import ToyConfig, build_lm
from lightning_agx.toyworld.synth import EVENTS

shipped = pytest.mark.skipif(
    not all((ASSETS / f).exists() for f in (*WEIGHT_FILES, "config.json")),
    reason=f"ToySounds weights not built yet in {ASSETS}; run `{BUILD_CMD}`")


@pytest.fixture(scope="module")
def toy():
    torch.set_num_threads(1)
    return load_toysounds("cpu")


@shipped
def test_shipped_weights_generate_3s_at_16khz(toy):
    torch.manual_seed(0)
    wav = toy.genmodel.generate(["a loud beep followed by a hiss"])
    assert toy.genmodel.sample_rate == 16000 and toy.genmodel.frame_rate == 25
    assert wav.shape == (1, 1, 48000), "3.0 s mono at 16 kHz"
    assert torch.isfinite(wav).all()
    logits = toy.classifier(wav)
    assert logits.shape == (1, len(EVENTS)) and toy.classifier.labels == list(EVENTS)
    assert hasattr(toy.lm, "out_norm"), "norm_first LM, like audiogen-medium"
    assert toy.lm.condition_provider.conditioners["description"].tokenizer is toy.tokenizer


@shipped
def test_shipped_lm_warns_on_unknown_word_and_still_generates(toy):
    with pytest.warns(UserWarning, match="kazoo"):
        wav = toy.genmodel.generate(["a kazoo"])
    assert wav.shape == (1, 1, 48000)


def _config_dir(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(ToyConfig().to_dict()))
    return tmp_path


@shipped
def test_predict_halves_hears_a_sequence_in_order(toy):
    from lightning_agx.toyworld.dataset import make_split, stack_audio
    from lightning_agx.toyworld.evaluate import predict_halves
    clips = make_split("test", 4, seed=3, kind="sequence")  # real clips: X in [0, 1.4 s), Y in [1.6 s, 3 s)
    first, second = predict_halves(toy.classifier, torch.from_numpy(stack_audio(clips)))
    assert first.shape == second.shape == (4, len(EVENTS))
    for i, clip in enumerate(clips):
        x, y = (EVENTS.index(e) for e in clip.events)
        assert first[i, x] > second[i, x] and second[i, y] > first[i, y], clip.caption


def test_missing_weights_name_the_build_command(tmp_path):
    with pytest.raises(ToySoundsWeightsError, match="python -m lightning_agx.toyworld.build"):
        load_toysounds("cpu", directory=tmp_path)  # no config at all
    with pytest.raises(ToySoundsWeightsError, match="codec.safetensors.*missing.*lightning_agx.toyworld.build"):
        load_toysounds("cpu", directory=_config_dir(tmp_path))


def test_corrupt_weights_name_the_build_command(tmp_path):
    d = _config_dir(tmp_path)
    (d / "codec.safetensors").write_bytes(b"not a safetensors file at all")
    with pytest.raises(ToySoundsWeightsError, match="corrupt.*lightning_agx.toyworld.build"):
        load_toysounds("cpu", directory=d)


def test_lm_tokenizer_unknown_word_warns():
    lm = build_lm(ToyConfig())
    cond = lm.condition_provider.conditioners["description"]
    with pytest.warns(UserWarning, match="didgeridoo"):
        tokens, mask = cond.tokenize(["a didgeridoo then a beep"])
    assert tokens[0, 1].item() == 1 and mask.sum().item() == 5


@pytest.fixture(scope="module")
def diffusion_tag():
    from lightning_agx.models import load_model
    return load_model("toysounds-diffusion")


def test_shipped_diffusion_model_generates_3s_through_diffusers(diffusion_tag):
    from lightning_agx.classifiers import load_classifier
    from lightning_agx.models.diffusers.tag import DiffusersTAG
    tag = diffusion_tag
    assert isinstance(tag, DiffusersTAG) and tag.ground_truth is not None
    assert (tag.frame_rate, tag.sample_rate, tag.num_steps(), tag.dim) == (25.0, 16000, 75, 64)
    generation = tag.generate(["a loud siren", "a knock"], seed=[5, 6])
    again = tag.generate(["a loud siren"], seed=[5])
    assert torch.allclose(generation.codes[:1], again.codes, atol=1e-5)  # its own seed, whatever the batch
    wav = tag.decode(generation.codes)
    assert wav.shape == (2, 1, 48000) and torch.isfinite(wav).all()
    classifier = load_classifier("auto", model_name="toysounds-diffusion")
    probs = torch.sigmoid(classifier.logits(wav.mean(1), tag.sample_rate))
    assert classifier.labels[int(probs[0].argmax())] == "siren"  # a trained model, not a random one


def test_diffusion_model_prompts_are_checked_before_loading():
    from lightning_agx.errors import UserError
    from lightning_agx.models.text_check import check_text_before_loading
    with pytest.raises(UserError, match="more than the model's limit of 32"):
        check_text_before_loading("toysounds-diffusion", [" ".join(["a knock"] * 20)])
