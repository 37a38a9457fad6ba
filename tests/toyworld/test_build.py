"""The ToySounds build: its LM training set (the world's mix, then extra overlap clips from training pairs only),
its time budget, and a tiny build that gives the same weights straight and resumed, and as before the build
became a package."""
import hashlib
import math
import json
import platform
import shutil

import pytest
import torch

from lightning_agx.toyworld.build.codes import encode_codes
from lightning_agx.toyworld.grammar import CONNECTORS, heldout
from lightning_agx.toyworld.load import ASSETS
from lightning_agx.explainer import ExplainerConfig
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
    from lightning_agx.toyworld.build import loop
    clock = FakeClock()
    monkeypatch.setattr(loop.time, "time", clock.time)
    budget = loop.Budget(steps=steps, budget_s=budget_s, start=start)
    step = start
    while budget.running(step):
        clock.now += pace(step)
        step += 1
    return budget, step, clock


@pytest.mark.parametrize("start", [0, 300])
def test_budget_shrinks_the_schedule_to_what_fits_and_completes_it(monkeypatch, start):
    from lightning_agx.toyworld.build.loop import lr_at
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


def test_budget_plans_again_upwards_when_a_slow_stretch_ends(monkeypatch):
    # 0.25 s a step, 1 s for steps 50-99 (another job on the cores), then 0.25 s again: the plan made in the slow
    # stretch grows back, never above the requested steps, and the stage still ends on its planned last step
    seen = []
    from lightning_agx.toyworld.build import loop
    running = loop.Budget.running
    monkeypatch.setattr(loop.Budget, "running", lambda self, step: (seen.append(self.total), running(self, step))[1])
    budget, step, clock = run_stage(monkeypatch, lambda step: 1.0 if 50 <= step < 100 else 0.25, 10_000, 200.0)
    slowest = min(seen)
    assert slowest < 400 < budget.total <= 10_000 and step == budget.total and clock.now <= 201.0
    budget, step, _ = run_stage(monkeypatch, lambda step: 1.0 if 50 <= step < 100 else 0.25, 300, 200.0)
    assert budget.total == step == 300


def test_stage_budget_hands_unused_time_to_later_stages():
    from lightning_agx.toyworld.build import STAGE_SHARE, stage_budget
    pending = ["lm", "decoder"]
    share = STAGE_SHARE["lm"] / (STAGE_SHARE["lm"] + STAGE_SHARE["decoder"])
    assert stage_budget("lm", pending, 1000.0) == pytest.approx(1000.0 * share)
    assert stage_budget("decoder", ["decoder"], 300.0) == pytest.approx(300.0), "the last stage gets all that is left"


# The tiny build: every stage that trains weights, a few steps each, a time budget that never binds (so the
# planned steps, and the weights, do not depend on the machine's pace). robust (it decodes 800 clips) and eval
# (450 generated prompts) take a minute each on one thread and are left out.
TINY = ["--threads", "1", "--minutes-budget", "100000", "--classifier-steps", "3", "--codec-steps", "3",
        "--lm-steps", "3", "--decoder-steps", "3", "--lm-clips", "8", "--lm-overlap-clips", "4"]
TINY_STAGES = "classifier,codec,codes,lm,decoder"
TINY_FILES = ("classifier.safetensors", "codec.safetensors", "lm.safetensors", "_build/codes_train.pt")
# Across machines the tiny build is pinned within a tolerance, never bit for bit: float kernels differ between
# CPUs (four x86_64 kinds seen here gave four sets of sha256: the same classifier, LM and codes on two of them,
# a codec differing in its last bits). Pinned: the L2 norm and mean |value| of the classifier's and the codec's
# float tensors, from this build on torch 2.11 (x86_64, AMD EPYC, 2026-12-07), to a relative 1e-3: one more
# training step of every stage moves them by 3.2e-2 / 1.2e-3 (classifier) and 1.0e-2 / 1.0e-2 (codec), float
# rounding far less. The LM is not pinned across machines: three steps move its norms by 1e-6, as little as
# rounding might, and one CPU kind gave other codes to train it on. Two runs on the same machine (straight and
# resumed) are compared bit for bit, every file.
PINNED_ON = ("2.11", "x86_64")
PINNED_NORMS = {  # file: (L2 norm, mean |value|) of its float tensors
    "classifier.safetensors": (35.13471634883073, 0.0308115754765676),
    "codec.safetensors": (325945.6288386014, 32.83049277918782),
}


