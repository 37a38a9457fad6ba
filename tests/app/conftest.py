"""The explorer on the embedded ToySounds model, loaded once for the app's tests."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def explorer(tmp_path_factory):
    from lightning_agx.app import Explorer
    explorer = Explorer("toysounds", workdir=tmp_path_factory.mktemp("explorer"))
    yield explorer
    explorer.close()


@pytest.fixture(scope="session")
def served(explorer):
    """The app launched on a free localhost port: (url, app)."""
    from lightning_agx.app import build_app, launch
    app = build_app(explorer)
    _, url, _ = launch(app, port=None, block=False)
    yield url, app
    app.close()
