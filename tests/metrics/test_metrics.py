"""Faithfulness metrics and FAD against hand-computed values on tiny tensors."""
import math

import pytest
import torch

from lightning_agx.metrics import (
    CounterfactualFidelity,
    CounterfactualKL,
    FactualFidelity,
    FactualKL,
    FrechetAudioDistance,
    MaskSize,
)

# Two prompts, 3 classes, given as probabilities so the hand computation is readable.
P_ORIG = torch.tensor([[0.7, 0.2, 0.1],   # y = 0
                       [0.1, 0.3, 0.6]], dtype=torch.float64)  # y = 2
P_PERT = torch.tensor([[0.5, 0.3, 0.2],
                       [0.2, 0.4, 0.4]], dtype=torch.float64)


@pytest.mark.parametrize("cls", [FactualFidelity, CounterfactualFidelity])
def test_fidelity_by_hand(cls):
    m = cls(from_logits=False)
    m.update(P_ORIG, P_PERT)
    # prompt 0: 0.7 - 0.5 = 0.2; prompt 1: 0.6 - 0.4 = 0.2
    assert m.compute().item() == pytest.approx((0.2 + 0.2) / 2, abs=1e-12)


def test_fidelity_from_logits_by_hand():
    m = FactualFidelity()
    orig = torch.tensor([[math.log(3.0), 0.0]])  # softmax = [3/4, 1/4], y = 0
    pert = torch.tensor([[0.0, 0.0]])            # softmax = [1/2, 1/2]
    m.update(orig, pert)
    assert m.compute().item() == pytest.approx(0.75 - 0.5, abs=1e-7)


def test_fidelity_repeats_are_averaged_then_prompts():
    m = FactualFidelity(from_logits=False)
    pert = torch.stack([P_PERT, P_ORIG, torch.tensor([[0.1, 0.8, 0.1], [0.3, 0.3, 0.4]], dtype=torch.float64)], dim=1)  # [B=2, R=3, C]
    m.update(P_ORIG, pert)
    # prompt 0: mean(0.7-0.5, 0.7-0.7, 0.7-0.1) = 0.8/3; prompt 1: mean(0.6-0.4, 0, 0.6-0.4) = 0.4/3
    assert m.compute().item() == pytest.approx((0.8 / 3 + 0.4 / 3) / 2, abs=1e-12)


def test_kl_authors_direction_by_hand():
    m = FactualKL(from_logits=False)
    m.update(P_ORIG, P_PERT)
    # authors: KL(p(x') || p(x)) = sum q log(q / p)
    kl0 = 0.5 * math.log(0.5 / 0.7) + 0.3 * math.log(0.3 / 0.2) + 0.2 * math.log(0.2 / 0.1)
    kl1 = 0.2 * math.log(0.2 / 0.1) + 0.4 * math.log(0.4 / 0.3) + 0.4 * math.log(0.4 / 0.6)
    assert m.compute().item() == pytest.approx((kl0 + kl1) / 2, abs=1e-9)


def test_kl_authors_matches_torch_kldivloss():
    """The default is the authors' KLDivLoss(log p(x), p(x')) per prompt."""
    torch.manual_seed(0)
    orig, pert = torch.randn(4, 10), torch.randn(4, 10)
    m = CounterfactualKL()
    m.update(orig, pert)
    ref = torch.nn.KLDivLoss(reduction="none")(orig.double().softmax(-1).log(), pert.double().softmax(-1)).sum(-1)
    assert m.compute().item() == pytest.approx(ref.mean().item(), abs=1e-9)


def test_kl_forward_direction_by_hand():
    m = CounterfactualKL(direction="forward", from_logits=False)
    m.update(P_ORIG, P_PERT)
    # forward: KL(p(x) || p(x')) = sum p log(p / q)
    kl0 = 0.7 * math.log(0.7 / 0.5) + 0.2 * math.log(0.2 / 0.3) + 0.1 * math.log(0.1 / 0.2)
    kl1 = 0.1 * math.log(0.1 / 0.2) + 0.3 * math.log(0.3 / 0.4) + 0.6 * math.log(0.6 / 0.4)
    assert m.compute().item() == pytest.approx((kl0 + kl1) / 2, abs=1e-9)