def _norms(out) -> dict[str, tuple[float, float]]:
    from safetensors.torch import load_file
    result = {}
    for name in PINNED_NORMS:
        floats = [v.double() for v in load_file(str(out / name)).values() if v.is_floating_point()]
        norm = math.sqrt(sum(float((v * v).sum()) for v in floats))
        result[name] = (norm, sum(float(v.abs().sum()) for v in floats) / sum(v.numel() for v in floats))
    return result


def _sha256(out) -> dict[str, str]:
    return {name: hashlib.sha256((out / name).read_bytes()).hexdigest() for name in TINY_FILES}


@pytest.mark.slow
def test_tiny_build_gives_the_same_weights_straight_resumed_and_as_before(tmp_path):
    from lightning_agx.toyworld.build import main
    torch.set_num_threads(1)
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    main(["--out", str(straight), *TINY, "--stages", TINY_STAGES])
    main(["--out", str(resumed), *TINY, "--stages", "classifier,codec"])  # stopped after two stages ...
    main(["--out", str(resumed), *TINY, "--stages", TINY_STAGES])  # ... and run again: those two are skipped
    report = json.loads((resumed / "build_report.json").read_text())
    assert list(report["stages"]) == TINY_STAGES.split(",")
    assert report["stages"]["classifier"]["command"].endswith("--stages classifier,codec"), "skipped, not rerun"
    lm = report["stages"]["lm"]
    assert (lm["steps"], lm["planned_steps"], lm["requested_steps"]) == (3, 3, 3), "the budget did not bind"
    assert _sha256(straight) == _sha256(resumed)
    if (torch.__version__[:4], platform.machine()) == PINNED_ON:
        for name, found in _norms(straight).items():
            assert found == pytest.approx(PINNED_NORMS[name], rel=1e-3), f"{name} differs from the pinned build's"


def test_the_build_runs_as_a_module_and_checks_its_stages_before_writing(tmp_path, monkeypatch, capsys):
    import runpy
    import sys

    from lightning_agx.toyworld.build import STAGES
    out = tmp_path / "out"
    monkeypatch.setattr(sys, "argv", ["build", "--out", str(out), "--stages", "codec,nope"])
    with pytest.raises(SystemExit) as stop:
        runpy.run_module("lightning_agx.toyworld.build", run_name="__main__")  # python -m lightning_agx.toyworld.build
    err = capsys.readouterr().err
    assert stop.value.code == 2 and "unknown stage(s) ['nope']; available: " + ", ".join(STAGES) in err, err
    assert len(err.strip().splitlines()) == 1 and not out.exists()
    assert ",".join(STAGES) == "classifier,codec,codes,lm,decoder,robust,eval,diffusion,diffusion_eval"
    from lightning_agx.toyworld.build import LM_STAGES
    assert ",".join(LM_STAGES) == "classifier,codec,codes,lm,decoder,robust,eval"  # the default --stages


@pytest.mark.slow
def test_tiny_diffusion_build_trains_and_runs_its_checks(tmp_path):
    """The diffusion stages on a tiny build's codec and codes (the loop's resume is the LM stages' own, tested
    above): weights under 25 MB, the latent statistics saved, the LM's three checks on its audio."""
    from lightning_agx.toyworld.build import main
    from lightning_agx.toyworld.diffusion import load_diffusion
    torch.set_num_threads(1)
    out = tmp_path / "out"
    main(["--out", str(out), *TINY, "--stages", "classifier,codec,codes"])
    main(["--out", str(out), "--threads", "1", "--minutes-budget", "100000", "--diffusion-batch", "4",
          "--diffusion-eval-prompts", "2", "--stages", "diffusion,diffusion_eval", "--diffusion-steps", "4",
          "--diffusion-filler-mask", "0.5", "--diffusion-position-channels", "8", "--diffusion-layers", "2",
          "--diffusion-heads", "2"])  # the shipped recipe's pure-noise and sequence shares by default
    stages = json.loads((out / "build_report.json").read_text())["stages"]
    assert stages["diffusion"]["steps"] == 4 and stages["diffusion"]["megabytes"] < 25
    checks = stages["diffusion_eval"]
    assert set(checks["passed"]) == {"diffusion_single_top1", "diffusion_pair_top3", "diffusion_sequence_order"}
    assert all(0 <= checks[k] <= 1 for k in checks["passed"])
    model = load_diffusion(out)
    assert len(model.cfg.latent_mean) == 64 and min(model.cfg.latent_std) > 0
    assert (model.cfg.layers, model.cfg.heads, model.cfg.position_channels) == (2, 2, 8)
    assert len(model.denoiser.transformer_blocks) == 2
    from lightning_agx.api import explain
    from lightning_agx.toyworld.diffusion import load_toysounds_diffusion
    tag = load_toysounds_diffusion(directory=str(out))  # the diffusers adapter over the built model (a str path too)
    assert (tag.frame_rate, tag.num_steps(), tag.dim) == (25.0, 75, 64)
    [e] = explain(tag, ["a loud beep followed by a hiss"], config=ExplainerConfig(epochs=2),
                  trainer={"enable_progress_bar": False})
    assert e.mask.shape == (75, 7) and e.audio.shape == (1, 48000) and e.tokens[1] == "loud"


