"""Stage ``classifier``: the event classifier (the world's evaluator), trained from scratch on clean clips of
every event combination (held-out pairs included), multi-label BCE with +-3 dB level jitter."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from lightning_agx.toyworld.build.data import Pool
from lightning_agx.toyworld.build.loop import ckpt_path, train
from lightning_agx.toyworld.models import ToyConfig, build_classifier


def train_classifier(cfg: ToyConfig, out: Path, device: str, steps: int, budget_s: float, seed: int) -> dict:
    """Writes ``classifier.safetensors``."""
    torch.manual_seed(seed)
    model = build_classifier(cfg).to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)

    def make_step(start: int):
        pool = Pool(np.random.default_rng([seed, start]), size=1000, refresh=150, any_pairs=True)

        def step_loss():
            wav, y = pool.batch(32)
            gain = 10 ** (torch.empty(wav.shape[0], 1, 1).uniform_(-3, 3) / 20)  # +-3 dB level jitter
            loss = F.binary_cross_entropy_with_logits(model((wav * gain).to(device)), y.to(device))
            return loss, (loss,)
        return step_loss

    return train("classifier", model, opt, make_step, metrics=("bce",), steps=steps, budget_s=budget_s,
                 peak_lr=2e-3, warmup=100, weights=out / "classifier.safetensors", ckpt=ckpt_path(out, "classifier"))
