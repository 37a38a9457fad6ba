"""An analysis refuses a user's mistake in one line (exit 2) before any model loads or any file is written.

Each analysis config checks its own fields (`analysis.common.Common.__post_init__` the shared ones, each
subclass its extra ones); the prompts file and the saved explanations are read before the model loads and the
output folder is created after it. Run in-process through each module's ``main`` (`lightning_agx.door`);
`tests/test_entry_points.py` runs every entry point as a subprocess.
"""
from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from lightning_agx.errors import UserError

REPO = Path(__file__).resolve().parents[2]
SANITY = ["--config", str(REPO / "configs/analysis_sanity.yaml")]
DEBUG = ["--model.name", "debug"]


@pytest.fixture
def no_model(monkeypatch):
    """Fail the test if a model or a classifier gets loaded: the check must come first."""
    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded before the input was checked")
    import lightning_agx.config as config
    monkeypatch.setattr(config.ModelConfig, "load", lambda self: refuse())
    for name in ("difference", "editing", "negation"):
        monkeypatch.setattr(importlib.import_module(f"analysis.{name}"), "load_classifier", refuse)


def refused(module: str, argv: list[str], capsys, out: Path) -> str:
    """The one stderr line of ``python -m analysis.<module> ARGV --output_dir OUT`` (exit 2, OUT not made)."""
    main = importlib.import_module(f"analysis.{module}").main
    with pytest.raises(SystemExit) as stop:
        main([*argv, "--output_dir", str(out)] if "--output_dir" not in argv else argv)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert stop.value.code == 2, err
    assert len(lines) == 1 and "error:" in lines[0] and "Traceback" not in err, err
    if "--output_dir" not in argv:
        assert not out.exists(), "the output folder was created before the error"
    return lines[0]


@pytest.mark.parametrize("module, argv, message", [
    # the five of issue 29, on the sanity check's own YAML
    ("sanity", [*SANITY, "--model.name", "nosuch"], "unknown model 'nosuch'"),
    ("sanity", [*SANITY, "--prompts_file", "/nope.txt"], "prompt file /nope.txt does not exist"),
    ("sanity", [*SANITY, "--method", "nosuch"], "unknown method 'nosuch'"),
    ("sanity", [*SANITY, "--explanations", "/nonexistent/run"], "--explanations /nonexistent/run is not a folder"),
    # Common's fields, on every analysis
    ("sanity", [*DEBUG, "--threads", "0"], "threads must be a whole number >= 1"),
    ("difference", [*DEBUG, "--batch_size", "0"], "batch size must be an integer >= 1"),
    ("editing", [*DEBUG, "--seed", "-1"], "seed must be a whole number from 0"),
    ("negation", [*DEBUG, "--classifier", "nosuch"], "classifier must be one of auto"),
    ("report", [*DEBUG, "--method", "nosuch"], "unknown method 'nosuch'"),
    ("token_ranking", [*DEBUG, "--model.name", "nosuch"], "unknown model 'nosuch'"),
    # each analysis' own fields
    ("sanity", [*DEBUG, "--methods", "[audiogenx, nosuch]"], "unknown method 'nosuch'"),
    ("sanity", [*DEBUG, "--reinit", "zeros"], "reinit must be one of init, normal"),
    ("sanity", [*DEBUG, "--num_prompts", "0"], "num_prompts must be a whole number >= 1"),
    ("difference", [*DEBUG, "--threshold", "-0.1"], "threshold must be a finite number >= 0"),
    ("difference", [*DEBUG, "--present", "2"], "present must be a finite number >= 0 and <= 1"),
    ("editing", [*DEBUG, "--mode", "magic"], "mode must be one of auto, manual"),
    ("editing", [*DEBUG, "--value", "1.5"], "value must be a finite number >= 0 and <= 1"),
    ("editing", [*DEBUG, "--split", "dev"], "split must be one of train, val, test"),
    ("editing", [*DEBUG, "--max_cases", "1"], "max_cases must be a whole number >= 2"),
    ("editing", [*DEBUG, "--interval", "half"], "interval must be one of event, all"),
    ("editing", [*DEBUG, "--samples", "0"], "samples must be a whole number >= 1"),
    ("editing", [*DEBUG, "--start", "2", "--end", "1"], "end (1.0 s) must be after start (2.0 s)"),
    ("editing", [*DEBUG, "--mode", "manual", "--prompts", "[a beep]"], "manual editing needs --tokens"),
    ("editing", [*DEBUG, "--mode", "manual", "--tokens", "[beep]"], "manual editing needs prompts"),
    ("negation", [*DEBUG, "--pairs", "[[beep]]"], "each of pairs must be two sound words"),
    ("negation", [*DEBUG, "--samples", "0"], "samples must be a whole number >= 1"),
    ("report", [*DEBUG, "--analyses", "[sanity, nosuch]"], "each of analyses must be one of token_ranking"),
    ("report", [*DEBUG, "--num_prompts", "0"], "num_prompts must be a whole number >= 1"),
    ("token_ranking", [*DEBUG, "--merge", "median"], "merge must be one of max, mean"),
    ("token_ranking", [*DEBUG, "--min_count", "0"], "min_count must be a whole number >= 1"),
    ("token_ranking", [*DEBUG, "--split", "dev"], "split must be one of train, val, test"),
])
def test_a_bad_field_is_one_line_before_loading(module, argv, message, capsys, no_model, tmp_path):
    line = refused(module, argv, capsys, tmp_path / "out")
    assert message in line, line


def test_a_config_built_in_python_is_checked_too():
    from analysis.sanity import SanityConfig
    with pytest.raises(UserError, match="fail_above must be a finite number"):
        SanityConfig(fail_above=float("nan"))  # the command line's float parser refuses nan itself
    with pytest.raises(UserError, match="prompts must be a list of prompts"):
        SanityConfig(prompts="a beep")


def test_an_output_dir_that_is_a_file_is_refused(capsys, no_model, tmp_path):
    path = tmp_path / "a_file"
    path.write_text("not a folder")
    line = refused("sanity", [*SANITY, "--output_dir", str(path)], capsys, tmp_path / "out")
    assert f"output_dir {path} is a file, not a folder" in line
    assert path.read_text() == "not a folder"


def test_explanations_from_a_folder_that_is_not_a_run_are_refused(capsys, no_model, tmp_path):
    folder = tmp_path / "not_a_run"
    (folder / "something").mkdir(parents=True)
    line = refused("sanity", [*SANITY, "--explanations", str(folder)], capsys, tmp_path / "out")
    assert str(folder) in line, line


def test_the_prompts_are_read_before_the_model_loads(capsys, no_model, tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("# only a comment\n")
    line = refused("difference", [*DEBUG, "--prompts_file", str(prompts)], capsys, tmp_path / "out")
    assert "only comment lines" in line, line


def test_debug_shows_the_traceback(no_model, tmp_path):
    from analysis.sanity import main
    with pytest.raises(UserError, match="threads must be a whole number >= 1"):
        main([*DEBUG, "--threads", "0", "--output_dir", str(tmp_path / "out"), "--debug"])


def test_an_unknown_option_points_to_help(capsys, tmp_path):
    line = refused("token_ranking", ["--min_cnt", "3"], capsys, tmp_path / "out")
    assert "--min_cnt" in line and line.endswith("; see --help"), line
