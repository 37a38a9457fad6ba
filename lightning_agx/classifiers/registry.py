"""``load_classifier(name, device, model_name)``: the one way to get the audio classifier that judges
generated audio (the evaluation's faithfulness metrics, the analyses)."""
from __future__ import annotations

import sys

import torch

from ..errors import UserError
from ..models.catalogue import entry
from .base import AudioClassifier
from .debug import DebugClassifier
from .passt import PaSSTClassifier
from .toysounds import ToySoundsClassifier

CLASSIFIERS = ("auto", "debug", "passt", "toysounds")


def load_classifier(name: str, device: str | torch.device = "cpu", model_name: str | None = None) -> AudioClassifier:
    """The classifier `name` on `device`:

    - ``debug``: `DebugClassifier`, a tiny fixed 8 kHz classifier for tests and smoke runs;
    - ``toysounds``: the embedded world's trained 10-event classifier (`ToySoundsClassifier.from_toyworld`).
      For a model the catalogue marks ``random_classifier_if_missing`` (the ``debug`` model, which runs before
      the world is trained), missing ToySounds weights give a RANDOM classifier (seeded) and a loud line on
      stderr instead of an error;
    - ``passt``: PaSST (AudioSet, 527 labels; `PaSSTClassifier`);
    - ``auto``: the catalogue's classifier of `model_name` (`lightning_agx.models.catalogue`: ``toysounds`` for
      the toysounds and debug models), ``passt`` for any other `model_name`.
    """
    found = entry(model_name)
    if name == "auto":
        if model_name is None:
            raise UserError("classifier 'auto' picks the classifier for a model: give the model name too")
        name = found.classifier if found is not None and found.classifier is not None else "passt"
    if name == "debug":
        return DebugClassifier().to(device)
    if name == "toysounds":
        return _toysounds(device, random_if_missing=found is not None and found.random_classifier_if_missing)
    if name == "passt":
        return PaSSTClassifier().to(device)
    raise UserError(f"unknown classifier {name!r}; available: {', '.join(CLASSIFIERS)}")


def _toysounds(device, random_if_missing: bool) -> ToySoundsClassifier:
    from lightning_agx.toyworld.load import ToySoundsWeightsError
    try:
        return ToySoundsClassifier.from_toyworld(device=str(device))
    except ToySoundsWeightsError:
        if not random_if_missing:
            raise
    print("[classifiers] WARNING: the ToySounds classifier weights are missing: the debug run uses a RANDOM "
          "classifier (numbers are meaningless; only the pipeline is exercised)", file=sys.stderr, flush=True)
    from lightning_agx.toyworld.models import EventClassifier
    state = torch.random.get_rng_state()
    torch.manual_seed(0)
    module = EventClassifier()
    torch.random.set_rng_state(state)
    return ToySoundsClassifier(module.to(device).eval())
