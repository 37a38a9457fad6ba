"""SIGTERM / SIGINT stop a run with exit code 143 / 130 after saving what finished, and say how to resume."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PROMPTS = ["a dog barks", "wind blows", "a bird sings", "rain falls", "thunder rolls", "bells ring"]


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_stops_with_its_exit_code_after_saving(tmp_path, signum, code):
    out = tmp_path / "run"
    env = {**os.environ, "WANDB_MODE": "offline", "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    texts = json.dumps(PROMPTS)
    proc = subprocess.Popen(
        [sys.executable, "train.py", "--config", "configs/debug.yaml", "--prompts.file", "null",
         "--prompts.texts", texts, "--prompts.batch_size", "1", "--explainer.epochs", "60", "--explainer.hidden", "16",
         "--output_dir", str(out), "--wandb", "false", "--trainer.enable_progress_bar", "false", "--figures", "false"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not list(out.glob("0000_*/explanation.json")):
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.2)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err[-2000:]
    index = json.loads((out / "index.json").read_text())
    saved = sum(e["status"] == "done" for e in index)
    assert 1 <= saved < len(PROMPTS) and len(index) == len(PROMPTS)
    name = signal.Signals(signum).name
    assert f"stopped by {name}: {saved} of {len(PROMPTS)} prompts are saved in {out}; rerun the same command" in err
    assert "Traceback" not in err
