"""Classifier adapters: resampling, accepted shapes, embeddings, load_classifier by name, PaSST weight errors."""
import math
import os
from pathlib import Path

import pytest
import torch
from torch import nn

from lightning_agx.classifiers import (CLASSIFIERS, AudioClassifier, DebugClassifier, ToySoundsClassifier,
                                      load_classifier)
from lightning_agx.errors import UserError

LABELS = [f"event{i}" for i in range(10)]


class TinySpectralNet(nn.Module):
    """Stand-in with the toyworld contract: forward(wav [B, 1, samples] at 16 kHz) -> logits [B, 10]; .labels.

    Frequency-selective on purpose (a magnitude spectrum over 10 ms frames), so feeding it audio at the
    wrong rate moves the 1 kHz peak and changes the logits.
    """

    def __init__(self):
        super().__init__()
        self.labels = list(LABELS)
        self.proj = nn.Linear(81, 16)  # |rfft| of 160-sample frames: 100 Hz bins up to 8 kHz
        self.head = nn.Linear(16, 10)

    def forward(self, wav):
        assert wav.dim() == 3 and wav.shape[1] == 1, wav.shape
        frames = wav[:, 0, : wav.shape[-1] // 160 * 160].reshape(wav.shape[0], -1, 160)  # [B, F, 160]
        spec = torch.fft.rfft(frames, dim=-1).abs()  # [B, F, 81]
        return self.head(torch.relu(self.proj(spec)).mean(1))  # [B, 10]


def _sine(freq, sr, seconds=0.5):
    t = torch.arange(int(sr * seconds)) / sr
    return torch.sin(2 * math.pi * freq * t)[None]  # [1, samples]


@pytest.fixture
def clf():
    torch.manual_seed(0)
    return ToySoundsClassifier(TinySpectralNet())


def test_toysounds_contract(clf):
    assert isinstance(clf, AudioClassifier)
    assert clf.sample_rate == 16000 and clf.labels == LABELS


def test_resampling_is_applied(clf):
    # Same 0.5 s of a 1 kHz sine; the resampler's edge effects stay within the tolerance.
    ref = clf.logits(_sine(1000, 16000), 16000)
    resampled = clf.logits(_sine(1000, 32000), 32000)
    misread = clf.module(_sine(1000, 32000)[:, None, :8000])  # the 32 kHz samples read as 16 kHz
    err = (resampled - ref).abs().max().item()
    assert err < 0.01 * ref.abs().max().item(), f"resampled logits differ by {err}"
    assert (misread - ref).abs().max().item() > 10 * err, "the test net must be able to tell the rates apart"


def test_non_integer_ratio_resampling(clf):
    ref = clf.logits(_sine(1000, 16000), 16000)
    out = clf.logits(_sine(1000, 22050), 22050)
    assert (out - ref).abs().max().item() < 0.05 * ref.abs().max().item()


@pytest.mark.parametrize("shape", [(3, 8000), (3, 1, 8000)])
def test_accepted_shapes(clf, shape):
    wav = torch.randn(*shape)
    logits, emb = clf.logits(wav, 16000), clf.embed(wav, 16000)
    assert logits.shape == (3, 10) and emb.shape == (3, 16)
    assert torch.allclose(clf(wav, 16000), logits)


@pytest.mark.parametrize("shape", [(3, 2, 8000), (8000,), (1, 1, 1, 8000)])
def test_rejected_shapes(clf, shape):
    with pytest.raises(ValueError, match="mono audio"):
        clf.logits(torch.randn(*shape), 16000)


def test_bad_sample_rate(clf):
    with pytest.raises(ValueError, match="sample_rate"):
        clf.logits(torch.randn(1, 100), 16000.0)


def test_embed_is_the_head_input(clf):
    wav = torch.randn(2, 1, 4000)
    emb = clf.embed(wav, 16000)
    assert torch.allclose(clf.module.head(emb), clf.logits(wav, 16000), atol=1e-6)
    assert not clf.module.head._forward_hooks, "the hook must be removed after use"


def test_embed_falls_back_to_logits_without_linear():
    class NoLinear(nn.Module):
        labels = LABELS

        def forward(self, wav):
            return wav[:, 0, :10]

    c = ToySoundsClassifier(NoLinear())
    wav = torch.randn(2, 1, 100)
    assert torch.equal(c.embed(wav, 16000), c.logits(wav, 16000))


# ---- short clips: any clip of one sample or more is classified ---------------------------------------

@pytest.fixture(scope="module")
def event_classifier():
    """The toyworld's classifier architecture (seeded random weights: the lengths it takes do not depend on them)."""
    from lightning_agx.toyworld.models import EventClassifier
    torch.manual_seed(0)
    return ToySoundsClassifier(EventClassifier().eval())


def test_the_toyworld_classifier_needs_0_3_s(event_classifier):
    assert event_classifier.min_samples == 4800  # 15 hops of 320: 16 frames for its four 2 x 2 max-pools
    with pytest.raises(RuntimeError):  # why the adapter pads: the bare network refuses a shorter clip
        event_classifier.module(torch.zeros(1, 1, 4799))


@pytest.mark.parametrize("which", ["toysounds", "debug"])
def test_any_clip_of_one_sample_or_more_is_classified(which, event_classifier):
    c = event_classifier if which == "toysounds" else DebugClassifier()
    rate, shortest = c.sample_rate, c.min_samples
    torch.manual_seed(1)
    for samples, at in ((1, rate), (2, rate), (shortest - 1, rate), (shortest, rate), (1, 44100), (3, 5000)):
        wav = torch.randn(2, samples)
        with torch.no_grad():
            logits, emb = c.logits(wav, at), c.embed(wav, at)
        assert logits.shape == (2, len(c.labels)) and emb.shape[0] == 2, (samples, at)
        assert torch.isfinite(logits).all() and torch.isfinite(emb).all(), (samples, at)
    short = torch.randn(2, shortest - 1)
    with torch.no_grad():  # a short clip is read as the clip followed by silence
        padded = torch.cat([short, torch.zeros(2, 1)], dim=1)
        assert torch.equal(c.logits(short, rate), c.logits(padded, rate))
    with pytest.raises(ValueError, match="empty clip"):
        c.logits(torch.zeros(2, 0), rate)


ASSETS = Path(__file__).resolve().parents[2] / "lightning_agx" / "assets" / "toysounds"


def _weights_built() -> bool:
    return (ASSETS / "classifier.safetensors").exists()


def test_load_classifier_unknown_name_is_a_one_line_user_error():
    assert CLASSIFIERS == ("auto", "debug", "passt", "toysounds")
    with pytest.raises(UserError, match=r"^unknown classifier 'panns'; available: auto, debug, passt, toysounds$"):
        load_classifier("panns")
    with pytest.raises(UserError, match="give the model name"):
        load_classifier("auto")


def test_load_classifier_debug():
    c = load_classifier("debug")
    assert isinstance(c, DebugClassifier) and c.sample_rate == 8000 and len(c.labels) == 10
    assert torch.equal(c.weight, DebugClassifier().weight), "fixed (seeded) weights"
    assert c.logits(torch.randn(2, 16000), 16000).shape == (2, 10)


def test_load_classifier_toysounds():
    if not _weights_built():
        pytest.skip("toyworld weights are not built")
    c = load_classifier("toysounds", "cpu")
    assert isinstance(c, ToySoundsClassifier) and len(c.labels) == 10 and c.sample_rate == 16000
    from lightning_agx.toyworld.load import load_toysounds
    world = load_toysounds().classifier
    assert all(torch.equal(a, b) for a, b in zip(c.module.state_dict().values(), world.state_dict().values())), \
        "the same trained classifier as the whole world's"
    assert not c.module.training


def test_load_classifier_auto_picks_by_model(monkeypatch):
    picked = []
    import lightning_agx.classifiers.registry as registry
    monkeypatch.setattr(registry, "_toysounds", lambda device, random_if_missing: picked.append("toysounds"))
    monkeypatch.setattr(registry, "PaSSTClassifier", lambda: picked.append("passt") or nn.Identity())
    for model in ("toysounds", "debug", "facebook/audiogen-medium", "debug-magnet"):
        load_classifier("auto", model_name=model)
    assert picked == ["toysounds", "toysounds", "passt", "passt"]


def test_missing_toysounds_weights_random_classifier_only_for_the_debug_model(monkeypatch, capsys):
    from lightning_agx.toyworld.load import ToySoundsWeightsError

    def missing(**kwargs):
        raise ToySoundsWeightsError("ToySounds weights file classifier.safetensors is missing")

    monkeypatch.setattr(ToySoundsClassifier, "from_toyworld", staticmethod(missing))
    with pytest.raises(ToySoundsWeightsError, match="missing"):
        load_classifier("toysounds", model_name="toysounds")
    with pytest.raises(ToySoundsWeightsError, match="missing"):
        load_classifier("auto", model_name="toysounds")
    state = torch.random.get_rng_state()
    first = load_classifier("auto", model_name="debug")
    assert torch.equal(torch.random.get_rng_state(), state), "the global RNG is left as it was"
    second = load_classifier("toysounds", model_name="debug")
    assert "RANDOM classifier" in capsys.readouterr().err
    assert isinstance(first, ToySoundsClassifier) and len(first.labels) == 10
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values())), \
        "seeded: the same random classifier every time"


