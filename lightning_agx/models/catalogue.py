"""The models that ship with lightning_agx, in one catalogue: the only place the library names them.

Each entry says what the model is beyond its weights, so the rest of the package asks the catalogue (or the
loaded `TAGModel`) instead of testing names:

- ``recommended_explainer``: the AudioGenX settings chosen for this model (fields of
  `lightning_agx.explainer.ExplainerConfig`; what is not named is the authors'). Every entry point starts from
  them, and a config overrides them (`ExplainerConfig.for_model`).
- ``classifier``: the classifier that judges its audio when ``auto`` is asked (``None``: PaSST, the real one);
- ``random_classifier_if_missing``: its ``toysounds`` classifier may be a random one (seeded, with a loud line)
  when the world's weights are missing (a debug model, which runs before the world is trained);
- ``shipped_explainer``: its trained amortised explainer in the package's assets (a file stem), if any;
- ``world``: whether it is the embedded ToySounds world's model, with the world's ground truth, held-out
  prompts and closed vocabulary (checked before the weights load);
- ``loader``: where its loader is, ``"module:function"``, called as ``function(name=, device=, duration=,
  seed=)`` -> `TAGModel` (`CatalogueEntry.load`; the registry routes the name there);
- ``family``: the family that serves it (``audiocraft-lm``, ``audiocraft-magnet``, ``diffusers``), which says its
  sampling settings before it loads;
- ``tokenizer``: where the tokenizer of a closed vocabulary is (``"module:function"`` -> a tokenizer with
  ``words(prompt)`` and ``max_length``), for checking prompts before the weights load; None: none.

Nothing here imports a model family, nor the toy world: loaders and tokenizers are named as strings and imported
when called (`resolve`), so reading the catalogue is cheap and ``lightning_agx.models`` never imports
``lightning_agx.toyworld`` at import time (the toy world builds on the models, not the other way round).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field


@dataclass(frozen=True)
class CatalogueEntry:
    name: str
    loader: str
    family: str
    recommended_explainer: dict = field(default_factory=dict)
    classifier: str | None = None
    shipped_explainer: str | None = None
    world: bool = False
    tokenizer: str | None = None
    random_classifier_if_missing: bool = False

    def load(self, device="cpu", duration: float | None = None, seed: int = 0):
        """The model, from its loader."""
        return resolve(self.loader)(name=self.name, device=device, duration=duration, seed=seed)


_WORLD_TOKENIZER = "lightning_agx.toyworld.load:world_tokenizer"


CATALOGUE = {entry.name: entry for entry in (
    CatalogueEntry("toysounds", "lightning_agx.toyworld.load:load_toysounds_model", "audiocraft-lm",
                   classifier="toysounds", shipped_explainer="amortized", world=True, tokenizer=_WORLD_TOKENIZER),
    # beta 1e-2: the larger ground-truth AUC of the val Table 1 rule on 96 validation prompts (docs/toysounds.md)
    CatalogueEntry("toysounds-diffusion", "lightning_agx.toyworld.diffusion:load_toysounds_diffusion", "diffusers",
                   recommended_explainer={"beta": 1e-2}, classifier="toysounds",
                   shipped_explainer="amortized_diffusion", world=True, tokenizer=_WORLD_TOKENIZER),
    # the debug models: tiny, randomly initialised (seeded), for tests; the LM's audio judged by the world's
    # classifier (random when its weights are missing)
    CatalogueEntry("debug", "lightning_agx.models.audiocraft.load:load_debug", "audiocraft-lm",
                   classifier="toysounds", random_classifier_if_missing=True),
    CatalogueEntry("debug-magnet", "lightning_agx.models.audiocraft.load:load_debug_magnet", "audiocraft-magnet"),
    CatalogueEntry("debug-diffusion", "lightning_agx.models.diffusers.models:load_debug_diffusion", "diffusers"),
)}


def resolve(path: str):
    """The object a ``"module:attribute"`` path names, imported now."""
    module, _, attribute = path.partition(":")
    return getattr(importlib.import_module(module), attribute)


def entry(name) -> CatalogueEntry | None:
    """The catalogue entry of model `name` (None for a model the package does not ship)."""
    return CATALOGUE.get(name) if isinstance(name, str) else None


def recommended_explainer(name) -> dict:
    """The explainer settings chosen for model `name` ({}: the authors')."""
    found = entry(name)
    return dict(found.recommended_explainer) if found is not None else {}


def world_models() -> list[str]:
    """The embedded world's models (ground truth, held-out prompts, closed vocabulary)."""
    return [name for name, e in CATALOGUE.items() if e.world]


def names() -> list[str]:
    """Every catalogued model, in catalogue order."""
    return list(CATALOGUE)


__all__ = ["CATALOGUE", "CatalogueEntry", "entry", "names", "recommended_explainer", "resolve", "world_models"]
