"""Shared fixtures: tiny audiocraft models built in the test process, seeds fixed."""
import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no test may wait on a download
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    """Tiny models on a 2-core machine: one intra-op thread is several times faster than oversubscription."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def debug_tag():
    """audiocraft's debug LM + codec (LUT text conditioner, 2 layers, dim 16), 1 s of audio at 25 Hz."""
    from lightning_agx.models import load_model
    torch.manual_seed(0)
    return load_model("debug", seed=0)


@pytest.fixture(scope="session")
def debug_generation(debug_tag):
    """Two prompts of different lengths (padding in the batch), generated with a fixed seed."""
    return debug_tag.generate(["a dog barks loudly near a river", "rain"], seed=0)


@pytest.fixture(scope="session")
def chromium():
    """Debian's headless Chromium (installed by scripts/setup.sh on CI), or the test is skipped."""
    import shutil
    for name in ("/usr/bin/chromium", "chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("chromium is absent (apt-get install -y chromium; scripts/setup.sh does it on CI)")


@pytest.fixture
def shared_dir():
    if not SHARED.is_dir():
        pytest.skip("../shared is absent (a fresh clone): data-backed test skipped")
    return SHARED


@pytest.fixture(scope="session")
def untrained_amortized(tmp_path_factory):
    """An amortised explainer file for a model with none shipped: the network at its seeded initialisation
    (what the method's contract needs: shape, range, padding; `tests/amortized` trains real ones)."""
    def make(tag):
        from lightning_agx.amortized import AmortizedExplainer, save_explainer
        state = torch.random.get_rng_state()
        torch.manual_seed(0)
        explainer = AmortizedExplainer(tag.dim, hidden=16, latent_dim=tag.latent_dim)
        torch.random.set_rng_state(state)
        return str(save_explainer(explainer, tmp_path_factory.mktemp(f"amortized_{tag.name}") / "init", tag))
    return make