def test_kl_unknown_direction():
    with pytest.raises(ValueError, match="available: authors, forward"):
        FactualKL(direction="backward")


@pytest.mark.parametrize("cls", [FactualKL, CounterfactualKL, FactualFidelity, CounterfactualFidelity])
@pytest.mark.parametrize("direction", ["authors", "forward"])
def test_identical_distributions_give_zero(cls, direction):
    torch.manual_seed(1)
    logits = torch.randn(5, 527) * 5
    m = cls(direction=direction) if cls in (FactualKL, CounterfactualKL) else cls()
    m.update(logits, torch.stack([logits, logits], 1))
    assert abs(m.compute().item()) <= 1e-6


@pytest.mark.parametrize("direction", ["authors", "forward"])
def test_zero_probabilities_are_finite(direction):
    # -inf logits give exactly zero probability; one-hot vs the opposite one-hot is the worst case.
    orig = torch.tensor([[0.0, -float("inf"), -float("inf")]])
    pert = torch.tensor([[-float("inf"), 0.0, -float("inf")]])
    m = FactualKL(direction=direction)
    m.update(orig, pert)
    value = m.compute()
    assert torch.isfinite(value)
    # 1 * (log 1 - log eps) with eps = 1e-6, whichever direction
    assert value.item() == pytest.approx(-math.log(1e-6), rel=1e-9)
    fid = FactualFidelity()
    fid.update(orig, pert)
    assert fid.compute().item() == pytest.approx(1.0)


def test_shape_errors_name_the_shapes():
    with pytest.raises(ValueError, match=r"\(2, 4\)"):
        FactualKL().update(torch.randn(2, 3), torch.randn(2, 4))


def test_mask_size_by_hand_with_validity():
    mask = torch.tensor([[[1.0, 0.5, 0.9],
                          [0.0, 0.5, 0.9]],    # explanation 0: tokens 0, 1 valid -> (1 + 0.5 + 0 + 0.5) / 4 = 0.5
                         [[0.2, 0.4, 0.6],
                          [0.2, 0.4, 0.6]]])   # explanation 1: all valid -> (0.2+0.4+0.6)*2 / 6 = 0.4
    valid = torch.tensor([[True, True, False], [True, True, True]])
    m = MaskSize()
    m.update(mask, valid)
    assert m.compute().item() == pytest.approx((0.5 + 0.4) / 2, abs=1e-7)


def test_mask_size_unbatched_and_no_valid_token():
    m = MaskSize()
    m.update(torch.full((4, 3), 0.25))
    assert m.compute().item() == pytest.approx(0.25)
    with pytest.raises(ValueError, match="no valid token"):
        m.update(torch.ones(1, 2, 3), torch.zeros(1, 3, dtype=torch.bool))


def _feed(metric, batches):
    for args in batches:
        metric.update(*args)
    return metric


@pytest.mark.parametrize("make", [FactualFidelity, CounterfactualKL, lambda: FactualKL(direction="forward")])
def test_merge_state_equals_one_instance(make):
    torch.manual_seed(2)
    batches = [(torch.randn(3, 5), torch.randn(3, 2, 5)), (torch.randn(1, 5), torch.randn(1, 5)),
               (torch.randn(4, 5), torch.randn(4, 3, 5))]
    whole = _feed(make(), batches)
    a, b = _feed(make(), batches[:1]), _feed(make(), batches[1:])
    a.merge_state(b)
    assert a.compute().item() == pytest.approx(whole.compute().item(), abs=1e-12)
    # the sum-reduced states (MeanMetric's value sum and weight, i.e. the prompt count) add up, as a DDP
    # all-reduce would do
    c, d = _feed(make(), batches[:2]), _feed(make(), batches[2:])
    assert (c.mean_value + d.mean_value).item() == pytest.approx(whole.mean_value.item(), abs=1e-12)
    assert (c.weight + d.weight).item() == whole.weight.item() == 8


