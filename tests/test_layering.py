"""The package's layering (issue 30): the interface imports no model family; family classes stay reachable."""
import json
import subprocess
import sys

import pytest

FAMILIES = ("audiocraft", "diffusers", "transformers")


def _loaded_after(code: str) -> list[str]:
    """The family libraries in sys.modules after running `code` in a fresh interpreter."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps([m for m in {FAMILIES!r} if m in sys.modules]))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("code", [
    "import lightning_agx.config",
    "from lightning_agx.models import TAGModel, load_model, available_models, check_prompts",
    "from lightning_agx.models.registry import check_model_name, sampling_keys_of\n"
    "check_model_name('debug'); sampling_keys_of('debug'); sampling_keys_of('debug-diffusion')",
    "import lightning_agx.amortized",
    "import lightning_agx.models.catalogue",
])
def test_the_interface_imports_no_family(code):
    assert _loaded_after(code) == []


def test_family_classes_are_reachable_lazily():
    import lightning_agx.models as models
    assert models.AudiocraftLM.__name__ == "AudiocraftLM"
    assert models.DiffusersTAG.__name__ == "DiffusersTAG"
    with pytest.raises(AttributeError):
        models.NoSuchFamily  # noqa: B018
