"""The build's LM training set: the world's mix, then extra overlap clips from training pairs only."""
import shutil

import pytest
import torch

from lightning_agx.toyworld.build import encode_codes
from lightning_agx.toyworld.grammar import CONNECTORS, heldout
from lightning_agx.toyworld.load import ASSETS
from lightning_agx.toyworld.models import ToyConfig
from lightning_agx.toyworld.synth import EVENTS


@pytest.mark.skipif(not (ASSETS / "codec.safetensors").exists(), reason="shipped codec not built")
def test_encode_codes_appends_overlap_clips_of_training_pairs(tmp_path):
    torch.set_num_threads(1)
    shutil.copy(ASSETS / "codec.safetensors", tmp_path / "codec.safetensors")
    (tmp_path / "_build").mkdir()
    cfg = ToyConfig()
    res = encode_codes(cfg, tmp_path, "cpu", n_clips=6, seed=0, n_overlap=5)
    data = torch.load(tmp_path / "_build" / "codes_train.pt", weights_only=True)
    codes, captions = data["codes"], data["captions"]
    assert res["clips"] == 6 and res["overlap_clips"] == 5
    assert codes.shape == (11, cfg.n_q, int(cfg.duration * cfg.frame_rate)) and len(captions) == 11
    assert codes.dtype == torch.int16 and int(codes.min()) >= 0 and int(codes.max()) < cfg.bins
    overlap_words = {w for phrase in CONNECTORS["overlap"] for w in phrase}
    held_pairs = heldout()[1]
    for caption in captions[6:]:
        words = caption.split()
        assert overlap_words & set(words), caption
        assert frozenset(w for w in words if w in EVENTS) not in held_pairs, f"held-out pair in training: {caption}"
    # the mix part does not depend on how many overlap clips follow
    encode_codes(cfg, tmp_path, "cpu", n_clips=6, seed=0, n_overlap=0)
    assert torch.equal(torch.load(tmp_path / "_build" / "codes_train.pt", weights_only=True)["codes"], codes[:6])


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def time(self):
        return self.now


def run_stage(monkeypatch, pace, steps: int, budget_s: float, start: int = 0):
    """Step a Budget on a fake clock, ``pace(step)`` seconds per step; returns (budget, last step, clock)."""
    from lightning_agx.toyworld import build
    clock = FakeClock()
    monkeypatch.setattr(build.time, "time", clock.time)
    budget = build.Budget(steps=steps, budget_s=budget_s, start=start)
    step = start
    while budget.running(step):
        clock.now += pace(step)
        step += 1
    return budget, step, clock


@pytest.mark.parametrize("start", [0, 300])
def test_budget_shrinks_the_schedule_to_what_fits_and_completes_it(monkeypatch, start):
    from lightning_agx.toyworld.build import lr_at
    budget, step, _ = run_stage(monkeypatch, lambda step: 0.5, 10_000, 100.0, start)  # 200 steps fit in 100 s
    assert budget.total == start + 200, "planned total = what fits the budget"
    assert step == budget.total, "the stage ends on its planned last step (schedule annealed), not on the clock"
    assert lr_at(step - 1, budget.total, 1e-3) < 0.06e-3


def test_budget_keeps_the_requested_steps_when_they_fit(monkeypatch):
    budget, step, _ = run_stage(monkeypatch, lambda step: 0.5, 80, 1000.0)
    assert budget.total == 80 and step == 80


def test_budget_replans_when_the_pace_slows_down(monkeypatch):
    # the first plan (400 steps at 0.25 s) becomes too optimistic when steps slow to 1 s
    budget, step, clock = run_stage(monkeypatch, lambda step: 0.25 if step < 50 else 1.0, 10_000, 100.0)
    assert step == budget.total < 400, "re-planned to the slower pace and still ended on its last planned step"
    assert clock.now <= 100.0 + 1.0


def test_stage_budget_hands_unused_time_to_later_stages():
    from lightning_agx.toyworld.build import STAGE_SHARE, stage_budget
    pending = ["lm", "decoder"]
    share = STAGE_SHARE["lm"] / (STAGE_SHARE["lm"] + STAGE_SHARE["decoder"])
    assert stage_budget("lm", pending, 1000.0) == pytest.approx(1000.0 * share)
    assert stage_budget("decoder", ["decoder"], 300.0) == pytest.approx(300.0), "the last stage gets all that is left"
