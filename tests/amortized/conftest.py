"""The amortised explainer's tests share one tiny fit on the debug model (`trained`) and its command line."""
from pathlib import Path

import pytest

from lightning_agx.config import parse

CAPTIONS = [f"{a} {b} {c}" for a in ("a dog", "the rain", "a bell", "wind", "a car", "birds")
            for b in ("barks", "falls", "rings", "blows", "passes") for c in ("loudly", "softly", "nearby")]


def train_argv(tmp_path, *extra) -> list[str]:
    """``train.py --task train_amortized`` on the debug model: 16 training and 4 validation captions, 2 steps per
    epoch, H = 16, CPU, everything under ``tmp_path``."""
    captions = tmp_path / "captions.txt"
    captions.write_text("\n".join(CAPTIONS))
    return ["--task", "train_amortized", "--model.name", "debug", "--model.duration", "0.5",
            "--data.source", "captions", "--data.captions", str(captions), "--data.train_prompts", "16",
            "--data.val_prompts", "4", "--data.batch_size", "8", "--data.chunk", "8", "--network.hidden", "16",
            "--output_dir", str(tmp_path / "run"), "--wandb", "false", "--trainer.enable_progress_bar", "false",
            "--trainer.accelerator", "cpu", *extra]


@pytest.fixture(scope="session")
def captions():
    return list(CAPTIONS)


@pytest.fixture(scope="session", name="train_argv")
def train_argv_fixture():
    return train_argv


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """A tiny amortised explainer for the debug model, trained by the project's command (2 epochs): the run's
    folder and the exported ``.safetensors``."""
    tmp = tmp_path_factory.mktemp("amortized")
    path = parse(None, train_argv(tmp, "--trainer.max_epochs", "2")).run()
    return tmp, Path(path)
