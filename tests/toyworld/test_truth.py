"""The ToySounds world's ground truth (lightning_agx.toyworld.truth): roles, labels, the AUC, sequence timing,
and the held-out prompts (lightning_agx.toyworld.heldout)."""
import math

import numpy as np
import pytest
import torch

from lightning_agx.toyworld.grammar import KINDS, SPLITS, sample_scene
from lightning_agx.toyworld.heldout import heldout_prompts
from lightning_agx.toyworld.truth import (ToySoundsTruth, auc, role, roles, sequence_truth, sound_word_labels)


def pairwise_auc(scores, labels) -> float:
    """The definition: P(score of a random positive > score of a random negative), ties count 1/2."""
    scores = torch.as_tensor(scores, dtype=torch.float64).flatten()
    labels = torch.as_tensor(labels, dtype=torch.bool).flatten()
    pos, neg = scores[labels], scores[~labels]
    if len(pos) == 0 or len(neg) == 0:
        return math.nan
    diff = pos[:, None] - neg[None, :]
    return float(((diff > 0).double() + 0.5 * (diff == 0).double()).mean())


# ---------------------------------------------------------------------------------------------- AUC
def test_auc_on_hand_made_inputs():
    assert auc([0.9, 0.8, 0.1, 0.2], [1, 1, 0, 0]) == 1.0
    assert auc([0.1, 0.2, 0.9, 0.8], [1, 1, 0, 0]) == 0.0
    assert auc([0.5, 0.5, 0.5], [1, 0, 0]) == 0.5, "ties count one half"
    assert auc([0.9, 0.4, 0.6, 0.1], [1, 1, 0, 0]) == pytest.approx(3 / 4), "3 of 4 (pos, neg) pairs ordered"
    assert math.isnan(auc([0.3, 0.7], [1, 1])), "no negative: undefined, not 0 or 1"
    assert math.isnan(auc([0.3, 0.7], [0, 0])), "no positive: undefined"
    with pytest.raises(ValueError, match="shape"):
        auc([0.1, 0.2], [1])


def test_auc_of_scores_outside_0_1_is_not_squashed_into_ties():
    # binary_auroc puts such scores through a sigmoid (sigmoid(20) == sigmoid(30) in float32); auc ranks first
    assert auc([20.0, 30.0, 1.0], [0, 1, 0]) == 1.0
    assert auc([-300.0, -200.0, 5.0, 1e6], [1, 0, 1, 0]) == pytest.approx(pairwise_auc([-300.0, -200.0, 5.0, 1e6],
                                                                                          [1, 0, 1, 0]))


def test_binary_auroc_auc_equals_the_pairwise_definition_with_ties():
    generator = torch.Generator().manual_seed(0)
    compared = 0
    for _ in range(300):
        n = int(torch.randint(2, 40, (1,), generator=generator))
        scale = float(torch.randn(1, generator=generator)) * 10  # negative, large, small scores too
        scores = torch.randint(0, 5, (n,), generator=generator).double() * scale  # few distinct values: ties
        labels = torch.rand(n, generator=generator) < 0.4
        expected = pairwise_auc(scores, labels)
        if math.isnan(expected):
            assert math.isnan(auc(scores, labels))
            continue
        assert auc(scores, labels) == pytest.approx(expected, abs=1e-6)  # binary_auroc sums in float32
        compared += 1
    assert compared > 200


# ---------------------------------------------------------------------------------------------- roles and labels
def test_roles_of_each_kind():
    tokens = ["the", "sound", "of", "a", "loud", "high", "beep", "followed", "by", "a", "drip", "then", "hiss",
              "without", "no", "knock", "and", "with", "while", "quiet", "low", "nearby", "suddenly"]
    assert roles(tokens) == ["filler", "filler", "filler", "filler", "modifier", "modifier", "sound", "connector",
                             "connector", "filler", "sound", "connector", "sound", "connector", "filler", "sound",
                             "connector", "connector", "connector", "modifier", "modifier", "filler", "filler"]
    assert {role(t) for t in tokens} == {"sound", "modifier", "connector", "filler"}
    assert role("Beep") == "sound" and role("LOUD") == "modifier", "case-insensitive, like the sound-word labels"
    assert role("<unk>") == "filler"


def test_lexical_roles_equal_the_grammar_roles_on_every_kind_and_split():
    rng = np.random.default_rng(0)
    for split in SPLITS:
        for i in range(400):
            scene = sample_scene(rng, split, kind=KINDS[i % len(KINDS)])
            assert roles(scene.words) == scene.roles, scene.words


def test_sound_word_labels_follow_the_toysounds_events():
    assert sound_word_labels(["the", "sound", "of", "a", "beep", "then", "drip", "without", "hiss"]) == \
        [False, False, False, False, True, False, True, False, True]