def test_mask_size_merge_state():
    torch.manual_seed(3)
    masks = [torch.rand(2, 4, 3), torch.rand(3, 4, 3)]
    whole = _feed(MaskSize(), [(m,) for m in masks])
    a, b = _feed(MaskSize(), [(masks[0],)]), _feed(MaskSize(), [(masks[1],)])
    a.merge_state(b)
    assert a.compute().item() == pytest.approx(whole.compute().item(), abs=1e-12)


def _exact_gaussian_samples(n, mean, cov, generator):
    """n samples whose empirical mean and unbiased covariance are exactly ``mean`` and ``cov``."""
    z = torch.randn(n, mean.numel(), generator=generator, dtype=torch.float64)
    z = z - z.mean(0)
    z = z @ torch.linalg.inv(torch.linalg.cholesky(z.T @ z / (n - 1))).T  # whitened: identity covariance
    return z @ torch.linalg.cholesky(cov).T + mean


def test_fad_of_a_set_against_itself_is_zero():
    g = torch.Generator().manual_seed(4)
    emb = torch.randn(6, 8, generator=g)  # fewer samples than dimensions: singular covariance
    fad = FrechetAudioDistance(None, num_features=8)
    fad.update(emb, real=True)
    fad.update(emb, real=False)
    assert abs(fad.compute().item()) < 1e-5


def test_fad_of_two_gaussians_matches_closed_form():
    g = torch.Generator().manual_seed(5)
    mean_r, cov_r = torch.zeros(3, dtype=torch.float64), torch.diag(torch.tensor([1.0, 1.0, 1.0], dtype=torch.float64))
    mean_g, cov_g = torch.tensor([3.0, 0.0, 4.0], dtype=torch.float64), torch.diag(
        torch.tensor([4.0, 9.0, 1.0], dtype=torch.float64))
    # diagonal closed form: |mu_r - mu_g|^2 + sum (sr - sg)^2 = 25 + (1-2)^2 + (1-3)^2 + (1-1)^2 = 30
    fad = FrechetAudioDistance(None, num_features=3, eps=0.0)
    real, gen = _exact_gaussian_samples(50, mean_r, cov_r, g), _exact_gaussian_samples(40, mean_g, cov_g, g)
    fad.update(real[:20], real=True)
    fad.update(gen, real=False)
    fad.update(real[20:], real=True)
    assert fad.compute().item() == pytest.approx(30.0, abs=1e-8)


def test_fad_matches_scipy_sqrtm_and_merge_state():
    scipy_linalg = pytest.importorskip("scipy.linalg")
    g = torch.Generator().manual_seed(6)
    real, gen = torch.randn(30, 4, generator=g), torch.randn(25, 4, generator=g) @ torch.randn(4, 4, generator=g) + 1
    embedder = torch.nn.Linear(4, 4).double()  # a pluggable embedder module
    with torch.no_grad():
        er, eg = embedder(real.double()).numpy(), embedder(gen.double()).numpy()
    import numpy as np
    cr, cg = np.cov(er, rowvar=False), np.cov(eg, rowvar=False)
    ref = ((er.mean(0) - eg.mean(0)) ** 2).sum() + np.trace(cr + cg - 2 * scipy_linalg.sqrtm(cr @ cg).real)

    def embed(wav):
        return embedder(wav.double())

    a, b = FrechetAudioDistance(embed, 4, eps=0.0), FrechetAudioDistance(embed, 4, eps=0.0)
    a.update(real[:10], real=True)
    b.update(real[10:], real=True)
    a.update(gen[:5], real=False)
    b.update(gen[5:], real=False)
    a.merge_state(b)
    assert a.compute().item() == pytest.approx(float(ref), rel=1e-8)


def test_fad_needs_two_samples_per_set():
    fad = FrechetAudioDistance(None, num_features=2)
    fad.update(torch.randn(1, 2), real=True)
    fad.update(torch.randn(3, 2), real=False)
    with pytest.raises(RuntimeError, match="at least 2 real"):
        fad.compute()
