"""The embedded ToySounds world: a synthetic sound world with ground truth and a small, genuinely
trained AudioGen-style model (audiocraft classes) to explain."""
from lightning_agx.toyworld.synth import EVENTS, SAMPLE_RATE, TONAL_EVENTS
from lightning_agx.toyworld.dataset import ToyClip, make_clip, make_split

__all__ = ["EVENTS", "SAMPLE_RATE", "TONAL_EVENTS", "ToyClip", "make_clip", "make_split"]
