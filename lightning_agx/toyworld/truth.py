"""The ToySounds world's ground truth in one place: what each token is, which tokens must matter, where each
event of an "X followed by / then Y" clip sounds, and the AUC of an explanation against it.

Roles. Every word of a ToySounds caption has one of four roles (``toyworld.grammar``): ``sound`` (it names
one of the world's events, ``toyworld.synth.EVENTS``, including the X of "Y without X", a sound word whose
sound is absent), ``modifier`` (loud / quiet / high / low), ``connector`` (the words of "followed by", "then",
"and", "with", "while", "without") and ``filler`` (everything else: prefixes, tails, articles, "no", and any
word outside the world). Two definitions exist and agree:

- the grammar's: `grammar.sample_scene` gives every word the role of the slot it fills (``Scene.roles``,
  ``ToyClip.roles``), known only for captions the grammar drew;
- the lexical one here, `role(word)`: from the word alone, so it also covers any prompt (a user's, a
  shuffled one, a word outside the vocabulary: filler). It is case-insensitive.

No word of the grammar fills two kinds of slot, so `roles(scene.words) == scene.roles` on every caption of
every kind and split (a test checks thousands). ``ToyClip.roles`` stays the grammar's ground truth; use
`roles` where only tokens are known.

Labels. The tokens that must matter are the sound words (`sound_word_labels`); modifiers and connectors
count as negatives there. The AUC (`auc`) is the area under the ROC curve of the audio-level importance
(paper Eq. 7: the token mask averaged over the generation steps) against those labels.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from lightning_agx.toyworld.grammar import CONNECTOR, CONNECTORS, FILLER, LEVEL_WORDS, MODIFIER, PITCH_WORDS, SOUND
from lightning_agx.toyworld.synth import EVENTS

_EVENTS = frozenset(EVENTS)
_MODIFIERS = frozenset(LEVEL_WORDS) | frozenset(PITCH_WORDS)
_CONNECTORS = frozenset(w for group in CONNECTORS.values() for phrase in group for w in phrase)


# ---------------------------------------------------------------------------------------------- roles and labels
def role(word: str) -> str:
    """The role of one ToySounds word: ``sound`` / ``modifier`` / ``connector`` / ``filler`` (case-insensitive;
    a word the world does not know is a filler)."""
    word = word.lower()
    if word in _EVENTS:
        return SOUND
    if word in _MODIFIERS:
        return MODIFIER
    if word in _CONNECTORS:
        return CONNECTOR
    return FILLER


def roles(tokens: list[str]) -> list[str]:
    """`role` of every token."""
    return [role(t) for t in tokens]


def sound_word_labels(tokens: list[str]) -> list[bool]:
    """True for the tokens that are ground-truth sound words of the ToySounds world (the tokens that must matter)."""
    return [role(t) == SOUND for t in tokens]


# ---------------------------------------------------------------------------------------------- AUC
def auc(scores, labels) -> float:
    """Area under the ROC curve = P(score of a random positive > score of a random negative), ties count 1/2.

    Computed by ``torchmetrics.functional.classification.binary_auroc`` (exact, no thresholds binning). The
    scores are first replaced by their dense ranks scaled into [0, 1]: a strictly increasing map, so the AUC
    is unchanged, but binary_auroc squashes scores outside [0, 1] through a sigmoid, which would merge large
    distinct scores into ties (sigmoid(20) == sigmoid(30) in float32). NaN when there is no positive or no
    negative (the AUC is undefined, e.g. a prompt with only sound words).
    """
    from torchmetrics.functional.classification import binary_auroc
    scores = torch.as_tensor(scores, dtype=torch.float64).detach().cpu().flatten()
    labels = torch.as_tensor(labels, dtype=torch.bool).detach().cpu().flatten()
    if scores.shape != labels.shape:
        raise ValueError(f"scores {tuple(scores.shape)} and labels {tuple(labels.shape)} differ in shape")
    if bool(labels.all()) or not bool(labels.any()):
        return math.nan
    _, ranks = torch.unique(scores, sorted=True, return_inverse=True)  # equal scores, equal ranks
    ranks = ranks.double() / max(int(ranks.max()), 1)  # [n] in [0, 1], same order and ties as the scores
    return float(binary_auroc(ranks, labels.long()))


# ---------------------------------------------------------------------------------------------- timing
@dataclass(frozen=True)
class SequenceTruth:
    """Where the two events of an "X followed by / then Y" clip sound, per codec frame."""

    first: int  # token index of X's sound word
    second: int  # token index of Y's sound word
    first_event: int  # index of X in EVENTS (a row of ToyClip.activity)
    second_event: int  # index of Y in EVENTS
    only_first: Tensor  # bool [frames]: X sounds and Y does not
    only_second: Tensor  # bool [frames]: Y sounds and X does not


def sequence_truth(clip, frames: int | None = None) -> SequenceTruth | None:
    """The ground truth of a sequence clip (`toyworld.dataset.ToyClip`) over its first `frames` activity frames
    (all of them when None); None when the clip is not a sequence of exactly two sound words."""
    words = [i for i, r in enumerate(clip.roles) if r == SOUND]
    if clip.scene.kind != "sequence" or len(words) != 2:
        return None
    x, y = (EVENTS.index(clip.word_events[i]) for i in words)
    act = torch.as_tensor(clip.activity)  # [events, frames]
    frames = act.shape[1] if frames is None else min(act.shape[1], frames)
    only_x = (act[x, :frames] > 0) & (act[y, :frames] == 0)
    only_y = (act[y, :frames] > 0) & (act[x, :frames] == 0)
    return SequenceTruth(words[0], words[1], x, y, only_x, only_y)


def timing_ok(mask, clip) -> bool | None:
    """"X followed by Y": X more important while X sounds than while Y sounds, and Y the opposite, in a
    ``[T, N]`` mask (None when the clip is not a clean sequence)."""
    truth = sequence_truth(clip, frames=mask.shape[0])
    if truth is None or truth.only_first.sum() == 0 or truth.only_second.sum() == 0:
        return None
    only_x, only_y, ix, iy = truth.only_first, truth.only_second, truth.first, truth.second
    m = torch.as_tensor(mask)[:len(only_x)]
    return bool(m[only_x, ix].mean() > m[only_y, ix].mean() and m[only_y, iy].mean() > m[only_x, iy].mean())


def truth_metrics(explanations, clips) -> dict:
    """The benchmarks' two ground-truth checks over explanations of `clips` (`toyworld.dataset.ToyClip`):
    ``auc``, the pooled ROC AUC of audio-level importance, sound words and modifiers vs fillers (connectors
    left out); ``timing``, the share of "X followed by Y" prompts `timing_ok` judges right (NaN when none is
    judged), over ``timing_judged`` prompts."""
    scores, positive, keep, timings = [], [], [], []
    for clip, e in zip(clips, explanations):
        token_roles = roles(e.tokens)
        scores += e.audio_level().tolist()
        positive += [r in (SOUND, MODIFIER) for r in token_roles]
        keep += [r != CONNECTOR for r in token_roles]
        timings.append(timing_ok(e.mask, clip))
    scores, positive, keep = torch.tensor(scores), torch.tensor(positive), torch.tensor(keep)
    judged = [t for t in timings if t is not None]
    return {"auc": auc(scores[keep], positive[keep]),
            "timing": sum(judged) / len(judged) if judged else math.nan, "timing_judged": len(judged)}


# ---------------------------------------------------------------------------------------------- the model's truth
class ToySoundsTruth:
    """The ground truth a ToySounds model carries (``tag.ground_truth``): which tokens must matter, their roles,
    and the AUC of an explanation against them."""

    name = "toysounds"

    def labels(self, tokens: list[str]) -> list[bool]:
        """True for a token that must matter (a ToySounds sound word)."""
        return sound_word_labels(tokens)

    def roles(self, tokens: list[str]) -> list[str]:
        return roles(tokens)

    def auc(self, audio_level_importance, tokens: list[str]) -> float:
        """ROC AUC of the audio-level importance ``[N]`` (Eq. 7) against `labels` (NaN if undefined)."""
        return auc(audio_level_importance, self.labels(tokens))

    def __repr__(self) -> str:
        return "ToySoundsTruth()"


__all__ = ["SequenceTruth", "ToySoundsTruth", "auc", "role", "roles", "sequence_truth", "sound_word_labels",
           "timing_ok"]
