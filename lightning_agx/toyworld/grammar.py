"""Caption grammar of the ToySounds world, with per-word ground truth.

A scene is one of four kinds:
  single    "[prefix] [mods] X [tail]"                         X over most of the clip
  overlap   "[prefix] [mods] X and|with|while [art] [mods] Y [tail]"   X and Y overlap
  sequence  "[prefix] [mods] X followed by|then [art] [mods] Y [tail]" X in the first half, Y in the second
  negation  "[prefix] [mods] Y without [art|no] X [tail]"       (~3%) only Y sounds, X is absent

Every word carries a role (``SOUND``, ``MODIFIER``, ``FILLER``, ``CONNECTOR``) and the event it describes
(``None`` for fillers and connectors). The word after "without" is a sound word describing X although X
is absent from the audio (the scene's ``present`` events say what sounds).

Held-out split: a fixed partition (from ``WORLD_SEED``) keeps some prefix/tail templates and some event
pairs out of training. ``train`` scenes never use them; ``test`` scenes always do (singles use a held-out
template, pairs use a held-out pair).
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from lightning_agx.toyworld.synth import EVENTS, SAMPLE_RATE, TONAL_EVENTS

SOUND, MODIFIER, FILLER, CONNECTOR = "sound", "modifier", "filler", "connector"
ROLES = (SOUND, MODIFIER, FILLER, CONNECTOR)

PREFIXES = ((), ("a",), ("the",), ("there", "is", "a"), ("we", "hear", "a"), ("the", "sound", "of", "a"))
TAILS = ((), ("can", "be", "heard"), ("nearby",), ("repeatedly",), ("in", "the", "distance"))
ARTICLES = ((), ("a",), ("the",))
NEGATION_ARTICLES = ARTICLES + (("no",),)  # "Y without no X", the negation study's double negative (a filler)
CONNECTORS = {
    "sequence": (("followed", "by"), ("then",)),
    "overlap": (("and",), ("with",), ("while",)),
    "negation": (("without",),),
}
LEVEL_WORDS = ("loud", "quiet")
PITCH_WORDS = ("high", "low")
KINDS = ("single", "overlap", "sequence", "negation")
KIND_PROBS = (0.45, 0.25, 0.27, 0.03)
SPLITS = ("train", "val", "test")
WORLD_SEED = 0
N_HELDOUT_TEMPLATES = 5
N_HELDOUT_PAIRS = 7
CLIP_SECONDS = 3.0


def vocabulary() -> list[str]:
    """Every word the grammar can produce: the first world's words sorted, then the words added later
    (``no``), so that the ids of the first ones never change."""
    words = set(EVENTS) | set(LEVEL_WORDS) | set(PITCH_WORDS)
    for group in (PREFIXES, TAILS, ARTICLES, *CONNECTORS.values()):
        for phrase in group:
            words.update(phrase)
    return sorted(words) + [w for w in ("no",) if w not in words]


def filler_words() -> set[str]:
    """The words that are only ever fillers (prefixes, tails, articles)."""
    return {w for group in (PREFIXES, TAILS, NEGATION_ARTICLES) for phrase in group for w in phrase}


def caption_kind(caption: str) -> str:
    """The scene kind a caption of this grammar describes, read off its connector ("single" without one)."""
    words = caption.split()
    for kind, phrases in CONNECTORS.items():
        if any(phrase[0] in words for phrase in phrases):
            return kind
    return "single"


def heldout(seed: int = WORLD_SEED) -> tuple[set[tuple[int, int]], set[frozenset[str]]]:
    """The held-out (prefix index, tail index) templates and unordered event pairs."""
    rng = np.random.default_rng(seed)
    templates = list(itertools.product(range(len(PREFIXES)), range(len(TAILS))))
    pairs = [frozenset(p) for p in itertools.combinations(EVENTS, 2)]
    t_idx = rng.choice(len(templates), N_HELDOUT_TEMPLATES, replace=False)
    p_idx = rng.choice(len(pairs), N_HELDOUT_PAIRS, replace=False)
    return {templates[i] for i in t_idx}, {pairs[i] for i in p_idx}


@dataclass
class EventSpec:
    event: str
    start: int  # sample index, inclusive
    stop: int  # sample index, exclusive
    pitch: str | None = None  # "high" | "low" | None
    level: str | None = None  # "loud" | "quiet" | None
    present: bool = True  # False for the X of "Y without X"


@dataclass
class Scene:
    kind: str
    specs: list[EventSpec]
    words: list[str] = field(default_factory=list)
    roles: list[str] = field(default_factory=list)
    word_events: list[str | None] = field(default_factory=list)
    template: tuple[int, int] = (0, 0)

    @property
    def caption(self) -> str:
        return " ".join(self.words)

    @property
    def present(self) -> list[str]:
        return [s.event for s in self.specs if s.present]

    def add(self, words, role, event=None):
        for w in words:
            self.words.append(w)
            self.roles.append(role)
            self.word_events.append(event)


def _seconds(x: float) -> int:
    return int(round(x * SAMPLE_RATE))


def _modifiers(rng: np.random.Generator, event: str, p_mod: float = 0.4) -> tuple[str | None, str | None]:
    level = rng.choice(LEVEL_WORDS) if rng.random() < p_mod else None
    pitch = rng.choice(PITCH_WORDS) if (event in TONAL_EVENTS and rng.random() < p_mod) else None
    return (None if level is None else str(level)), (None if pitch is None else str(pitch))


def _spans(rng: np.random.Generator, kind: str) -> list[tuple[int, int]]:
    u = rng.uniform
    if kind in ("single", "negation"):
        start = u(0.0, 0.5)
        return [(_seconds(start), _seconds(u(start + 1.5, CLIP_SECONDS)))]
    if kind == "overlap":
        return [(_seconds(u(0.0, 0.6)), _seconds(u(2.2, CLIP_SECONDS))) for _ in range(2)]
    if kind == "sequence":  # first event inside [0, 1.4 s), second inside [1.6 s, 3 s)
        return [(_seconds(u(0.0, 0.2)), _seconds(u(1.2, 1.4))), (_seconds(u(1.6, 1.8)), _seconds(u(2.8, CLIP_SECONDS)))]
    raise ValueError(f"unknown scene kind {kind!r}; available: {', '.join(KINDS)}")


def sample_scene(rng: np.random.Generator, split: str = "train", kind: str | None = None,
                 events: tuple[str, ...] | None = None, p_mod: float = 0.4) -> Scene:
    """Draw a scene (events, timing, modifiers, caption words with roles) for ``split``.

    ``kind`` forces the scene kind; ``events`` forces the event(s) (one for "single", two otherwise,
    in caption order; for "negation" the second is the absent one). Forced events bypass the split rules.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; available: {', '.join(SPLITS)}")
    held_templates, held_pairs = heldout()
    if kind is None:
        kind = str(rng.choice(KINDS, p=KIND_PROBS))
    n_events = 1 if kind == "single" else 2
    test = split == "test"
    # template: held-out ones only in test singles; train/val never use them
    all_templates = list(itertools.product(range(len(PREFIXES)), range(len(TAILS))))
    if test and n_events == 1:
        pool = sorted(held_templates)
    else:
        pool = [t for t in all_templates if t not in held_templates]
    template = pool[rng.integers(len(pool))]
    if events is None:
        if n_events == 1:
            events = (str(rng.choice(EVENTS)),)
        else:
            pairs = [tuple(sorted(p)) for p in itertools.combinations(EVENTS, 2)]
            pairs = [p for p in pairs if (frozenset(p) in held_pairs) == test]
            pair = list(pairs[rng.integers(len(pairs))])
            rng.shuffle(pair)
            events = tuple(pair)
    if len(events) != n_events:
        raise ValueError(f"scene kind {kind!r} needs {n_events} event(s), got {events}")
    spans = _spans(rng, kind)
    scene = Scene(kind=kind, specs=[], template=template)
    prefix, tail = PREFIXES[template[0]], TAILS[template[1]]
    scene.add(prefix, FILLER)
    for i, ev in enumerate(events):
        if i == 1:
            connector = CONNECTORS[kind][rng.integers(len(CONNECTORS[kind]))]
            scene.add(connector, CONNECTOR)
            articles = NEGATION_ARTICLES if kind == "negation" else ARTICLES
            scene.add(articles[rng.integers(len(articles))], FILLER)
        present = not (kind == "negation" and i == 1)
        level, pitch = _modifiers(rng, ev, p_mod) if present else (None, None)
        scene.add([w for w in (level, pitch) if w is not None], MODIFIER, ev)
        scene.add([ev], SOUND, ev)
        start, stop = spans[i] if present else (0, 0)
        scene.specs.append(EventSpec(ev, start, stop, pitch=pitch, level=level, present=present))
    scene.add(tail, FILLER)
    return scene
