"""Text-to-audio model families behind one interface, `TAGModel` (`base.py`); one adapter file per family."""
from ..inputs import check_prompts
from .attention import CrossAttentionEdit, cross_attention_modules, edit_cross_attention
from .audiocraft_lm import AudiocraftLM
from .audiocraft_magnet import AudiocraftMagnet
from .base import Generation, GroundTruth, StepOutputs, TAGModel, TextConditioning
from .registry import ModelLoadError, available_models, load_model

__all__ = ["AudiocraftLM", "AudiocraftMagnet", "CrossAttentionEdit", "Generation", "GroundTruth", "ModelLoadError",
           "StepOutputs", "TAGModel", "TextConditioning", "available_models", "check_prompts",
           "cross_attention_modules", "edit_cross_attention", "load_model"]
