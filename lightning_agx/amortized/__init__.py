"""Amortised AudioGenX: one network E(x_n, c_t) trained across prompts on the AudioGenX objective (Eq. 6),
then one forward per explanation (`network`, `store`, `data`, `training`)."""
from .network import AmortizedExplainer, StepContext, step_context
from .store import AmortizedCheckpointError, default_checkpoint, load_explainer, save_explainer

__all__ = ["AmortizedCheckpointError", "AmortizedExplainer", "StepContext", "default_checkpoint", "load_explainer",
           "save_explainer", "step_context"]