def test_filler_masks_edit_only_the_filler_tokens_of_conditional_rows():
    """Training's filler masking is the explainer's post-softmax edit: the identity at p = 0; at p = 1 it changes
    a prompt with fillers, not one without (nor the unconditional row), and the denoiser still gets gradients."""
    import numpy as np

    from lightning_agx.toyworld.build.diffusion import filler_masks
    from lightning_agx.toyworld.diffusion import DiffusionConfig, ToyDiffusion
    torch.manual_seed(0)
    model = ToyDiffusion(DiffusionConfig(latent_mean=[0.0] * 64, latent_std=[1.0] * 64, text_layers=0, layers=2))
    prompts = ["the sound of a beep followed by a buzz in the distance", "beep then buzz", None]
    x, t = torch.randn(3, 64, 75), torch.tensor([500, 500, 500])
    text = model.encode_text(prompts)
    base = model.predict(x, t, text)
    with filler_masks(model, prompts, 0.0, np.random.default_rng(0)):
        assert torch.allclose(model.predict(x, t, text), base, atol=1e-5)
    with filler_masks(model, prompts, 1.0, np.random.default_rng(0)):
        masked = model.predict(x, t, text)
    assert (masked[0] - base[0]).abs().max() > 1e-3
    assert torch.allclose(masked[1:], base[1:], atol=1e-5)  # no filler in "beep then buzz"; the None row
    masked[0].pow(2).sum().backward()
    assert model.denoiser.transformer_blocks[0].attn2.to_q.weight.grad.abs().sum() > 0
    assert all(type(p).__name__ != "EditedAttnProcessor" for p in model.denoiser.attn_processors.values())


def test_encode_text_gives_zeros_for_the_unconditional_prompt_in_eval_mode():
    """A None prompt (the unconditional branch) is all zeros, not NaN, in eval mode too, where torch's fused
    encoder path returns NaN for a row whose keys are all padding; the other rows are as in a batch of their own."""
    from lightning_agx.toyworld.diffusion import DiffusionConfig, ToyDiffusion
    torch.manual_seed(0)
    model = ToyDiffusion(DiffusionConfig(latent_mean=[0.0] * 64, latent_std=[1.0] * 64, layers=1)).eval()
    with torch.no_grad():
        text = model.encode_text(["a knock then a beep", None])
        alone = model.encode_text(["a knock then a beep"])
    assert torch.isfinite(text).all() and text[1].abs().max() == 0
    assert text[0].abs().max() > 0 and torch.allclose(text[0], alone[0], atol=1e-6)


def test_diffusion_batches_take_their_shares_of_sequences_and_pure_noise():
    """`--diffusion-sequence-share` and `--diffusion-pure-noise`: the first rows of a batch are sequence clips, the
    last rows sit at the last timestep, the rest stay uniform; shares of 0 draw exactly as before the options."""
    import numpy as np

    from lightning_agx.toyworld.build.diffusion import draw_clips, draw_timesteps
    sequences = np.array([3, 7, 11])
    idx = draw_clips(np.random.default_rng(0), 100, 32, sequences, 8)
    assert set(idx[:8]) <= set(sequences) and len(set(idx[8:])) > 10
    t = draw_timesteps(np.random.default_rng(0), 1000, 32, 8)
    assert (t[-8:] == 999).all() and (t[:24] < 999).all() and t[:24].std() > 100
    assert (draw_clips(np.random.default_rng(1), 100, 32, sequences, 0)
            == np.random.default_rng(1).integers(0, 100, 32)).all()
    assert (draw_timesteps(np.random.default_rng(1), 1000, 32, 0) == np.random.default_rng(1).integers(0, 1000, 32)).all()


