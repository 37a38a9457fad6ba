"""One door for errors (issue 29): every entry point, run as a user runs it, answers a mistake the same way.

Each entry point (``train.py``, every ``python -m analysis.<name>``, the explorer's launcher, the ToySounds build,
every ``benchmarks/*.py`` script) is started in a subprocess twice: with an unknown option and with one bad value.
Each must exit 2 with exactly one line on stderr, containing ``error:`` and no traceback; a parse error's line
points to ``--help``. The analyses and benchmarks are found by globbing, so a new one is covered at once (its bad
value must be added to `BAD_VALUES`, or its case fails saying so). Every case fails before any model loads; the
cost is the interpreter's imports (torch, audiocraft), some seconds each on 2 cores.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TIMEOUT_S = 180  # a case fails in its imports; this only stops a case that started real work


def _scripts(folder: str) -> list[Path]:
    """The runnable scripts of `folder` (those with a ``__main__`` block; shared modules are not entry points)."""
    return sorted(p for p in (REPO / folder).glob("*.py") if 'if __name__ == "__main__":' in p.read_text())


def _entry_points() -> dict[str, list[str]]:
    """name -> the command line that starts it (run in the repository root)."""
    points = {"train.py": [sys.executable, "train.py"]}
    points.update({f"analysis.{p.stem}": [sys.executable, "-m", f"analysis.{p.stem}"] for p in _scripts("analysis")})
    points["lightning_agx.app"] = [sys.executable, "-m", "lightning_agx.app"]
    points["lightning_agx.toyworld.build"] = [sys.executable, "-m", "lightning_agx.toyworld.build"]
    points.update({f"benchmarks/{p.name}": [sys.executable, f"benchmarks/{p.name}"] for p in _scripts("benchmarks")})
    return points


ENTRY_POINTS = _entry_points()
DEBUG = ["--model.name", "debug"]  # a valid model that would load fast (none loads in these cases)

# one bad value per entry point: (arguments, text its error line contains); OUT is replaced by a fresh folder
# that must not exist afterwards (nothing written)
BAD_VALUES: dict[str, tuple[list[str], str]] = {
    "train.py": (["--model.name", "nosuch", "--output_dir", "OUT"], "unknown model 'nosuch'"),
    "analysis.sanity": (["--config", "configs/analysis_sanity.yaml", "--model.name", "nosuch", "--output_dir", "OUT"],
                        "unknown model 'nosuch'"),
    "analysis.difference": ([*DEBUG, "--threads", "0", "--output_dir", "OUT"], "threads must be a whole number >= 1"),
    "analysis.editing": ([*DEBUG, "--action", "boost", "--output_dir", "OUT"], "action must be one of amplify"),
    "analysis.negation": ([*DEBUG, "--method", "nosuch", "--output_dir", "OUT"], "unknown method 'nosuch'"),
    "analysis.report": ([*DEBUG, "--prompts_file", "/nonexistent/prompts.txt", "--output_dir", "OUT"],
                        "prompt file /nonexistent/prompts.txt does not exist"),
    "analysis.token_ranking": ([*DEBUG, "--batch_size", "0", "--output_dir", "OUT"], "batch size must be"),
    "lightning_agx.app": (["--port", "70000"], "70000 is not a port number"),
    "lightning_agx.toyworld.build": (["--out", "OUT", "--stages", "codec,nope"], "unknown stage(s) ['nope']"),
    "benchmarks/amortized.py": (["--threads", "0"], "argument --threads: must be a whole number >= 1"),
    "benchmarks/app_speed.py": (["--repeats", "0"], "argument --repeats: must be a whole number >= 1"),
    "benchmarks/explain_speed.py": (["--batch-sizes", "1", "0"], "argument --batch-sizes"),
    "benchmarks/performance_faithfulness.py": (["--options", "nosuch"], "argument --options: invalid choice"),
    "benchmarks/toyworld_denoise_pairs.py": (["--model-dir", "/nonexistent"], "/nonexistent is not an existing folder"),
    "benchmarks/toyworld_diffusion.py": (["--weights", "/nonexistent"], "/nonexistent is not an existing folder"),
    "benchmarks/toyworld_locality.py": (["--models", "toysounds", "nosuch"], "unknown model 'nosuch'"),
    "benchmarks/toyworld_models.py": (["--n-clips", "0"], "argument --n-clips: must be a whole number >= 1"),
    "benchmarks/toyworld_pairs.py": (["--prompts", "x"], "argument --prompts: must be a whole number >= 1"),
    "benchmarks/toyworld_truth.py": (["--weights", "."], "--weights: is for --model toysounds-diffusion"),
}
PENDING: dict[str, str] = {}  # entry point -> reason, for one not behind the door yet (xfail)


def _case(name: str):
    marks = [pytest.mark.xfail(reason=PENDING[name], strict=True)] if name in PENDING else []
    return pytest.param(name, id=name, marks=marks)


CASES = [_case(name) for name in ENTRY_POINTS]


def run(name: str, argv: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    argv = [str(tmp_path / "out") if a == "OUT" else a for a in argv]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "offline", "WANDB_SILENT": "true",
           "PYTHONPATH": str(REPO)}
    return subprocess.run([*ENTRY_POINTS[name], *argv], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=TIMEOUT_S, stdin=subprocess.DEVNULL)


def one_error_line(proc: subprocess.CompletedProcess) -> str:
    """The single stderr line of a refused command line (exit 2, no traceback, nothing else said)."""
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2, f"exit {proc.returncode}\n{proc.stderr[-3000:]}"
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert len(lines) == 1, f"{len(lines)} lines on stderr:\n{proc.stderr[-3000:]}"
    assert "error:" in lines[0], lines[0]
    return lines[0]


def test_every_analysis_and_benchmark_is_listed():
    """The globs found the entry points this test is about (a wrong folder would silently cover nothing)."""
    assert {"analysis.sanity", "analysis.report", "benchmarks/explain_speed.py"} <= set(ENTRY_POINTS)
    assert "analysis.common" not in ENTRY_POINTS and "benchmarks/benchmark_output.py" not in ENTRY_POINTS


@pytest.mark.slow
@pytest.mark.parametrize("name", CASES)
def test_an_unknown_option_is_one_line_pointing_to_help(name, tmp_path):
    line = one_error_line(run(name, ["--no-such-option", "1"], tmp_path))
    assert "--no-such-option" in line and line.endswith("; see --help"), line


@pytest.mark.slow
@pytest.mark.parametrize("name", CASES)
def test_a_bad_value_is_one_line_before_anything_is_written(name, tmp_path):
    assert name in BAD_VALUES, f"add a bad value for the new entry point {name} to BAD_VALUES"
    argv, message = BAD_VALUES[name]
    line = one_error_line(run(name, argv, tmp_path))
    assert message in line, line
    if "error: argument --" in line or "unrecognized arguments" in line:  # a parse error (argparse's wording)
        assert line.endswith("; see --help"), line
    assert not (tmp_path / "out").exists(), "the output folder was written before the error"


@pytest.mark.slow
def test_debug_shows_the_traceback(tmp_path):
    proc = run("analysis.sanity", [*DEBUG, "--threads", "0", "--output_dir", "OUT", "--debug"], tmp_path)
    assert proc.returncode == 1 and "Traceback (most recent call last)" in proc.stderr, proc.stderr[-3000:]
    assert "UserError: threads must be a whole number >= 1" in proc.stderr, proc.stderr[-3000:]
    assert not (tmp_path / "out").exists()