def test_toysounds_truth_object():
    truth = ToySoundsTruth()
    tokens = ["a", "loud", "beep", "then", "drip"]
    assert truth.labels(tokens) == [False, False, True, False, True]
    assert truth.roles(tokens) == ["filler", "modifier", "sound", "connector", "sound"]
    assert truth.auc(torch.tensor([0.1, 0.2, 0.9, 0.3, 0.8]), tokens) == 1.0
    assert truth.auc([0.1, 0.2, 0.3, 0.9, 0.8], tokens) == pytest.approx(4 / 6)
    assert math.isnan(truth.auc([0.5, 0.5], ["beep", "drip"])), "only sound words: undefined"


def test_the_toysounds_model_carries_the_truth_and_the_debug_model_none(debug_tag):
    from lightning_agx.models import load_model
    assert debug_tag.ground_truth is None
    try:
        tag = load_model("toysounds")
    except Exception as e:  # weights not built
        pytest.skip(f"the ToySounds model does not load: {type(e).__name__}: {str(e)[:120]}")
    assert isinstance(tag.ground_truth, ToySoundsTruth)


# ---------------------------------------------------------------------------------------------- timing
def test_sequence_truth_says_where_each_event_sounds():
    from lightning_agx.toyworld.dataset import make_clip
    from lightning_agx.toyworld.synth import EVENTS
    rng = np.random.default_rng(3)
    clip = make_clip(rng, "test", kind="sequence")
    truth = sequence_truth(clip)
    x, y = (i for i, r in enumerate(clip.roles) if r == "sound")
    assert (truth.first, truth.second) == (x, y)
    assert (EVENTS[truth.first_event], EVENTS[truth.second_event]) == (clip.words[x], clip.words[y])
    frames = clip.activity.shape[1]
    assert truth.only_first.shape == truth.only_second.shape == (frames,)
    assert truth.only_first.any() and truth.only_second.any() and not (truth.only_first & truth.only_second).any()
    first_frames, second_frames = truth.only_first.nonzero().flatten(), truth.only_second.nonzero().flatten()
    assert first_frames.max() < second_frames.min(), "X first, then Y"
    assert sequence_truth(clip, frames=10).only_first.shape == (10,)
    assert sequence_truth(clip, frames=10 * frames).only_first.shape == (frames,), "never past the clip"
    for kind in ("single", "overlap", "negation"):
        assert sequence_truth(make_clip(rng, "test", kind=kind)) is None


# ---------------------------------------------------------------------------------------------- held-out prompts
def test_heldout_prompts_are_distinct_deterministic_and_have_sound_words():
    prompts = heldout_prompts(12, seed=0)
    assert prompts == heldout_prompts(12, seed=0) and len(set(prompts)) == 12
    assert prompts != heldout_prompts(12, seed=1)
    assert all(any(sound_word_labels(p.split())) for p in prompts)
    with pytest.raises(ValueError, match="at least 1"):
        heldout_prompts(0)


def test_heldout_clips_come_from_the_split_asked_for():
    """The ground-truth benchmark's prompts: held-out event pairs on "test", training pairs on "val" (to tune on)."""
    from lightning_agx.toyworld.grammar import heldout
    from lightning_agx.toyworld.heldout import heldout_clips
    held_pairs = heldout()[1]
    test, val = heldout_clips(8, 2024), heldout_clips(8, 2024, "val")
    assert [c.caption for c in test] == [c.caption for c in heldout_clips(8, 2024, "test")]
    for clips, held in ((test, True), (val, False)):
        two = [c for c in clips if len(c.scene.specs) == 2]
        assert two and all((frozenset(sp.event for sp in c.scene.specs) in held_pairs) == held for c in two)
    with pytest.raises(ValueError, match="unknown split"):
        heldout_clips(2, 2024, "dev")


def test_truth_metrics_pool_sound_words_against_fillers():
    """The benchmarks' shared checks: a mask that keeps exactly the sound words and modifiers has AUC 1."""
    from lightning_agx.explanation import Explanation
    from lightning_agx.toyworld.heldout import heldout_clips
    from lightning_agx.toyworld.truth import roles, truth_metrics
    clips = heldout_clips(6, 2024)
    explanations = []
    for clip in clips:
        keep = torch.tensor([float(r in ("sound", "modifier")) for r in roles(clip.words)])
        explanations.append(Explanation(clip.caption, list(clip.words), keep.repeat(75, 1), 25.0))
    result = truth_metrics(explanations, clips)
    assert result["auc"] == 1.0 and 0 <= result["timing_judged"] <= len(clips)
    flipped = [Explanation(e.prompt, e.tokens, 1 - e.mask, 25.0) for e in explanations]
    assert truth_metrics(flipped, clips)["auc"] == 0.0
