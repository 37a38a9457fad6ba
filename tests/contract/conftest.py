"""The session-scoped `family` fixture of the `TAGModel` contract: each family of `tag_families.FAMILIES` loaded
once, with its generation of `PROMPTS`; each family's known failures marked as strict xfails.
``TAG_FAMILIES=debug,audioldm2 pytest tests/contract`` runs some of the families only."""
from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch

from lightning_agx.models import Generation, TAGModel
from tag_families import FAMILIES, PROMPTS, Family


# ---------------------------------------------------------------------------------------------------- fixtures
@dataclass
class Loaded:
    name: str
    spec: Family
    tag: TAGModel
    generation: Generation  # PROMPTS generated with seed 0
    cache: dict = field(default_factory=dict)  # results several checks share (a method's importance)


SELECTED = [name for name in os.environ.get("TAG_FAMILIES", ",".join(FAMILIES)).split(",") if name]
unknown = sorted(set(SELECTED) - set(FAMILIES))
if unknown:
    raise pytest.UsageError(f"TAG_FAMILIES names unknown families {unknown}; known: {', '.join(FAMILIES)}")


@pytest.fixture(scope="session", params=SELECTED)
def family(request, tmp_path_factory) -> Loaded:
    spec = FAMILIES[request.param]
    missing = [module for module in spec.requires if importlib.util.find_spec(module) is None]
    if missing:
        pytest.skip(f"family {request.param}: {', '.join(missing)} does not exist yet")
    torch.manual_seed(0)
    tag = spec.load(tmp_path_factory.mktemp(f"family_{request.param}"))
    return Loaded(request.param, spec, tag, tag.generate(PROMPTS, seed=0))


@pytest.fixture(scope="session")
def untrained_explainer(tmp_path_factory):
    """``make(family)``: an amortised explainer file for the family's model (none ships for these tiny models), the
    network at its seeded initialisation (what the method's contract needs: shape, range, padding)."""
    def make(family: Loaded) -> str:
        from lightning_agx.amortized import AmortizedExplainer, save_explainer
        key = ("amortized", "checkpoint")
        if key not in family.cache:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)
                explainer = AmortizedExplainer(family.tag.dim, hidden=16, latent_dim=family.tag.latent_dim)
            folder = tmp_path_factory.mktemp(f"amortized_{family.name}")
            family.cache[key] = str(save_explainer(explainer, folder / "init", family.tag))
        return family.cache[key]
    return make


def pytest_collection_modifyitems(config, items):
    """Each family's known failures become strict xfails of its cases (by test name, or test name and the value
    of its other parameter: ``test_x[atman]``)."""
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if "family" not in params or item.path.parent != Path(__file__).parent:
            continue
        failures = FAMILIES[params["family"]].known_failures
        name = item.originalname
        keys = [f"{name}[{value}]" for key, value in params.items() if key != "family"] + [name]
        reason = next((failures[k] for k in keys if k in failures), None)
        if reason:
            item.add_marker(pytest.mark.xfail(reason=f"{params['family']}: {reason}", strict=True))
