"""What a seed means: every prompt has its own seed and its own random streams.

A run's seed and a prompt's index in the run's prompt list give the prompt's seed (`prompt_seed`); the
prompt's seed gives one independent stream per use (`stream`): the sampling of its audio tokens, and the
explainer's initialisation and Gumbel noise. Nothing random is drawn from a stream shared by the batch, so a
prompt's audio and explanation do not depend on the batch size, its neighbours, the chunking or the order in
which prompts run, beyond float rounding: the audio tokens are identical, the mask bit-identical at equal
shapes and otherwise within the explainer optimisation's float32 sensitivity (about 1e-3 on ToySounds;
tests/test_batch_invariance.py says why). (Versions before 0.2 seeded a whole chunk with ``seed + first index`` and drew from one
stream: their results differ.)
"""
from __future__ import annotations

import numpy as np
import torch

STREAMS = {"generation": 0, "explainer": 1, "trajectory": 2}  # trajectory: a diffusion generation's explained noise


def prompt_seed(run_seed: int, index: int) -> int:
    """The seed of the prompt at `index` of a run seeded with `run_seed` (a 63-bit hash of both)."""
    return int(np.random.SeedSequence([int(run_seed), int(index)]).generate_state(1, np.uint64)[0] >> np.uint64(1))


def derived_seeds(seeds: list[int], offset: int) -> list[int]:
    """Further per-prompt seeds (a prompt's k-th regeneration, say): ``prompt_seed(seed, offset)`` for each."""
    return [prompt_seed(s, offset) for s in seeds]


def stream(seed: int, purpose: str, device: str | torch.device = "cpu") -> torch.Generator:
    """A `torch.Generator` on `device` for one `purpose` ('generation', 'explainer') of a prompt's seed."""
    state = np.random.SeedSequence([int(seed), STREAMS[purpose]]).generate_state(1, np.uint64)[0] >> np.uint64(1)
    return torch.Generator(device=torch.device(device)).manual_seed(int(state))


def streams(seeds: list[int], purpose: str, device: str | torch.device = "cpu") -> list[torch.Generator]:
    return [stream(s, purpose, device) for s in seeds]


def resolve_seeds(seed: int | list[int] | None, count: int) -> list[int]:
    """Per-prompt seeds: a list is used as it is, an int seeds prompt i with ``prompt_seed(seed, i)``, None
    draws fresh seeds from torch's global generator."""
    if seed is None:
        return [int(torch.randint(0, 2 ** 62, (1,)).item()) for _ in range(count)]
    if isinstance(seed, (list, tuple)):
        if len(seed) != count:
            raise ValueError(f"got {len(seed)} seeds for {count} prompts; give one seed per prompt")
        return [int(s) for s in seed]
    return [prompt_seed(seed, i) for i in range(count)]


__all__ = ["derived_seeds", "prompt_seed", "resolve_seeds", "stream", "streams"]
