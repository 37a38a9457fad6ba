"""Ground-truth check of the embedded world: ROC AUC of audio-level importance vs the true sound words.

In the ToySounds grammar a token is a sound word (role SOUND) exactly when it names one of the world's
events (``toyworld.synth.EVENTS``), including the X of "Y without X" (a sound word whose sound is absent).
"""
from __future__ import annotations

import math

import torch


def sound_word_labels(tokens: list[str]) -> list[bool]:
    """True for the tokens that are ground-truth sound words of the ToySounds world."""
    from lightning_agx.toyworld.synth import EVENTS
    events = set(EVENTS)
    return [t.lower() in events for t in tokens]


def roc_auc(scores, labels) -> float:
    """Area under the ROC curve = P(score of a random positive > score of a random negative), ties count 1/2.

    NaN when there is no positive or no negative (the AUC is undefined, e.g. a prompt with only sound words).
    """
    scores = torch.as_tensor(scores, dtype=torch.float64).flatten()
    labels = torch.as_tensor(labels, dtype=torch.bool).flatten()
    if scores.shape != labels.shape:
        raise ValueError(f"scores {tuple(scores.shape)} and labels {tuple(labels.shape)} differ in shape")
    pos, neg = scores[labels], scores[~labels]
    if len(pos) == 0 or len(neg) == 0:
        return math.nan
    diff = pos[:, None] - neg[None, :]  # [P, Q]
    return float(((diff > 0).double() + 0.5 * (diff == 0).double()).mean())
