"""Stage ``decoder``: the codec's decoder fine-tuned alone (encoder and quantizer frozen, so the codes the LM
learned stay valid) on 0.5 s crops of training clips, L1 + multi-scale mel loss: better audio from the same
codes. Its codes are unchanged, so it may also run beside the ``lm`` stage."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from lightning_agx.toyworld.build.codec import mel_loss
from lightning_agx.toyworld.build.data import Pool, crop_batch
from lightning_agx.toyworld.build.loop import ckpt_path, train
from lightning_agx.toyworld.load import load_state
from lightning_agx.toyworld.models import ToyConfig, build_codec


def finetune_decoder(cfg: ToyConfig, out: Path, device: str, steps: int, budget_s: float, seed: int) -> dict:
    """Rewrites ``codec.safetensors``; marks the stage done with ``_build/decoder.done``."""
    torch.manual_seed(seed)
    model = build_codec(cfg).to(device)
    load_state(model, out / "codec.safetensors")
    model.eval()  # frozen encoder + quantizer (no codebook EMA updates)
    model.decoder.train()
    for prm in list(model.encoder.parameters()) + list(model.quantizer.parameters()):
        prm.requires_grad_(False)
    mel = mel_loss(cfg, device)
    opt = torch.optim.Adam(model.decoder.parameters(), lr=2e-3, betas=(0.8, 0.99))
    crop = cfg.sample_rate // 2

    def make_step(start: int):
        rng = np.random.default_rng([seed, 3, start])
        pool = Pool(rng, size=600, refresh=200)

        def step_loss():
            x = crop_batch(pool, rng, crop, device)
            with torch.no_grad():
                codes, scale = model.encode(x)
            y = model.decode(codes, scale)[..., :crop]
            l1 = (y - x).abs().mean()
            msmel = mel(y, x) / mel.total
            return l1 + msmel, (l1, msmel)
        return step_loss

    res = train("decoder", model, opt, make_step, metrics=("l1", "mel"), steps=steps, budget_s=budget_s,
                peak_lr=2e-3, warmup=20, weights=out / "codec.safetensors", ckpt=ckpt_path(out, "decoder"), clip=10.0)
    (out / "_build" / "decoder.done").write_text(str(res["steps"]))
    return res
