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
