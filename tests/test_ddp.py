"""The same config on 2 CPU processes with Lightning's DDP (gloo): prompts split, results gathered."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lightning_agx.explanation import Explanation

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_ddp_on_two_processes_matches_one_process(tmp_path):
    common = ["--config", "configs/debug.yaml", "--explainer.epochs", "3", "--explainer.hidden", "16",
              "--prompts.batch_size", "1", "--wandb", "false", "--trainer.accelerator", "cpu"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    for name, extra in (("ddp", ["--trainer.strategy", "ddp", "--trainer.devices", "2"]), ("single", [])):
        result = subprocess.run([sys.executable, "train.py", *common, "--output_dir", str(tmp_path / name), *extra],
                                cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
    ddp = json.loads((tmp_path / "ddp" / "index.json").read_text())
    assert len(ddp) == 3  # rank 0 gathered the prompts of both ranks
    ranks = {Explanation.load(tmp_path / "ddp" / item["folder"]).metadata["rank"] for item in ddp}
    assert ranks == {0, 1}
    for item in ddp:  # with one prompt per chunk, each prompt's seed and noise are the same in both runs
        a = Explanation.load(tmp_path / "ddp" / item["folder"])
        b = Explanation.load(tmp_path / "single" / item["folder"])
        assert torch.equal(a.codes, b.codes)
        assert torch.allclose(a.mask, b.mask, atol=1e-5)
