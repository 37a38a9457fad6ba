"""Bad input stops at the door: one clear line, before any model is loaded or any work is done."""
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lightning_agx import api
from lightning_agx.api import explain
from lightning_agx.cli import main
from lightning_agx.errors import UserError
from lightning_agx.explainer import ExplainerConfig
from lightning_agx.explanation import Explanation
from lightning_agx.figures import heatmap_figure, bars_figure
from lightning_agx.inputs import load_prompts

REPO = Path(__file__).resolve().parents[1]
FAST = ExplainerConfig(hidden=16, epochs=2)


@pytest.fixture
def no_model(monkeypatch):
    """Fail the test if a model gets loaded: the check must come first."""
    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded before the input was checked")
    monkeypatch.setattr(api, "load_model", refuse)
    import lightning_agx.config as config
    monkeypatch.setattr(config.ModelConfig, "load", lambda self: refuse())


def test_one_string_is_not_a_list_of_prompts(debug_tag):
    with pytest.raises(UserError, match="not one string; wrap it: \\[prompt\\]"):
        explain(debug_tag, "a beep", config=FAST, logger=None)


def test_a_prompt_of_symbols_only_is_refused(debug_tag, no_model):
    with pytest.raises(UserError, match="prompt 1 .* has no token the model's text encoder keeps"):
        explain("toysounds", ["a beep", "☃ !!"], config=FAST, logger=None)
    with pytest.raises(UserError, match="prompt 1 .* has no token"):
        explain(debug_tag, ["a dog barks", "!!"], config=FAST, logger=None)


def test_a_toysounds_prompt_over_its_limit_is_refused_before_loading(no_model):
    with pytest.raises(UserError, match="prompt 0 has 2000 text tokens, more than the model's limit of 32"):
        explain("toysounds", [" ".join(["beep"] * 2000)], config=FAST, logger=None)


@pytest.mark.parametrize("content, message", [("", "is empty"), ("\n  \n", "is empty"),
                                              ("# a comment\n# another\n", "only comment lines")])
def test_prompt_files_empty_or_only_comments(tmp_path, content, message):
    path = tmp_path / "prompts.txt"
    path.write_text(content)
    with pytest.raises(UserError, match=message):
        load_prompts(path)
    with pytest.raises(UserError, match="does not exist"):
        load_prompts(tmp_path / "missing.txt")


@pytest.mark.parametrize("argv, message", [
    (["--prompts.batch_size", "0"], "batch size must be an integer >= 1"),
    (["--model.duration", "-1"], "duration must be a positive number of seconds"),
    (["--explainer.epochs", "0"], "explainer.epochs must be a whole number >= 1"),
    (["--prompts.file", "/nonexistent/prompts.txt"], "prompt file /nonexistent/prompts.txt does not exist"),
    (["--prompts.texts", "['☃ !!']"], "has no token the model's text encoder keeps"),
])
def test_user_errors_print_one_line_and_exit_2_before_loading(argv, message, capsys, no_model, tmp_path):
    with pytest.raises(SystemExit) as stop:
        main(["--config", str(REPO / "configs/toysounds.yaml"), "--output_dir", str(tmp_path / "o"), *argv])
    err = capsys.readouterr().err
    assert stop.value.code == 2, err
    line = [x for x in err.splitlines() if x.startswith("train.py: error:")]
    assert len(line) == 1 and message in line[0], err
    assert "Traceback" not in err and not (tmp_path / "o" / "wandb_logs").exists()


def test_debug_shows_the_traceback(no_model, tmp_path):
    with pytest.raises(UserError, match="batch size"):
        main(["--config", str(REPO / "configs/toysounds.yaml"), "--prompts.batch_size", "0", "--debug"])


def test_an_unknown_model_from_the_command_line_is_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "train.py", "--model.name", "nomodel", "--prompts.texts", "[rain]",
                           "--output_dir", str(tmp_path / "o")], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 2 and "unknown model 'nomodel'" in proc.stderr and "Traceback" not in proc.stderr


def test_figures_stay_bounded_for_any_prompt_length():
    tokens = [f"w{i}" for i in range(2000)]
    e = Explanation("x", tokens, torch.rand(10, 2000), frame_rate=25.0, audio=torch.zeros(1, 16000), sample_rate=16000)
    for make in (heatmap_figure, bars_figure):
        fig = make(e)
        width, height = fig.get_size_inches()
        assert width <= 24 and height <= 24
        assert len(fig.axes[-2 if make is heatmap_figure else 0].get_yticks() if make is heatmap_figure else
                   fig.axes[0].get_xticks()) <= 80


@pytest.mark.parametrize("length", [3_000, 100_000])
def test_figures_of_a_very_long_word_stay_small(tmp_path, length):
    """The issue: labels were never shortened and the tight box grew to fit them (a 3,000-character word gave a
    631-megapixel bars.png; 20,000 ended in bad_alloc)."""
    from PIL import Image

    import matplotlib.pyplot as plt
    from lightning_agx.figures import save_figures
    word = "w" * length
    e = Explanation(f"a {word} beep", ["a", word, "beep"], torch.rand(10, 3), frame_rate=25.0,
                    audio=torch.zeros(1, 16000), sample_rate=16000)
    open_before = len(plt.get_fignums())
    for path in save_figures(e, tmp_path):
        with Image.open(path) as image:
            assert image.width * image.height < 3_000_000, (path.name, image.size)
    assert len(plt.get_fignums()) == open_before


