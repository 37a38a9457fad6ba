"""Audio classifiers behind one interface (logits and embeddings at any input sample rate)."""
from .base import AudioClassifier
from .passt import PaSSTClassifier
from .registry import CLASSIFIERS, get_classifier
from .toysounds import ToySoundsClassifier

__all__ = ["AudioClassifier", "CLASSIFIERS", "PaSSTClassifier", "ToySoundsClassifier", "get_classifier"]
