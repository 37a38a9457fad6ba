"""The models that ship with lightning_agx, in one catalogue: the only place the library names them.

Each entry says what the model is beyond its weights, so the rest of the package asks the catalogue (or the
loaded `TAGModel`) instead of testing names:

- ``recommended_explainer``: the AudioGenX settings chosen for this model (fields of
  `lightning_agx.explainer.ExplainerConfig`; what is not named is the authors'). Every entry point starts from
  them, and a config overrides them (`ExplainerConfig.for_model`).
- ``classifier``: the classifier that judges its audio when ``auto`` is asked (``None``: PaSST, the real one);
- ``shipped_explainer``: its trained amortised explainer in the package's assets (a file stem), if any;
- ``world``: whether it is the embedded ToySounds world's model, with the world's ground truth, held-out
  prompts and closed vocabulary (checked before the weights load).

Nothing here imports a model family: reading the catalogue is cheap.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class CatalogueEntry:
    name: str
    recommended_explainer: dict = field(default_factory=dict)
    classifier: str | None = None
    shipped_explainer: str | None = None
    world: bool = False


CATALOGUE = {entry.name: entry for entry in (
    CatalogueEntry("toysounds", classifier="toysounds", shipped_explainer="amortized", world=True),
    # beta 1e-2: the larger ground-truth AUC of the val Table 1 rule on 96 validation prompts (docs/toysounds.md)
    CatalogueEntry("toysounds-diffusion", recommended_explainer={"beta": 1e-2}, classifier="toysounds",
                   shipped_explainer="amortized_diffusion", world=True),
    CatalogueEntry("debug", classifier="toysounds"),
)}


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


__all__ = ["CATALOGUE", "CatalogueEntry", "entry", "recommended_explainer", "world_models"]
