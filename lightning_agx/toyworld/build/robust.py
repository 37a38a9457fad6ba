"""Stage ``robust``: the classifier fine-tuned on clean clips mixed half and half with the same kind of clips
passed through the trained codec (true labels), so that it judges decoded/generated audio by its events, not by
codec artefacts (PaSST, the real evaluator, was trained on varied audio too). Not resumable midway: it starts
again from the trained classifier."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from lightning_agx.toyworld.build.data import Pool
from lightning_agx.toyworld.build.loop import log, train
from lightning_agx.toyworld.load import load_state
from lightning_agx.toyworld.models import ToyConfig, build_classifier, build_codec


def robust_classifier(cfg: ToyConfig, out: Path, device: str, steps: int, budget_s: float, seed: int) -> dict:
    """Rewrites ``classifier.safetensors``; marks the stage done with ``_build/robust.done``. Decoding the
    codec pool counts in the stage's time budget."""
    torch.manual_seed(seed)
    clf = build_classifier(cfg).to(device)
    load_state(clf, out / "classifier.safetensors")
    codec = build_codec(cfg).to(device)
    load_state(codec, out / "codec.safetensors")
    codec.eval()
    t0 = time.time()
    rng = np.random.default_rng([seed, 4])
    clean = Pool(rng, size=600, refresh=100, any_pairs=True)
    coded = Pool(rng, size=800, refresh=10 ** 9, any_pairs=True)
    with torch.no_grad():  # decode the second pool once
        for i in range(0, coded.size, 50):
            x = coded.audio[i:i + 50].to(device)
            codes, scale = codec.encode(x)
            coded.audio[i:i + 50] = codec.decode(codes, scale)[..., :x.shape[-1]].cpu()
    log(f"robust: decoded {coded.size} clips in {time.time() - t0:.0f} s")
    clf.train()
    opt = torch.optim.AdamW(clf.parameters(), lr=5e-4, weight_decay=1e-4)

    def step_loss():
        (a, ya), (b, yb) = clean.batch(16), coded.batch(16)
        loss = F.binary_cross_entropy_with_logits(clf(torch.cat([a, b]).to(device)), torch.cat([ya, yb]).to(device))
        return loss, (loss,)

    res = train("robust", clf, opt, lambda start: step_loss, metrics=("bce",), steps=steps,
                budget_s=budget_s - (time.time() - t0), peak_lr=5e-4, warmup=20,
                weights=out / "classifier.safetensors", t0=t0)
    (out / "_build" / "robust.done").write_text(str(res["steps"]))
    return res