def test_real_toysounds_classifier():
    """The shipped toyworld classifier, when its weights are built."""
    assets = Path(__file__).resolve().parents[2] / "lightning_agx" / "assets" / "toysounds"
    if not (assets / "classifier.safetensors").exists():
        pytest.skip(f"toyworld weights are not built ({assets / 'classifier.safetensors'} missing)")
    try:
        from lightning_agx.toyworld.load import load_toysounds
        load_toysounds()
    except Exception as e:  # module not there yet, or weights not built
        pytest.skip(f"toyworld weights do not load: {type(e).__name__}: {str(e)[:120]}")
    c = load_classifier("toysounds")
    assert len(c.labels) == 10 and c.sample_rate == 16000
    assert c.logits(torch.randn(2, 1, 32000), 32000).shape == (2, 10)
    assert c.embed(torch.randn(2, 1, 32000), 32000).shape[0] == 2


# ---- PaSST -------------------------------------------------------------------------------------------

def test_passt_missing_local_checkpoint_is_a_clear_error(tmp_path):
    pytest.importorskip("hear21passt")
    from lightning_agx.classifiers import PaSSTClassifier
    with pytest.raises(RuntimeError, match="does not exist.*LIGHTNING_AGX_PASST_CKPT"):
        PaSSTClassifier(checkpoint=tmp_path / "nope.pt")


