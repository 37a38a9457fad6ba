"""All explanation methods by name: each a `lightning_agx.methods.base.Method` class in its own file, with its
options, preparation, identity and `explain`; adding one is one file and one line in `METHODS`."""
from __future__ import annotations

import torch

from ..errors import UserError
from .atman import AtMan
from .attention import Attention
from .audiogenx import AudioGenX, AudioGenXCounterfactual, AudioGenXFactual
from .audiogenx_amortized import AudioGenXAmortized
from .base import Method
from .chefer import Chefer
from .gradcam_a import GradCAMA
from .gradcam_e import GradCAME
from .random_mask import RandomMask

METHODS: dict[str, type[Method]] = {
    "audiogenx": AudioGenX,
    "audiogenx_factual": AudioGenXFactual,
    "audiogenx_counterfactual": AudioGenXCounterfactual,
    "audiogenx_amortized": AudioGenXAmortized,
    "random": RandomMask,
    "gradcam_a": GradCAMA,
    "gradcam_e": GradCAME,
    "atman": AtMan,
    "chefer": Chefer,
    "attention": Attention,
}


def available_methods() -> list[str]:
    return sorted(METHODS)


def get_method(name: str) -> type[Method]:
    """The class of method `name`; a one-line `UserError` naming the methods for an unknown one."""
    if not isinstance(name, str) or name not in METHODS:
        raise UserError(f"unknown method {name!r}; available: {', '.join(available_methods())}")
    return METHODS[name]


def make_method(name: str, options: dict | None = None, config=None) -> Method:
    """Method `name` with its `options` checked (and, for a method that reads it, the explainer `config`)."""
    return get_method(name)(name, options, config)


def options_class(name: str) -> type:
    """The options dataclass of method `name`."""
    return get_method(name).Options


def check_method_options(name: str, options: dict | None) -> dict:
    """`options` of method `name` checked before any work: unknown keys refused, each value by the method's
    ``Options`` (one-line `UserError`s); returns them as a dict."""
    make_method(name, options)
    return dict(options or {})


def check_methods(names: list[str]) -> list[str]:
    """Fail before any work on a bad name in a list of methods."""
    if isinstance(names, str) or not names:
        raise UserError(f"choose a list of one or more methods among: {', '.join(available_methods())}")
    for name in names:
        get_method(name)
    return list(names)


def run_method(name: str, tag, generation, seed: int | list[int] = 0, **options) -> torch.Tensor:
    """``[B, T, N]`` importance of method `name` with `options` (a convenience over `make_method(...).run`);
    `seed`: one per prompt, or an int (prompt b: ``prompt_seed(seed, b)``)."""
    from ..seeding import resolve_seeds
    return make_method(name, options).run(tag, generation, resolve_seeds(seed, len(generation.text)))
