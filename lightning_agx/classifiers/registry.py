"""``get_classifier(name, **kw)``: classifiers by name."""
from __future__ import annotations

from typing import Callable

from .base import AudioClassifier
from .passt import PaSSTClassifier
from .toysounds import ToySoundsClassifier


def _toysounds(module=None, **kw) -> ToySoundsClassifier:
    """``module`` given: wrap it; otherwise load the trained toyworld classifier (``device``, ``directory``)."""
    return ToySoundsClassifier(module, **kw) if module is not None else ToySoundsClassifier.from_toyworld(**kw)


CLASSIFIERS: dict[str, Callable[..., AudioClassifier]] = {
    "passt": PaSSTClassifier,
    "toysounds": _toysounds,
}


def get_classifier(name: str, **kw) -> AudioClassifier:
    if name not in CLASSIFIERS:
        raise ValueError(f"unknown classifier {name!r}; available: {', '.join(sorted(CLASSIFIERS))}")
    return CLASSIFIERS[name](**kw)
