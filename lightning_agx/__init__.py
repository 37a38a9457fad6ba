"""lightning_agx: explain text-to-audio generative models (AudioGenX) with PyTorch Lightning.

    from lightning_agx import explain, load_model
    explanations = explain("toysounds", ["a loud beep followed by a hiss"], output_dir="outputs/mine")
    explanations[0].audio_level(), explanations[0].interval(0.0, 1.5)
"""
__version__ = "0.4.0"

_EXPORTS = {
    "explain": "lightning_agx.api",
    "Explanation": "lightning_agx.explanation",
    "load_explanations": "lightning_agx.explanation",
    "ExplainerConfig": "lightning_agx.explainer",
    "load_model": "lightning_agx.models",
    "TAGModel": "lightning_agx.models",
    "CrossAttentionEdit": "lightning_agx.models",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    """Import on first use: `import lightning_agx` stays cheap (audiocraft takes seconds to import)."""
    if name in _EXPORTS:
        import importlib
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'lightning_agx' has no attribute {name!r}")
