"""Stage ``eval``: the quality numbers of the built models (``lightning_agx.toyworld.evaluate``, on held-out
clips and prompts), which become the report's ``quality``."""
from __future__ import annotations

import time
from pathlib import Path

from lightning_agx.toyworld.evaluate import evaluate_all


def evaluate(out: Path, device: str, n_clips: int, seed: int) -> dict:
    t0 = time.time()
    res = evaluate_all(out, device=device, n_clips=n_clips, seed=seed)
    res["seconds"] = time.time() - t0
    return res