def test_diffusion_shares_outside_zero_one_fail_before_any_work(tmp_path):
    from lightning_agx.toyworld.build.diffusion import train_diffusion
    from lightning_agx.toyworld.models import ToyConfig
    with pytest.raises(ValueError, match=r"pure_noise is a share of each batch: give a number in \[0, 1\], not 1.5"):
        train_diffusion(ToyConfig(), tmp_path, "cpu", steps=1, budget_s=1, seed=0, pure_noise=1.5)
    assert not any(tmp_path.iterdir())


def test_diffusion_ema_outside_zero_one_fails_before_any_work(tmp_path):
    from lightning_agx.toyworld.build.diffusion import train_diffusion
    from lightning_agx.toyworld.models import ToyConfig
    with pytest.raises(ValueError, match=r"give a number in \(0, 1\) such as 0.999, or 0 for none, not 1.0"):
        train_diffusion(ToyConfig(), tmp_path, "cpu", steps=1, budget_s=1, seed=0, ema=1.0)
    assert not any(tmp_path.iterdir())


def test_ema_follows_the_weights_with_its_warm_up_and_copies_integer_buffers():
    from lightning_agx.toyworld.build.loop import EMA
    model = torch.nn.BatchNorm1d(3)  # a float parameter and an integer buffer (num_batches_tracked)
    average = EMA(model, 0.9)
    start = model.weight.detach().clone()
    with torch.no_grad():
        model.weight.add_(1.0)
        model.num_batches_tracked.fill_(7)
    average.update(model, step=0)  # warm-up: keep min(0.9, 1/10) = 0.1 of the average
    assert torch.allclose(average.state["weight"], start + 0.9)
    assert int(average.state["num_batches_tracked"]) == 7
    average.update(model, step=1000)  # past the warm-up: keep 0.9
    assert torch.allclose(average.state["weight"], 0.9 * (start + 0.9) + 0.1 * (start + 1.0))
    assert torch.equal(model.weight, start + 1.0), "the model's own weights are untouched"
    with pytest.raises(ValueError, match=r"an EMA decay is in \(0, 1\)"):
        EMA(model, 1.0)


def test_training_with_ema_saves_the_average_and_resumes_it_exactly(tmp_path, monkeypatch):
    """A run that dies after a checkpoint and is started again ends with the same average (and last weights) as
    a straight run: the average is kept in the checkpoint."""
    from safetensors.torch import load_file

    from lightning_agx.toyworld.build import loop

    monkeypatch.setattr(loop, "LOG_EVERY", 2)

    def run(out, die_at=None):
        torch.manual_seed(0)
        model = torch.nn.Linear(4, 1)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
        (out / "_build").mkdir(parents=True, exist_ok=True)

        def make_step(start):  # batch i is the same in every run (the build's streams are seeded by start)
            count = iter(range(start, 10 ** 6))

            def step_loss():
                i = next(count)
                if i == die_at:
                    raise RuntimeError("killed")
                x = torch.randn(8, 4, generator=torch.Generator().manual_seed(i))
                loss = (model(x) - x.sum(1, keepdim=True)).pow(2).mean()
                return loss, (loss,)
            return step_loss
        return loop.train("toy", model, opt, make_step, metrics=("mse",), steps=6, budget_s=1e6, peak_lr=1e-2,
                          warmup=1, weights=out / "toy.safetensors", ckpt=out / "_build" / "ckpt_toy.pt", ema=0.5)

    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    run(straight)
    with pytest.raises(RuntimeError, match="killed"):
        run(resumed, die_at=3)  # checkpointed at step 2, dies in step 3
    assert "ema" in torch.load(resumed / "_build" / "ckpt_toy.pt", weights_only=True)
    run(resumed)
    for name in ("toy.safetensors", "_build/toy.raw.safetensors"):
        a, b = load_file(straight / name), load_file(resumed / name)
        assert all(torch.equal(a[k], b[k]) for k in a), name
    average, last = load_file(straight / "toy.safetensors"), load_file(straight / "_build/toy.raw.safetensors")
    assert not torch.equal(average["weight"], last["weight"]), "the saved weights are the average, not the last"
