"""`python train.py` / `explain()` end to end on audiocraft's debug LM: outputs, resume, W&B, bad input."""
import json
import warnings
from pathlib import Path

import pytest
import torch

from lightning_agx.api import explain
from lightning_agx.cli import main
from lightning_agx.config import parse
from lightning_agx.errors import UserError
from lightning_agx.explainer import ExplainerConfig
from lightning_agx.explanation import Explanation
from lightning_agx.models import AudiocraftLM

REPO = Path(__file__).resolve().parents[1]
FAST = ExplainerConfig(hidden=16, epochs=3)


def test_train_py_explains_a_prompt_file_end_to_end(tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a dog barks loudly\n\nrain falls\na dog barks loudly\n")  # blank line and duplicate
    out = tmp_path / "run"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        main(["--config", str(REPO / "configs/debug.yaml"), "--prompts.file", str(prompts),
              "--output_dir", str(out), "--explainer.epochs", "3", "--explainer.hidden", "16"])
    messages = [str(w.message) for w in caught]
    assert any("dropped 1 duplicate prompt(s): 'a dog barks loudly'" in m for m in messages), messages
    assert any("dropped 1 empty prompt(s)" in m for m in messages), messages
    folders = sorted(p.name for p in out.iterdir() if p.is_dir() and not p.name.startswith("wandb"))
    assert folders == ["0000_a_dog_barks_loudly", "0001_rain_falls"]
    for name in folders:
        for file in ("explanation.json", "explanation.safetensors", "audio.wav", "heatmap.png", "bars.png"):
            assert (out / name / file).stat().st_size > 0, file
    e = Explanation.load(out / folders[0])
    assert e.mask.shape == (27 + 1, 3) and e.tokens == ["dog", "bark", "loudly"]
    assert ((e.mask > 0) & (e.mask < 1)).all()
    index = json.loads((out / "index.json").read_text())
    assert [item["prompt"] for item in index] == ["a dog barks loudly", "rain falls"]
    offline_runs = list((out / "wandb_logs" / "wandb").glob("offline-run-*"))
    assert offline_runs, "the W&B logger writes an offline run by default"


def test_results_are_reproducible_and_a_rerun_resumes(debug_tag, tmp_path):
    prompts = ["a dog barks", "wind blows", "a bird sings"]
    first = explain(debug_tag, prompts, output_dir=tmp_path / "a", config=FAST, batch_size=2, logger=None)
    again = explain(debug_tag, prompts, output_dir=tmp_path / "b", config=FAST, batch_size=2, logger=None)
    for x, y in zip(first, again):
        assert torch.equal(x.mask, y.mask) and torch.equal(x.codes, y.codes)
    # interrupt: remove one finished prompt, rerun, only that chunk is redone and equals the first run
    stamp = {p.name: (tmp_path / "a" / p.name / "explanation.json").stat().st_mtime_ns
             for p in (tmp_path / "a").iterdir() if p.is_dir() and p.name[0].isdigit()}
    import shutil
    shutil.rmtree(tmp_path / "a" / "0002_a_bird_sings")
    resumed = explain(debug_tag, prompts, output_dir=tmp_path / "a", config=FAST, batch_size=2, logger=None)
    assert torch.equal(resumed[2].mask, first[2].mask)
    for name in ("0000_a_dog_barks", "0001_wind_blows"):
        assert (tmp_path / "a" / name / "explanation.json").stat().st_mtime_ns == stamp[name]


def test_a_batch_of_prompts_of_different_lengths(debug_tag):
    explanations = explain(debug_tag, ["rain", "a dog barks loudly near the old river"], config=FAST, batch_size=2,
                           logger=None, figures=False)
    expected = [debug_tag.token_strings(e.prompt) for e in explanations]
    assert [e.tokens for e in explanations] == expected and len(expected[1]) > 1
    assert [e.mask.shape[1] for e in explanations] == [len(t) for t in expected]  # padding columns dropped


def test_nan_loss_stops_with_a_clear_error_and_no_files(debug_tag, tmp_path, monkeypatch):
    import lightning_agx.explainer as explainer

    real_step = explainer.audiogenx_step

    def nan_step(*args, **kwargs):
        loss, terms, p = real_step(*args, **kwargs)
        return loss * float("nan"), terms, p

    monkeypatch.setattr(explainer, "audiogenx_step", nan_step)  # the one optimisation step both paths run
    with pytest.raises(FloatingPointError, match="loss is nan.*nothing of this chunk was saved"):
        explain(debug_tag, ["a dog barks"], output_dir=tmp_path, config=FAST, logger=None)
    assert not any(p.is_dir() for p in tmp_path.iterdir())


def test_prompt_longer_than_the_text_encoder_limit(debug_tag, monkeypatch):
    monkeypatch.setattr(AudiocraftLM, "max_text_tokens", property(lambda self: 3))
    with pytest.raises(ValueError, match="prompt 1 has 5 text tokens, more than the model's limit of 3"):
        explain(debug_tag, ["fine", "a dog barks loudly near a river"], config=FAST, logger=None)


def test_empty_prompt_and_unwritable_folder(debug_tag, tmp_path):
    with pytest.raises(UserError, match="prompt 0 is empty"):
        explain(debug_tag, ["  "], config=FAST, logger=None)
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(UserError, match="cannot be created or written in.*--output_dir"):
        explain(debug_tag, ["rain"], output_dir=blocker / "out", config=FAST, logger=None)


def test_config_errors_name_the_problem(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("explainer:\n  epochz: 3\n")
    with pytest.raises(SystemExit) as stop:
        main(["--config", str(bad)])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and "epochz" in err and "see --help" in err and len(err.strip().splitlines()) == 1
    for argv, message in ((["--task", "nope"], "unknown task 'nope'; available: "),
                          (["--model.name", "nomodel"], "unknown model 'nomodel'; available")):
        with pytest.raises(SystemExit) as stop:
            main([*argv, "--prompts.texts", "[rain]", "--output_dir", str(tmp_path / "o")])
        err = capsys.readouterr().err
        assert stop.value.code == 2 and message in err and "Traceback" not in err


def test_overrides_beat_the_yaml_and_defaults_are_the_authors():
    run = parse(None, ["--config", str(REPO / "configs/debug.yaml"), "--explainer.epochs", "7"])
    assert run.explainer.epochs == 7 and run.model.name == "debug"
    defaults = ExplainerConfig().for_model("toysounds")
    assert (defaults.beta, defaults.gamma, defaults.lr, defaults.weight_decay, defaults.epochs, defaults.tau) == \
        (1e-3, 1e-1, 1e-3, 1e-3, 50, 1.0)
    assert run.logger["offline"] is True and run.wandb is True  # W&B on, offline unless asked


def test_trainer_and_logger_sections_are_lightnings_own_arguments(tmp_path, capsys):
    from lightning_agx.config import EvaluateRun, ExplainRun
    from lightning_agx.errors import UserError
    from lightning_agx.runner import make_trainer, wandb_logger
    run = parse(None, ["--config", str(REPO / "configs/debug.yaml"), "--trainer.max_steps", "3",
                       "--trainer.accelerator", "cpu", "--logger.name", "mine"])
    assert isinstance(run, ExplainRun) and not isinstance(run, EvaluateRun)
    assert run.trainer["max_steps"] == 3 and run.trainer["accelerator"] == "cpu" and run.logger["name"] == "mine"
    assert "max_time" not in run.trainer, "only what differs from Lightning's defaults is kept"
    trainer = make_trainer(run.trainer, None, tmp_path, [])
    assert trainer.max_steps == 3 and trainer.max_epochs == 1
    with pytest.raises(SystemExit):
        main(["--config", str(REPO / "configs/debug.yaml"), "--trainer.max_stepz", "3"])
    assert "max_stepz" in capsys.readouterr().err
    with pytest.raises(UserError, match="trainer: callbacks is set by lightning_agx itself"):
        make_trainer({"callbacks": []}, None, tmp_path, [])
    with pytest.raises(UserError, match="logger: save_dir is set by lightning_agx itself"):
        wandb_logger({"save_dir": "elsewhere"}, tmp_path)
    evaluate = parse(None, ["--config", str(REPO / "configs/evaluate_debug.yaml")])
    assert isinstance(evaluate, EvaluateRun) and evaluate.evaluation.classifier == "debug"


def test_a_model_carries_its_recommended_explainer_settings():
    """The diffusion toy's beta (1e-2) lives with the model: the API, train.py and the evaluation start from it,
    and a config overrides it."""
    from lightning_agx.models.catalogue import recommended_explainer
    assert recommended_explainer("toysounds-diffusion") == {"beta": 1e-2} and recommended_explainer("toysounds") == {}
    assert ExplainerConfig().for_model("toysounds-diffusion").beta == 1e-2
    assert ExplainerConfig(beta=3e-3).for_model("toysounds-diffusion").beta == 3e-3
    assert ExplainerConfig().for_model("toysounds").beta == 1e-3 and ExplainerConfig().for_model(None).epochs == 50
    run = parse(None, ["--config", str(REPO / "configs/toysounds_diffusion.yaml")])
    assert run.explainer.beta is None  # no YAML repeats the model's beta


@pytest.mark.slow
def test_the_api_and_train_py_explain_the_diffusion_toy_alike(tmp_path):
    """explain("toysounds-diffusion", prompts) equals the same prompts through train.py --config
    configs/toysounds_diffusion.yaml (the API used the LM's beta before)."""
    import torch
    prompts = ["a loud beep followed by a hiss"]
    out = tmp_path / "cli"
    main(["--config", str(REPO / "configs/toysounds_diffusion.yaml"), "--output_dir", str(out), "--prompts.file",
          "null", "--prompts.texts", json.dumps(prompts), "--explainer.epochs", "3", "--wandb", "false",
          "--figures", "false", "--trainer.enable_progress_bar", "false"])
    from lightning_agx.explanation import load_explanations
    [cli] = load_explanations(out)
    [api] = explain("toysounds-diffusion", prompts, config=ExplainerConfig(epochs=3), trainer={"enable_progress_bar": False},
                    logger=None)
    assert cli.metadata["explainer"] == api.metadata["explainer"] and api.metadata["explainer"]["beta"] == 1e-2
    assert torch.equal(cli.codes, api.codes) and torch.equal(cli.mask, api.mask)


def test_sampling_settings_are_one_mapping_checked_against_the_models_keys(debug_tag):
    """--model.generation.KEY VALUE: an LM's top_k, a diffusion model's guidance_scale (ModelConfig knew only the
    LM's before), checked against the model's own keys, recorded in the run identity by them."""
    from lightning_agx.models import load_model
    from lightning_agx.resume import run_identity
    run = parse(None, ["--config", str(REPO / "configs/toysounds_diffusion.yaml"), "--model.generation.guidance_scale",
                       "3", "--model.generation.num_inference_steps", "4"])
    assert run.model.generation == {"guidance_scale": 3, "num_inference_steps": 4}
    lm = parse(None, ["--config", str(REPO / "configs/debug.yaml"), "--model.generation", "{top_k: 5, temp: 0.5}"])
    assert lm.model.generation == {"top_k": 5, "temp": 0.5}
    with pytest.raises(UserError, match="toysounds-diffusion has no sampling setting top_k; its settings: guidance_"):
        parse(None, ["--config", str(REPO / "configs/toysounds_diffusion.yaml"), "--model.generation.top_k", "5"])
    with pytest.raises(UserError, match="debug has no sampling setting guidance_scale"):
        debug_tag.generate(["rain"], seed=[0], guidance_scale=3)
    diffusion = load_model("debug-diffusion")
    identity = run_identity(diffusion, "audiogenx", ExplainerConfig().for_model(diffusion), 0, None,
                            {"guidance_scale": 2.0})
    assert identity["generation"] == {"guidance_scale": 2.0, "num_inference_steps": diffusion.generation_params[
        "num_inference_steps"]}
    assert set(run_identity(debug_tag, "audiogenx", ExplainerConfig().for_model(debug_tag), 0, None, None)[
        "generation"]) == {"use_sampling", "temp", "top_k", "top_p", "cfg_coef"}