def test_a_figure_that_fails_to_draw_is_closed(tmp_path):
    import matplotlib.pyplot as plt
    from lightning_agx.figures import write_figure

    def broken(explanation):
        plt.figure()
        raise RuntimeError("drawing failed")

    open_before = len(plt.get_fignums())
    with pytest.raises(RuntimeError):
        write_figure(broken, None, tmp_path / "x.png")
    assert len(plt.get_fignums()) == open_before


@pytest.mark.parametrize("argv, message", [
    (["--seed", "-1"], "seed must be a whole number from 0 to 4294967295; got -1"),
    (["--seed", "4294967296"], "seed must be a whole number from 0 to 4294967295"),
    (["--method", "nosuch"], "unknown method 'nosuch'; available: atman"),
    (["--explainer.lr", "-0.001"], "explainer.lr must be a finite number > 0"),
    (["--explainer.lr", "nan"], "explainer.lr"),
    (["--explainer.beta", "-1"], "explainer.beta must be a finite number >= 0"),
    (["--model.generation.guidance_scale", "3"], "model debug has no sampling setting guidance_scale; its "
                                                 "settings: use_sampling, temp, top_k, top_p, cfg_coef"),
    (["--model.generation", "[1, 2]"], "model.generation"),
    (["--model.name", "arch:nosuch"], "unknown architecture 'arch:nosuch'"),
    (["--method", "audiogenx_amortized", "--amortized.refine_steps", "-1"], "refine_steps must be a whole number >= 0"),
    (["--nosuch", "1"], "unrecognized arguments: --nosuch 1; see --help"),
    (["--seed", "abc"], "seed"),
])
def test_bad_values_stop_in_one_line_before_anything_is_written(argv, message, capsys, no_model, tmp_path):
    """The issue's cases 5, 9 and 10 (a seed outside numpy's range crashed after run.json was written; an unknown
    method and a negative learning rate were tracebacks after the model loaded)."""
    out = tmp_path / "o"
    with pytest.raises(SystemExit) as stop:
        main(["--config", str(REPO / "configs/debug.yaml"), "--output_dir", str(out), *argv])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and message in err and "Traceback" not in err, err
    assert len([line for line in err.splitlines() if line.strip()]) == 1, err
    assert not out.exists()


@pytest.mark.parametrize("content, message", [
    ("- 1\n- 2\n", "holds a list, not a mapping of options"),
    ("hello\n", "holds a str, not a mapping of options"),
    ("a: [\n", "is not valid YAML (line 2)"),
    ("task: [1, 2]\n", "task must be one of evaluate, explain, train_amortized"),
    ("task: nosuch\n", "unknown task 'nosuch'"),
    ("model:\n  name: [1]\n", "model.name"),
    ("explainer: 3\n", "explainer"),
])
def test_yaml_that_is_not_a_run_is_one_line(tmp_path, capsys, no_model, content, message):
    """The issue's case 8: a list, a scalar, broken syntax, task: [1, 2] were tracebacks."""
    path = tmp_path / "run.yaml"
    path.write_text(content)
    with pytest.raises(SystemExit) as stop:
        main(["--config", str(path), "--output_dir", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("name", ["debug-diffusion", "debug-magnet", "debug"])
@pytest.mark.parametrize("duration", [float("nan"), float("inf"), -1.0, 0.0])
def test_load_model_refuses_a_bad_duration_in_one_line(name, duration):
    """The issue's case 12: load_model(name, duration=nan) was a raw ValueError on the diffusion and MAGNeT models."""
    from lightning_agx.models import load_model
    with pytest.raises(UserError, match="duration must be a positive number of seconds"):
        load_model(name, duration=duration)


def test_load_model_refuses_an_unknown_name_and_seed_in_one_line():
    from lightning_agx.models import load_model
    with pytest.raises(UserError, match="unknown model 'nosuch'"):
        load_model("nosuch")
    with pytest.raises(UserError, match="seed must be a whole number"):
        load_model("debug", seed=-1)


@pytest.mark.parametrize("name, shortest", [("debug", 0.04), ("debug-diffusion", 0.04), ("debug-magnet", 0.12)])
def test_the_duration_edges_each_model_accepts_work_end_to_end(name, shortest):
    """Every duration the checks accept works: the shortest (one frame; a MAGNeT span) and the longest the model
    generates in one pass; just below the shortest is a one-line error before any work."""
    from lightning_agx.models import load_model
    tag = load_model(name)
    config = ExplainerConfig(hidden=8, epochs=1)
    for duration in (shortest, float(tag.max_duration)):
        [e] = explain(tag, ["a dog barks"], duration=duration, config=config, trainer={"enable_progress_bar": False},
                      logger=None, figures=False)
        assert e.mask.shape[0] >= 1 and torch.isfinite(e.mask).all()
    with pytest.raises(UserError, match="shorter than one"):
        explain(tag, ["a dog barks"], duration=shortest - 0.01, config=config, logger=None)
