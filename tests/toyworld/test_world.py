"""The ToySounds world: ground truth, modifiers, determinism, held-out split, tokenizer (seconds, numpy only)."""
import itertools
import warnings

import numpy as np
import pytest
import torch

from lightning_agx.toyworld.dataset import N_SAMPLES, make_clip, make_split
from lightning_agx.toyworld.grammar import (CONNECTOR, FILLER, MODIFIER, SOUND, heldout, sample_scene,
                                            vocabulary)
from lightning_agx.toyworld.synth import EVENTS, SAMPLE_RATE, TONAL_EVENTS, render_event
from lightning_agx.toyworld.tokenizer import VocabTokenizer


def _centroid(x: np.ndarray) -> float:
    mag = np.abs(np.fft.rfft(x)) ** 2  # power-weighted: a sawtooth's 1/n harmonics would swamp a magnitude centroid
    freqs = np.fft.rfftfreq(len(x), 1.0 / SAMPLE_RATE)
    return float(np.sum(freqs * mag) / np.sum(mag))


def _rms_db(x: np.ndarray) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(x ** 2)) + 1e-12))


def test_clip_shapes_and_word_alignment():
    for clip in make_split("train", 50, seed=1):
        assert clip.audio.shape == (N_SAMPLES,) and clip.audio.dtype == np.float32
        assert clip.activity.shape == (len(EVENTS), 75)  # 3 s at 25 Hz
        assert len(clip.words) == len(clip.roles) == len(clip.word_events)
        assert clip.caption == " ".join(clip.words)
        for word, role, event in zip(clip.words, clip.roles, clip.word_events):
            if role == SOUND:
                assert word == event
            elif role == MODIFIER:
                assert word in ("loud", "quiet", "high", "low") and event in EVENTS
            else:
                assert role in (FILLER, CONNECTOR) and event is None
        # every present event is active somewhere, every absent one nowhere
        active = {EVENTS[i] for i in np.flatnonzero(clip.activity.max(1))}
        assert active == set(clip.events)


