"""A method's options are checked where the method declares them, before any model loads (API, CLI, evaluation)."""
import math

import pytest

from lightning_agx import api
from lightning_agx.api import explain
from lightning_agx.config import EvaluationConfig
from lightning_agx.errors import UserError
from lightning_agx.explainer import ExplainerConfig
from lightning_agx.methods import available_methods, check_method_options, options_class


@pytest.fixture
def no_model(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded before the options were checked")
    monkeypatch.setattr(api, "load_model", refuse)


@pytest.mark.parametrize("options, message", [
    ({"refine_steps": 2.5}, "refine_steps must be a whole number >= 0"),
    ({"refine_steps": "abc"}, "refine_steps must be a whole number >= 0"),
    ({"refine_steps": math.nan}, "refine_steps must be a whole number >= 0"),
    ({"refine_steps": -1}, "refine_steps must be a whole number >= 0"),
    ({"refine_lr": 0}, "refine_lr must be a finite number > 0"),
    ({"refine_lr": math.nan}, "refine_lr must be a finite number > 0"),
    ({"refine_stepz": 3}, "method 'audiogenx_amortized' has no option refine_stepz; its options: checkpoint, "
                          "refine_steps, refine_lr, config"),
])
def test_amortised_options_are_refused_before_the_model_loads(no_model, options, message):
    """The issue: these failed raw after the Trainer started, or (-1, 0) were accepted silently."""
    with pytest.raises(UserError, match=message):
        explain("toysounds", ["a beep"], method="audiogenx_amortized", method_options=options)


@pytest.mark.parametrize("method, options, message", [
    ("atman", {"suppression": 1.5}, "atman option suppression must be a finite number >= 0 and <= 1"),
    ("atman", {"chunk": 0}, "atman option chunk must be a whole number >= 1"),
    ("attention", {"scale": "yes"}, "attention option scale must be true or false"),
    ("chefer", {"self_attention": 1}, "chefer option self_attention must be true or false"),
    ("random", {"anything": 1}, "method 'random' has no option anything; its options: none"),
    ("audiogenx", {"epochs": 0}, "explainer.epochs must be a whole number >= 1"),
    ("audiogenx", {"objective": "factual"}, "has no option objective"),
    ("audiogenx", {"config": {"epochz": 3}}, "config of method 'audiogenx' has no field epochz"),
    ("nosuch", {}, "unknown method 'nosuch'; available: atman"),
])
def test_every_methods_options_are_its_own(no_model, method, options, message):
    with pytest.raises(UserError, match=message):
        explain("toysounds", ["a beep"], method=method, method_options=options)


def test_every_method_declares_its_options():
    for name in available_methods():
        assert check_method_options(name, {}) == {}
        options_class(name)()  # its defaults are valid


def test_per_prompt_audiogenx_takes_the_explainer_fields_as_options(debug_tag):
    [e] = explain(debug_tag, ["rain"], method_options={"epochs": 2, "hidden": 8}, trainer={"enable_progress_bar": False},
                  logger=None)
    assert e.metadata["explainer"]["epochs"] == 2 and e.metadata["explainer"]["hidden"] == 8


@pytest.mark.parametrize("refine_steps", [0, 1])
def test_the_edges_of_the_accepted_refinement_work_end_to_end(debug_tag, tmp_path, refine_steps):
    """0 and 1 refinement steps, the smallest learning rate a float holds: accepted values work."""
    from lightning_agx.amortized.store import save_explainer
    from lightning_agx.amortized.network import AmortizedExplainer
    import torch
    torch.manual_seed(0)
    path = save_explainer(AmortizedExplainer(debug_tag.dim, hidden=8, latent_dim=debug_tag.latent_dim),
                          tmp_path / "a.safetensors", debug_tag)
    [e] = explain(debug_tag, ["rain"], method="audiogenx_amortized", config=ExplainerConfig(hidden=8, epochs=2),
                  method_options={"checkpoint": str(path), "refine_steps": refine_steps, "refine_lr": 5e-324},
                  trainer={"enable_progress_bar": False}, logger=None)
    assert torch.isfinite(e.mask).all() and e.mask.shape[1] == 1


def test_the_evaluation_checks_its_rows_options_when_its_config_is_made():
    with pytest.raises(UserError, match="atman option chunk must be a whole number >= 1"):
        EvaluationConfig(methods=["atman"], method_options={"atman": {"chunk": -3}})
    with pytest.raises(UserError, match="has no option refine_stepz"):
        EvaluationConfig(methods=["r5"], method_options={"r5": {"method": "audiogenx_amortized", "refine_stepz": 5}})
    with pytest.raises(UserError, match="names gradcam, not in evaluation.methods"):
        EvaluationConfig(methods=["atman"], method_options={"gradcam": {}})
