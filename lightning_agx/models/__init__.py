"""Text-to-audio model families behind one interface, `TAGModel` (`base.py`); one wing (sub-package) per family.

Importing this package imports the interface only (`TAGModel` and its data classes, the cross-attention edit,
the registry and the catalogue): no family's library (audiocraft, diffusers, transformers) is imported until a
family class is asked for (``lightning_agx.models.AudiocraftLM`` ..., resolved by the module's ``__getattr__``)
or `load_model` routes a name to its family.
"""
from ..inputs import check_prompts
from .attention import CrossAttentionEdit, cross_attention_modules, edit_cross_attention
from .base import Generation, GroundTruth, StepOutputs, TAGModel, TextConditioning
from .registry import ModelLoadError, available_models, load_model

_FAMILIES = {  # family classes, imported on first use
    "AudiocraftLM": "lightning_agx.models.audiocraft.lm",
    "AudiocraftMagnet": "lightning_agx.models.audiocraft.magnet",
    "DiffusersTAG": "lightning_agx.models.diffusers.tag",
    "TransformersMusicgen": "lightning_agx.models.transformers.musicgen",
}

__all__ = ["AudiocraftLM", "AudiocraftMagnet", "CrossAttentionEdit", "DiffusersTAG", "Generation", "GroundTruth",
           "ModelLoadError", "StepOutputs", "TAGModel", "TextConditioning", "TransformersMusicgen",
           "available_models", "check_prompts", "cross_attention_modules", "edit_cross_attention", "load_model"]


def __getattr__(name: str):
    """A family class, imported on first use (its family's library with it)."""
    if name in _FAMILIES:
        import importlib
        return getattr(importlib.import_module(_FAMILIES[name]), name)
    raise AttributeError(f"module 'lightning_agx.models' has no attribute {name!r}")
