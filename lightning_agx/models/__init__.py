"""TAG model adapters: one interface over audiocraft text-to-audio models."""
from ..inputs import check_prompts
from .adapter import AudiocraftTAG, Generation, StepOutputs, TextConditioning
from .attention import CrossAttentionEdit, cross_attention_modules, edit_cross_attention
from .registry import ModelLoadError, available_models, load_model

__all__ = ["AudiocraftTAG", "CrossAttentionEdit", "Generation", "ModelLoadError", "StepOutputs",
           "TextConditioning", "available_models", "check_prompts", "cross_attention_modules",
           "edit_cross_attention", "load_model"]
