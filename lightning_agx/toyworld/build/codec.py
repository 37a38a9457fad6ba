"""Stage ``codec``: the codec (SEANet encoder/decoder + residual VQ) trained from scratch on 0.5 s crops of
training clips: L1 + multi-scale mel reconstruction loss + the quantizer's commitment penalty."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from lightning_agx.toyworld.build.data import Pool, crop_batch
from lightning_agx.toyworld.build.loop import ckpt_path, train
from lightning_agx.toyworld.models import ToyConfig, build_codec


def mel_loss(cfg: ToyConfig, device: str):
    """Multi-scale mel loss of the codec stages: scales 128..1024, measured to learn faster per CPU second than
    64..1024 at lr 3e-3 (lr 1e-3 stalled)."""
    from audiocraft.losses import MultiScaleMelSpectrogramLoss
    return MultiScaleMelSpectrogramLoss(cfg.sample_rate, range_start=7, range_end=11, n_mels=64).to(device)


def train_codec(cfg: ToyConfig, out: Path, device: str, steps: int, budget_s: float, seed: int) -> dict:
    """Writes ``codec.safetensors``."""
    torch.manual_seed(seed)
    model = build_codec(cfg).to(device).train()
    mel = mel_loss(cfg, device)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3, betas=(0.8, 0.99))
    crop = cfg.sample_rate // 2  # 0.5 s crops

    def make_step(start: int):
        rng = np.random.default_rng([seed, 1, start])
        pool = Pool(rng, size=600, refresh=200)

        def step_loss():
            x = crop_batch(pool, rng, crop, device)
            q = model(x)
            l1 = (q.x - x).abs().mean()
            msmel = mel(q.x, x) / mel.total
            return l1 + msmel + q.penalty, (l1, msmel, q.penalty)
        return step_loss

    return train("codec", model, opt, make_step, metrics=("l1", "mel", "commit"), steps=steps, budget_s=budget_s,
                 peak_lr=3e-3, warmup=30, weights=out / "codec.safetensors", ckpt=ckpt_path(out, "codec"), clip=10.0)
