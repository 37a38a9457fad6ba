"""Faithfulness evaluation (paper Table 1 and 2): every method, factual/counterfactual regeneration, metrics."""
from .run import EvaluationResult, evaluate, run_evaluate

__all__ = ["EvaluationResult", "evaluate", "run_evaluate"]
