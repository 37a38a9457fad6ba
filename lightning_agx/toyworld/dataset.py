"""ToySounds clips: caption + audio + ground truth (which event sounds when, which word means what)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lightning_agx.toyworld.grammar import CLIP_SECONDS, SPLITS, Scene, sample_scene
from lightning_agx.toyworld.synth import EVENTS, SAMPLE_RATE, render_event

N_SAMPLES = int(CLIP_SECONDS * SAMPLE_RATE)  # 48,000
FRAME_RATE = 25.0  # the codec's frame rate; activity is given per frame by default
NOISE_FLOOR_DBFS = -70.0


@dataclass
class ToyClip:
    caption: str
    words: list[str]
    roles: list[str]  # per word: "sound" | "modifier" | "filler" | "connector"
    word_events: list[str | None]  # per word: the event it describes (None for fillers/connectors)
    audio: np.ndarray  # float32[N_SAMPLES]
    activity: np.ndarray  # float32[len(EVENTS), frames], 1 where the event sounds
    events: list[str]  # events present in the audio, caption order
    scene: Scene

    @property
    def labels(self) -> np.ndarray:
        """float32[len(EVENTS)]: multi-hot of the present events."""
        return (self.activity.max(axis=1) > 0).astype(np.float32)


def activity_frames(scene: Scene, frame_rate: float = FRAME_RATE, n_samples: int = N_SAMPLES) -> np.ndarray:
    """float32[len(EVENTS), frames]: 1 where at least half of the frame lies in an event's span."""
    hop = SAMPLE_RATE / frame_rate
    n_frames = int(np.ceil(n_samples / hop))
    lo = np.arange(n_frames) * hop
    hi = np.minimum(lo + hop, n_samples)
    act = np.zeros((len(EVENTS), n_frames), np.float32)
    for spec in scene.specs:
        if not spec.present:
            continue
        overlap = np.clip(np.minimum(hi, spec.stop) - np.maximum(lo, spec.start), 0, None)
        act[EVENTS.index(spec.event)] = np.maximum(act[EVENTS.index(spec.event)], overlap >= (hi - lo) / 2)
    return act


def render_scene(rng: np.random.Generator, scene: Scene, n_samples: int = N_SAMPLES) -> np.ndarray:
    audio = rng.standard_normal(n_samples) * 10 ** (NOISE_FLOOR_DBFS / 20)
    for spec in scene.specs:
        if spec.present:
            audio += render_event(rng, spec.event, n_samples, spec.start, spec.stop, spec.pitch, spec.level)
    return np.clip(audio, -1.0, 1.0).astype(np.float32)


def make_clip(rng: np.random.Generator, split: str = "train", kind: str | None = None,
              events: tuple[str, ...] | None = None, frame_rate: float = FRAME_RATE, p_mod: float = 0.4) -> ToyClip:
    """One clip drawn from ``rng`` (see :func:`grammar.sample_scene` for ``kind`` and ``events``)."""
    scene = sample_scene(rng, split, kind=kind, events=events, p_mod=p_mod)
    audio = render_scene(rng, scene)
    return ToyClip(caption=scene.caption, words=list(scene.words), roles=list(scene.roles),
                   word_events=list(scene.word_events), audio=audio,
                   activity=activity_frames(scene, frame_rate), events=scene.present, scene=scene)


def split_rng(split: str, seed: int) -> np.random.Generator:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; available: {', '.join(SPLITS)}")
    return np.random.default_rng([seed, SPLITS.index(split)])


def make_split(split: str, n: int, seed: int = 0, **kwargs) -> list[ToyClip]:
    """``n`` clips of ``split`` ("train", "val" or "test" = held-out combinations), deterministic from ``seed``."""
    rng = split_rng(split, seed)
    return [make_clip(rng, split, **kwargs) for _ in range(n)]


def stack_audio(clips: list[ToyClip]) -> np.ndarray:
    """float32[B, 1, N_SAMPLES]."""
    return np.stack([c.audio for c in clips])[:, None, :]
