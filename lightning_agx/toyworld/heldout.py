"""The ToySounds world's held-out prompts: captions of its "test" split (held-out templates and event pairs,
`toyworld.grammar`), the prompt set of the evaluation on the toysounds model."""
from __future__ import annotations

import numpy as np

from lightning_agx.toyworld.grammar import sample_scene


def heldout_prompts(n: int, seed: int = 0) -> list[str]:
    """`n` distinct captions of the ToySounds held-out ("test") split, deterministic from `seed`."""
    if n < 1:
        raise ValueError(f"need at least 1 held-out prompt; got {n}")
    rng = np.random.default_rng([seed, 4])
    prompts: list[str] = []
    for _ in range(100 * n):
        caption = sample_scene(rng, "test").caption
        if caption not in prompts:
            prompts.append(caption)
        if len(prompts) == n:
            return prompts
    raise RuntimeError(f"the held-out split gave only {len(prompts)} distinct prompts, fewer than {n}")


def heldout_clips(n: int, seed: int, split: str = "test"):
    """`n` distinct held-out clips (with their ground truth): half sequences ("X followed by/then Y"), a
    quarter singles, a quarter overlaps, deterministic from `seed` (the README's ground-truth benchmarks).
    ``split="val"`` draws the same mix from the validation split instead, to tune settings on."""
    from lightning_agx.toyworld.dataset import make_clip, split_rng
    rng = split_rng(split, seed)
    kinds = ["sequence", "single", "sequence", "overlap"]
    clips, seen = [], set()
    while len(clips) < n:
        clip = make_clip(rng, split, kind=kinds[len(clips) % len(kinds)])
        if clip.caption not in seen:
            seen.add(clip.caption)
            clips.append(clip)
    return clips
