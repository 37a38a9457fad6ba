"""The transformers wing: transformers' MusicGen behind `TAGModel` (`musicgen`).

Here only what names route to the wing (`lightning_agx.models.registry`): importing the package imports neither
`musicgen` nor transformers."""
from __future__ import annotations

import json
from pathlib import Path

PREFIX = "transformers:"


def is_transformers_name(name) -> bool:
    """``transformers:<hub id or folder>``."""
    return isinstance(name, str) and name.startswith(PREFIX) and bool(name[len(PREFIX):].strip())


def is_musicgen_folder(name) -> bool:
    """A local folder written by ``MusicgenForConditionalGeneration.save_pretrained`` (config.json: "musicgen")."""
    if not isinstance(name, str):
        return False
    path = Path(name) / "config.json"
    if not path.is_file():
        return False
    try:
        return json.loads(path.read_text()).get("model_type") == "musicgen"
    except (OSError, ValueError, AttributeError):
        return False


__all__ = ["PREFIX", "is_musicgen_folder", "is_transformers_name"]
