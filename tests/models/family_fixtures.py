"""The module fixtures the family test files share: a model (loaded once per file) and its generation of the
file's prompts, or a tiny pipeline saved in its real format and loaded through its real loader."""
from __future__ import annotations

import pytest


def model_fixtures(name: str, prompts: list[str], model_fixture: str = "tag"):
    """``(model, generation)`` module fixtures: `load_model(name, seed=0)` under the name `model_fixture`, and its
    generation of `prompts` with seed 0 (``generation``)."""
    from lightning_agx.models import load_model

    @pytest.fixture(scope="module", name=model_fixture)
    def model():
        return load_model(name, seed=0)

    @pytest.fixture(scope="module", name="generation")
    def generation(request):
        return request.getfixturevalue(model_fixture).generate(prompts, seed=0)
    return model, generation


def pipeline_fixtures(save, load, folder: str, seconds: float = 1.0, steps: int = 4):
    """``(saved, tag)`` module fixtures: a tiny pipeline saved by `save` into a temporary `folder`, and it loaded
    through the real loader `load`, generating `seconds` with `steps` sampling steps (a test's speed)."""
    from tiny_pipelines import loaded_for_tests

    @pytest.fixture(scope="module", name="saved")
    def saved(tmp_path_factory):
        return save(tmp_path_factory.mktemp(folder) / "tiny")

    @pytest.fixture(scope="module", name="tag")
    def tag(saved):
        return loaded_for_tests(load, saved, seconds, steps)
    return saved, tag