def test_passt_failed_download_is_a_clear_error(monkeypatch):
    pytest.importorskip("hear21passt")
    import hear21passt.base

    def offline(**kwargs):  # what hear21passt raises offline, without touching the network
        raise OSError("<urlopen error [Errno -3] Temporary failure in name resolution>")

    monkeypatch.setattr(hear21passt.base, "get_basic_model", offline)
    monkeypatch.delenv("LIGHTNING_AGX_PASST_CKPT", raising=False)
    with pytest.raises(RuntimeError, match="PaSST weights could not be downloaded.*checkpoint=PATH"):
        load_classifier("passt")


@pytest.mark.slow
def test_passt_failed_download_through_hear21passt(monkeypatch):
    """The real hear21passt path (net built, then the weight download fails), network never touched."""
    pytest.importorskip("hear21passt")
    import hear21passt.models.helpers.vit_helpers as vit_helpers

    def offline(url, *args, **kwargs):
        raise OSError(f"<urlopen error [Errno -3] Temporary failure in name resolution> ({url})")

    monkeypatch.setattr(vit_helpers, "download_cached_file", offline)
    monkeypatch.delenv("LIGHTNING_AGX_PASST_CKPT", raising=False)
    with pytest.raises(RuntimeError, match="PaSST weights could not be downloaded.*passt-s-f128-p16-s10"):
        load_classifier("passt")


@pytest.mark.slow
def test_passt_local_checkpoint_roundtrip(tmp_path, monkeypatch):
    """A local state dict (here random weights) loads with weights_only and gives logits and embeddings."""
    pytest.importorskip("hear21passt")
    import contextlib
    import io

    from hear21passt.models.passt import get_model
    torch.manual_seed(0)
    with contextlib.redirect_stdout(io.StringIO()):
        net = get_model(arch="passt_s_swa_p16_128_ap476", pretrained=False)
    torch.save(net.state_dict(), tmp_path / "passt.pt")
    monkeypatch.setenv("LIGHTNING_AGX_PASST_CKPT", str(tmp_path / "passt.pt"))
    c = load_classifier("passt")
    assert torch.equal(c.model.net.head[1].weight, net.head[1].weight)
    wav = torch.randn(2, 1, 16000)
    assert c.logits(wav, 16000).shape == (2, 527) and c.embed(wav, 16000).shape == (2, 768)
    from lightning_agx.classifiers.passt import MIN_SAMPLES
    for samples, rate in ((1, 16000), (MIN_SAMPLES - 1, 32000)):  # shorter than one patch: zero-padded
        with torch.no_grad():
            assert torch.isfinite(c.logits(torch.randn(2, samples), rate)).all()


@pytest.mark.real_weights
@pytest.mark.skipif(not os.environ.get("LIGHTNING_AGX_PASST_CKPT"), reason="PaSST weights cannot be downloaded offline")
def test_passt_real_weights():
    c = load_classifier("passt")
    assert c.sample_rate == 32000 and len(c.labels) == 527
    wav = _sine(1000, 16000, seconds=2.0).repeat(2, 1)
    assert c.logits(wav, 16000).shape == (2, 527)
    assert c.embed(wav, 16000).shape == (2, 768)
