"""Faithfulness evaluation (paper Table 1 and 2): every method, factual/counterfactual regeneration, metrics."""
from .auc import roc_auc, sound_word_labels
from .run import EvaluationResult, evaluate, run_evaluate

__all__ = ["EvaluationResult", "evaluate", "roc_auc", "run_evaluate", "sound_word_labels"]
