"""All explanation methods by name. A method is ``fn(tag, generation, seed=0, **options) -> [B, T, N]``
importance (0 at padding tokens) and its module's ``OPTIONS`` dataclass (`lightning_agx.methods.options`);
adding one is one file and one line in `METHODS`."""
from __future__ import annotations

import sys
from functools import partial
from typing import Callable

import torch

from ..errors import UserError
from .atman import atman
from .attention import attention
from .audiogenx import VARIANTS, audiogenx
from .audiogenx_amortized import audiogenx_amortized
from .chefer import chefer
from .gradcam_a import gradcam_a
from .gradcam_e import gradcam_e
from .options import check_options
from .random_mask import random_mask

METHODS: dict[str, Callable[..., torch.Tensor]] = {
    **{name: partial(audiogenx, objective=objective) for name, objective in VARIANTS.items()},
    "audiogenx_amortized": audiogenx_amortized,
    "random": random_mask,
    "gradcam_a": gradcam_a,
    "gradcam_e": gradcam_e,
    "atman": atman,
    "chefer": chefer,
    "attention": attention,
}


def available_methods() -> list[str]:
    return sorted(METHODS)


def get_method(name: str) -> Callable[..., torch.Tensor]:
    if not isinstance(name, str) or name not in METHODS:
        raise UserError(f"unknown method {name!r}; available: {', '.join(available_methods())}")
    return METHODS[name]


def options_class(name: str) -> type:
    """The ``OPTIONS`` dataclass of method `name` (declared in its module)."""
    function = get_method(name)
    function = getattr(function, "func", function)  # the AudioGenX variants are partials
    return sys.modules[function.__module__].OPTIONS


def check_method_options(name: str, options: dict | None) -> dict:
    """`options` of method `name` checked before any work: unknown keys refused, each value by the method's
    ``OPTIONS`` (one-line `UserError`s); returns them as a dict."""
    return check_options(name, get_method(name), options_class(name), options)


def is_audiogenx(name: str) -> bool:
    """Whether method `name` is AudioGenX, per prompt or amortised (it then takes the explainer's `config`)."""
    return name in VARIANTS or name == "audiogenx_amortized"


def check_methods(names: list[str]) -> list[str]:
    """Fail before any work on a bad name in a list of methods."""
    if isinstance(names, str) or not names:
        raise UserError(f"choose a list of one or more methods among: {', '.join(available_methods())}")
    for name in names:
        get_method(name)
    return list(names)


def run_method(name: str, tag, generation, seed: int = 0, **options) -> torch.Tensor:
    """``[B, T, N]`` importance of method `name`, checked: right shape, finite, 0 at padding."""
    importance = get_method(name)(tag, generation, seed=seed, **options).detach()
    expected = (len(generation.text), generation.num_steps, generation.text.valid.shape[1])
    if tuple(importance.shape) != expected:
        raise RuntimeError(f"method '{name}' returned shape {tuple(importance.shape)}, expected {expected}")
    if not torch.isfinite(importance).all():
        raise FloatingPointError(f"method '{name}' returned non-finite importance")
    return importance * generation.text.valid[:, None, :]
