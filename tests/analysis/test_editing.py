"""Editing (Eq. 15): the edit touches exactly the chosen entries; the failure-case study runs end to end."""
import math

import pytest
import torch

from analysis.editing import EditingConfig, edit_mask, token_indices
from lightning_agx.explanation import Explanation


def explanation(tokens, steps=50, frame_rate=25.0):
    g = torch.Generator().manual_seed(0)
    return Explanation(" ".join(t.strip("▁") for t in tokens), tokens, torch.rand(steps, len(tokens), generator=g) * 0.5,
                       frame_rate)


def test_edit_sets_only_chosen_tokens_and_seconds():
    e = explanation(["a", "loud", "beep", "then", "hiss"])
    edited = edit_mask(e, [1, 2], start=0.4, end=1.0, value=0.9)  # steps 10..24 at 25 Hz
    changed = edited != e.mask
    assert changed[10:25, 1:3].all() and (edited[10:25, 1:3] == 0.9).all()
    assert changed.sum() == 15 * 2  # nothing else moved (the original values are all below 0.5)
    whole = edit_mask(e, [4], start=0.0, end=None, value=0.1)
    assert (whole[:, 4] == 0.1).all() and torch.equal(whole[:, :4], e.mask[:, :4])
    with pytest.raises(IndexError):
        edit_mask(e, [7], 0.0, 1.0, 0.9)
    with pytest.raises(ValueError):
        edit_mask(e, [0], 1.0, 0.5, 0.9)  # empty interval


def test_token_indices_merge_pieces():
    e = explanation(["▁a", "▁tick", "to", "cks", "▁clock", "</s>"])
    assert token_indices(e, ["ticktocks"]) == [1, 2, 3]
    assert token_indices(e, ["Clock,"]) == [4]
    assert token_indices(explanation(["a", "beep"]), ["beep"]) == [1]


def test_auto_editing_on_debug_model(tmp_path):
    from analysis.editing import run
    config = EditingConfig(output_dir=str(tmp_path), num_prompts=4, max_cases=3, samples=1, batch_size=4)
    config.present = 1.01  # every prompted event counts as missed: failure cases guaranteed (past the [0, 1] check)
    config.model.name = "debug"
    config.method = "audiogenx"  # the debug model has no shipped amortised explainer
    config.explainer.epochs = 1
    config.explainer.hidden = 64
    summary = run(config)
    assert summary["cases"] == 3
    conditions = [r["condition"] for r in summary["results"]]
    assert conditions == ["selection", "unmasked", "mask", "edited"]
    for r in summary["results"]:
        assert math.isfinite(r["fad"]) and r["fad"] >= -1e-6 and r["kl"] >= -1e-6
    assert (tmp_path / "editing_cases.csv").read_text().count("\n") == 4  # header + 3 cases
