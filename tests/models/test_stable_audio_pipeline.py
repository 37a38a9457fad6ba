"""The real Stable Audio loader (`lightning_agx.models.diffusers.models.stable_audio`) on a tiny
``StableAudioPipeline`` built offline and saved with ``save_pretrained`` (`tiny_pipelines`): diffusers'
``from_pretrained`` code path, generation, decoding and `explain` end to end."""
import pytest
import torch

from lightning_agx.models.diffusers.models import stable_audio

from family_fixtures import pipeline_fixtures
from tiny_pipelines import save_tiny_stable_audio

PROMPTS = ["a dog barks loudly near a river", "rain"]


saved, tag = pipeline_fixtures(save_tiny_stable_audio, stable_audio, "stable-audio")


def test_loads_the_saved_pipeline_through_from_pretrained(tag):
    assert type(tag.denoiser.transformer).__name__ == "StableAudioDiTModel"
    assert type(tag.scheduler).__name__ == "EDMDPMSolverMultistepScheduler"
    assert tag.frame_rate == 25.0 and tag.sample_rate == 1000 and tag.max_duration == pytest.approx(2.56)
    assert tag.denoiser.text_length == 16 and tag.dim == 8
    assert tag.token_strings("a dog barks") == ["\u2581a", "\u2581dog", "\u2581barks", "</s>"]


def test_the_diffusion_loader_knows_a_saved_folder_by_its_pipeline_class(saved):
    from lightning_agx.models import load_model
    from lightning_agx.models.diffusers.models import load_diffusion_model
    tag = load_diffusion_model(str(saved), duration=2.0)
    assert type(tag.denoiser).__name__ == "StableAudioDenoiser" and tag.duration == 2.0
    tag = load_model(str(saved), duration=2.0)  # the registry sends a folder with a model_index.json to diffusers
    assert type(tag.denoiser).__name__ == "StableAudioDenoiser" and tag.duration == 2.0


def test_generates_and_decodes(tag):
    gen = tag.generate(PROMPTS, seed=0)
    assert gen.codes.shape == (2, 4, 25) and torch.isfinite(gen.codes).all()
    assert tag.decode(gen.codes).shape == (2, 1, 1000)
    alone = tag.generate(PROMPTS[1:], seed=gen.seeds[1:])
    torch.testing.assert_close(alone.codes[0], gen.codes[1], atol=1e-5, rtol=1e-5)


def test_explain_end_to_end(tag, tmp_path):
    from lightning_agx.api import explain
    from lightning_agx.explainer import ExplainerConfig
    explanations = explain(tag, PROMPTS, output_dir=tmp_path, config=ExplainerConfig(epochs=2, hidden=16),
                           trainer={"enable_progress_bar": False}, figures=False)
    assert [e.mask.shape for e in explanations] == [(25, 8), (25, 2)]  # T5 tokens with </s>
    assert explanations[0].audio.shape == (1, 1000) and torch.isfinite(explanations[0].mask).all()