@pytest.mark.parametrize("seed", range(5))
def test_sequence_first_then_second(seed):
    rng = np.random.default_rng(seed)
    clip = make_clip(rng, kind="sequence")
    x, y = (EVENTS.index(e) for e in clip.events)
    half = clip.activity.shape[1] // 2
    assert clip.activity[x, :half].mean() > 0.6 and clip.activity[x, half + 1:].max() == 0, "X only in the first part"
    assert clip.activity[y, half + 1:].mean() > 0.6 and clip.activity[y, :half].max() == 0, "Y only in the second part"
    assert any(w in ("followed", "then") for w in clip.words)
    # the audio agrees: the first half carries X, the second half Y -> both halves are loud, not silent
    assert _rms_db(clip.audio[:N_SAMPLES // 2]) > -50 and _rms_db(clip.audio[N_SAMPLES // 2:]) > -50


def test_negation_event_is_absent():
    rng = np.random.default_rng(0)
    clip = make_clip(rng, kind="negation")
    i = clip.words.index("without")
    assert clip.roles[i] == CONNECTOR
    absent = clip.word_events[clip.roles.index(SOUND, i)]
    assert absent not in clip.events and len(clip.events) == 1
    assert clip.activity[EVENTS.index(absent)].max() == 0


def test_loud_is_louder_than_quiet():
    rng = np.random.default_rng(0)
    levels = {"loud": [], "quiet": []}
    for clip in (make_clip(rng, kind="single", p_mod=1.0) for _ in range(60)):
        levels[clip.scene.specs[0].level].append(_rms_db(clip.audio))
    gap = np.mean(levels["loud"]) - np.mean(levels["quiet"])
    assert gap > 12.0, f"loud vs quiet should differ by ~20 dB, got {gap:.1f} dB"


@pytest.mark.parametrize("event", TONAL_EVENTS)
def test_high_is_higher_than_low(event):
    lo = render_event(np.random.default_rng(3), event, N_SAMPLES, 0, N_SAMPLES, pitch="low")
    hi = render_event(np.random.default_rng(3), event, N_SAMPLES, 0, N_SAMPLES, pitch="high")
    assert _centroid(hi) > 1.5 * _centroid(lo), (event, _centroid(hi), _centroid(lo))


def test_pitch_ignored_by_noise_events():
    a = render_event(np.random.default_rng(3), "hiss", N_SAMPLES, 0, N_SAMPLES, pitch="low")
    b = render_event(np.random.default_rng(3), "hiss", N_SAMPLES, 0, N_SAMPLES, pitch="high")
    np.testing.assert_allclose(a, b)


def test_deterministic_from_seed():
    a, b, c = make_split("train", 4, seed=7), make_split("train", 4, seed=7), make_split("train", 4, seed=8)
    assert [x.caption for x in a] == [x.caption for x in b]
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.audio, y.audio)
        np.testing.assert_array_equal(x.activity, y.activity)
    assert any(not np.array_equal(x.audio, y.audio) for x, y in zip(a, c))


def test_heldout_combinations_never_in_train():
    templates, pairs = heldout()
    assert len(templates) > 0 and len(pairs) > 0
    rng = np.random.default_rng(0)
    for _ in range(1500):
        s = sample_scene(rng, "train")
        assert s.template not in templates
        if len(s.specs) == 2:
            assert frozenset(sp.event for sp in s.specs) not in pairs
    for _ in range(300):
        s = sample_scene(rng, "test")
        if len(s.specs) == 1:
            assert s.template in templates
        else:
            assert frozenset(sp.event for sp in s.specs) in pairs
    # every event still occurs in some training pair
    seen = {e for p in itertools.combinations(EVENTS, 2) if frozenset(p) not in pairs for e in p}
    assert seen == set(EVENTS)


def test_tokenizer_contract_and_alignment():
    tok = VocabTokenizer()
    assert tok.pad_idx == 0 and tok.unk_idx == 1 and len(tok) == len(vocabulary()) + 2
    texts = ["A loud Beep, then the hiss!", None, "chirp"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # in-vocabulary text must not warn
        tokens, mask = tok(texts)
    assert tokens.shape == mask.shape == (3, 6) and tokens.dtype == torch.int32
    assert mask.tolist() == [[1] * 6, [0] * 6, [1, 0, 0, 0, 0, 0]]
    assert tok.words(texts[0]) == ["a", "loud", "beep", "then", "the", "hiss"]
    assert [tok.itos[i] for i in tokens[0].tolist()] == tok.words(texts[0])
    only_null, null_mask = tok([None])
    assert only_null.tolist() == [[0]] and null_mask.tolist() == [[0]]


def test_tokenizer_unknown_word_warns_not_crashes():
    tok = VocabTokenizer()
    with pytest.warns(UserWarning, match="kazoo"):
        tokens, mask = tok(["a kazoo then a beep"])
    words = tok.words("a kazoo then a beep")
    assert words[1] == "kazoo" and tokens[0, 1].item() == tok.unk_idx
    assert tokens.shape[1] == len(words) and mask.sum().item() == len(words)


def test_every_training_caption_is_in_vocabulary():
    tok = VocabTokenizer()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tok([c.caption for c in make_split("train", 100, seed=2)])


def test_the_vocabulary_appends_the_negation_word_and_keeps_earlier_ids():
    from lightning_agx.toyworld.grammar import filler_words, vocabulary
    words = vocabulary()
    assert words[-1] == "no" and words[:-1] == sorted(words[:-1])  # earlier words keep their ids
    assert {"no", "a", "the", "nearby"} <= filler_words() and not filler_words() & {"beep", "loud", "then", "without"}


def test_negation_scenes_say_without_no_sometimes():
    import numpy as np
    from lightning_agx.toyworld.grammar import sample_scene
    rng = np.random.default_rng(0)
    captions = [sample_scene(rng, "train", kind="negation").caption for _ in range(200)]
    assert any(" without no " in c for c in captions) and any(" without a " in c for c in captions)


def test_word_dropout_turns_only_filler_words_into_unk():
    import torch
    from lightning_agx.toyworld.grammar import filler_words
    from lightning_agx.toyworld.tokenizer import VocabTokenizer
    tokenizer = VocabTokenizer()
    text = "there is a loud beep followed by a hiss nearby"
    clean = tokenizer.encode(text)
    tokenizer.word_dropout, tokenizer.dropout_words = 1.0, filler_words()
    tokenizer.generator = torch.Generator().manual_seed(0)
    dropped = tokenizer.encode(text)
    for word, before, after in zip(tokenizer.words(text), clean, dropped):
        assert after == (tokenizer.unk_idx if word in filler_words() else before), word


def test_caption_kind_reads_the_scene_kind_off_the_caption():
    from lightning_agx.toyworld.grammar import KINDS, caption_kind
    rng = np.random.default_rng(0)
    for kind in KINDS:
        assert {caption_kind(sample_scene(rng, "train", kind=kind).caption) for _ in range(200)} == {kind}
    assert caption_kind("the sound of a beep") == "single"
