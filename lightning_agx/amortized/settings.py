"""The amortised explainer's settings (the ``data`` and ``network`` sections of its config): plain dataclasses
checked on construction, in a module of their own so that reading a config imports neither Lightning nor a
model family (`lightning_agx.config`)."""
from __future__ import annotations

import os
from dataclasses import dataclass, field

from ..errors import UserError
from ..inputs import check_int, check_number


@dataclass
class DataConfig:
    source: str = "toysounds"  # toysounds (the world's training grammar) | captions (the `captions` file)
    captions: str | None = None  # .txt / .csv of training captions for a real model
    exclude: list[str] = field(default_factory=list)  # caption files never to train on (evaluation sets)
    train_prompts: int = 4096
    val_prompts: int = 48
    batch_size: int = 32  # prompts per optimisation step
    chunk: int = 64  # prompts generated (and cached) at once
    cache_dir: str | None = None  # default: <output_dir>/generations

    def __post_init__(self) -> None:
        if self.source not in ("toysounds", "captions"):
            raise UserError(f"data.source must be 'toysounds' or 'captions'; got {self.source!r}")
        if self.source == "captions" and not self.captions:
            raise UserError("data.source captions needs data.captions: a .txt or .csv file of training captions")
        for key in ("captions", "cache_dir"):
            value = getattr(self, key)
            if value is not None and not _is_path(value):
                raise UserError(f"data.{key} must be a path or null; got {value!r}")
        if not isinstance(self.exclude, (list, tuple)) or not all(_is_path(f) for f in self.exclude):
            raise UserError(f"data.exclude must be a list of caption files; got {self.exclude!r}")
        for key in ("train_prompts", "val_prompts", "batch_size", "chunk"):
            check_int(getattr(self, key), f"data.{key}", low=1)


def _is_path(value) -> bool:
    return isinstance(value, (str, os.PathLike)) and str(value) != ""


@dataclass
class NetworkConfig:
    hidden: int = 128  # width H of the token and step embeddings and of the head
    lr: float = 1e-3
    weight_decay: float = 1e-4

    def __post_init__(self) -> None:
        check_int(self.hidden, "network.hidden", low=1)
        check_number(self.lr, "network.lr", low=0, low_open=True)
        check_number(self.weight_decay, "network.weight_decay", low=0)


__all__ = ["DataConfig", "NetworkConfig"]
