"""Audio classifiers behind one interface (logits and embeddings at any input sample rate), loaded by name
with `load_classifier`."""
from .base import AudioClassifier
from .debug import DebugClassifier
from .passt import PaSSTClassifier
from .registry import CLASSIFIERS, load_classifier
from .toysounds import ToySoundsClassifier

__all__ = ["AudioClassifier", "CLASSIFIERS", "DebugClassifier", "PaSSTClassifier", "ToySoundsClassifier",
           "load_classifier"]
