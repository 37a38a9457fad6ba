"""Functional forms of the faithfulness metrics: hand-computed values, and the Metric classes as their means."""
import math

import pytest
import torch
import torchmetrics
from torchmetrics.aggregation import MeanMetric

from lightning_agx.metrics import CounterfactualFidelity, CounterfactualKL, FactualFidelity, FactualKL, MaskSize
from lightning_agx.metrics import functional
from lightning_agx.metrics.functional import fidelity, kl, kl_divergence, mask_size

# Two prompts, 3 classes, as probabilities (y = 0 and y = 2); the prompts differ so a swap or a mean shows.
P_ORIG, P_PERT = torch.tensor([[[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]],
                               [[0.5, 0.3, 0.2], [0.3, 0.6, 0.1]]], dtype=torch.float64)


def _close(actual, expected, tol=1e-12):
    torch.testing.assert_close(actual, torch.as_tensor(expected, dtype=torch.float64), rtol=0, atol=tol)


def test_exported_from_the_package():
    assert functional.fidelity is fidelity and functional.kl is kl and functional.mask_size is mask_size
    assert functional.kl_divergence is kl_divergence
    assert functional.KL_DIRECTIONS == ("authors", "forward")


def test_fidelity_by_hand_per_prompt():
    # prompt 0: y = 0, 0.7 - 0.5; prompt 1: y = 2, 0.6 - 0.1
    out = fidelity(P_ORIG, P_PERT, from_logits=False)
    assert out.shape == (2,) and out.dtype == torch.float64
    _close(out, [0.2, 0.5])


def test_fidelity_by_hand_with_repeats_and_logits():
    pert = torch.stack([P_PERT, P_ORIG], dim=1)  # [B=2, R=2, C]
    _close(fidelity(P_ORIG, pert, from_logits=False), [(0.2 + 0.0) / 2, (0.5 + 0.0) / 2])
    orig = torch.tensor([[math.log(3.0), 0.0], [0.0, math.log(4.0)]])  # softmax [3/4, 1/4], [1/5, 4/5]
    pert = torch.tensor([[0.0, 0.0], [math.log(4.0), 0.0]])            # softmax [1/2, 1/2], [4/5, 1/5]
    _close(fidelity(orig, pert), [0.75 - 0.5, 0.8 - 0.2], tol=1e-7)


def test_kl_by_hand_per_prompt_both_directions():
    q, p = P_PERT, P_ORIG
    authors = [sum(q[b, c].item() * math.log(q[b, c].item() / p[b, c].item()) for c in range(3)) for b in range(2)]
    forward = [sum(p[b, c].item() * math.log(p[b, c].item() / q[b, c].item()) for c in range(3)) for b in range(2)]
    _close(kl(P_ORIG, P_PERT, from_logits=False), authors)
    _close(kl(P_ORIG, P_PERT, direction="forward", from_logits=False), forward)
    assert authors[0] != pytest.approx(forward[0])  # the two directions really differ here


def test_kl_repeats_averaged_and_eps_clamp():
    pert = torch.stack([P_PERT, P_ORIG], dim=1)  # the second repeat equals the original: KL 0
    _close(kl(P_ORIG, pert, from_logits=False), kl(P_ORIG, P_PERT, from_logits=False) / 2)
    # one-hot against the opposite one-hot: 1 * (log 1 - log eps), for a chosen eps
    orig, pert = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    _close(kl(orig, pert, eps=1e-3, from_logits=False), [-math.log(1e-3)])
    _close(kl_divergence(torch.tensor([0.5, 0.5]), torch.tensor([0.25, 0.75]), eps=1e-6).double(),
           0.5 * math.log(2.0) + 0.5 * math.log(0.5 / 0.75), tol=1e-7)


def test_mask_size_by_hand_per_explanation():
    mask = torch.tensor([[[1.0, 0.5, 0.9],
                          [0.0, 0.5, 0.9]],    # tokens 0, 1 valid -> (1 + 0.5 + 0 + 0.5) / 4 = 0.5
                         [[0.2, 0.4, 0.6],
                          [0.2, 0.4, 0.6]]])   # all valid -> (0.2 + 0.4 + 0.6) * 2 / 6 = 0.4
    valid = torch.tensor([[True, True, False], [True, True, True]])
    out = mask_size(mask, valid)
    assert out.shape == (2,) and out.dtype == torch.float64
    _close(out, [0.5, 0.4], tol=1e-7)
    _close(mask_size(mask), [(1 + 0.5 + 0.9 + 0 + 0.5 + 0.9) / 6, 0.4], tol=1e-7)  # no valid: every token counts
    unbatched = mask_size(mask[0], valid[0])
    assert unbatched.shape == (1,)
    _close(unbatched, [0.5], tol=1e-7)


def test_errors_keep_their_messages():
    with pytest.raises(ValueError, match="available: authors, forward"):
        kl(P_ORIG, P_PERT, direction="backward")
    with pytest.raises(ValueError, match=r"original must be \[B, C\].*\(3,\)"):
        fidelity(torch.rand(3), P_PERT)
    with pytest.raises(ValueError, match=r"\(2, 4\)"):
        kl(torch.randn(2, 3), torch.randn(2, 4))
    with pytest.raises(ValueError, match="zero repeats"):
        fidelity(P_ORIG, torch.rand(2, 0, 3))
    with pytest.raises(ValueError, match=r"mask must be \[B, T, N\]"):
        mask_size(torch.rand(3))
    with pytest.raises(ValueError, match="bool tensor of shape"):
        mask_size(torch.rand(2, 4, 3), torch.ones(2, 3))
    with pytest.raises(ValueError, match=r"explanations \[1\] have no valid token"):
        mask_size(torch.rand(2, 4, 3), torch.tensor([[True, False, False], [False, False, False]]))


def test_functional_forms_need_no_metric_object(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a Metric was created")

    monkeypatch.setattr(torchmetrics.Metric, "__init__", refuse)
    with pytest.raises(AssertionError, match="a Metric was created"):
        FactualFidelity()  # the patch is effective
    torch.manual_seed(0)
    orig, pert = torch.randn(3, 5), torch.randn(3, 2, 5)
    assert fidelity(orig, pert).shape == kl(orig, pert).shape == (3,)
    assert kl(orig, pert, direction="forward").shape == (3,)
    assert mask_size(torch.rand(3, 4, 6)).shape == (3,)


# (Metric factory, its functional form, whether both take probabilities rather than logits)
CLASSIFIER_METRICS = [
    (FactualFidelity, fidelity, False),
    (CounterfactualFidelity, fidelity, False),
    (FactualKL, kl, False),
    (CounterfactualKL, kl, False),
    (lambda: FactualKL(direction="forward", eps=1e-3), lambda o, p: kl(o, p, direction="forward", eps=1e-3), False),
    (lambda: CounterfactualFidelity(from_logits=False), lambda o, p: fidelity(o, p, from_logits=False), True),
]


def _inputs(probs, *logits):
    return tuple(t.softmax(-1) for t in logits) if probs else logits


@pytest.mark.parametrize("make,fn,probs", CLASSIFIER_METRICS)
@pytest.mark.parametrize("repeats", [None, 3])
def test_classes_equal_functional_per_prompt_and_averaged(make, fn, probs, repeats):
    torch.manual_seed(1)
    orig = torch.randn(6, 7) * 3
    pert = torch.randn(6, 7) * 3 if repeats is None else torch.randn(6, repeats, 7) * 3
    orig, pert = _inputs(probs, orig, pert)
    values = fn(orig, pert)  # [6]
    assert values.std() > 0  # distinct prompts, so a per-prompt mix-up would show
    _assert_class_gives(make, values, orig, pert)


def _assert_class_gives(make, values, *inputs):
    """One Metric per prompt (as the evaluation used to do) gives each value; one over all gives their mean."""
    for j in range(len(values)):
        m = make()
        m.update(*(x[j:j + 1] for x in inputs))
        torch.testing.assert_close(m.compute(), values[j], rtol=1e-15, atol=1e-15)
    m = make()
    m.update(*inputs)
    torch.testing.assert_close(m.compute(), values.mean(), rtol=1e-15, atol=1e-15)


def test_mask_size_class_equals_functional_per_explanation_and_averaged():
    torch.manual_seed(2)
    mask, valid = torch.rand(5, 4, 6), torch.rand(5, 6) > 0.3
    valid[:, 0] = True
    _assert_class_gives(MaskSize, mask_size(mask, valid), mask, valid)


@pytest.mark.parametrize("make,fn,probs", CLASSIFIER_METRICS)
def test_classes_accumulate_as_the_mean_of_functional_values(make, fn, probs):
    torch.manual_seed(3)
    batches = [_inputs(probs, torch.randn(1, 5), torch.randn(1, 5)), _inputs(probs, torch.randn(4, 5), torch.randn(4, 2, 5)),
               _inputs(probs, torch.randn(2, 5), torch.randn(2, 5))]
    m = make()
    for o, p in batches:
        m.update(o, p)
    every_prompt = torch.cat([fn(o, p) for o, p in batches])  # [7]: each prompt weighs the same, not each batch
    torch.testing.assert_close(m.compute(), every_prompt.mean(), rtol=1e-14, atol=1e-15)
    means_of_batches = torch.stack([fn(o, p).mean() for o, p in batches]).mean()
    assert abs(m.compute() - means_of_batches) > 1e-6  # the two weightings differ on these batches


def test_mask_size_accumulates_and_forward_gives_the_batch_value():
    torch.manual_seed(4)
    masks = [torch.rand(2, 3, 4), torch.rand(3, 4), torch.rand(4, 3, 4)]
    m = MaskSize()
    batch_values = [m(mask) for mask in masks]  # forward: this batch's value, and accumulates
    for mask, value in zip(masks, batch_values):
        torch.testing.assert_close(value, mask_size(mask).mean(), rtol=1e-15, atol=1e-15)
    torch.testing.assert_close(m.compute(), torch.cat([mask_size(mask) for mask in masks]).mean(),
                               rtol=1e-14, atol=1e-15)
    assert m.weight.item() == 2 + 1 + 4


@pytest.mark.parametrize("make", [FactualFidelity, CounterfactualFidelity, FactualKL, CounterfactualKL, MaskSize])
def test_classes_are_mean_metrics_nan_before_update(make):
    m = make()
    assert isinstance(m, MeanMetric)
    assert m.higher_is_better is (make in (CounterfactualFidelity, CounterfactualKL))
    with pytest.warns(UserWarning, match="before the ``update``"):
        assert torch.isnan(m.compute())


def test_nan_values_propagate_and_float64_survives_a_device_move():
    m = FactualFidelity(from_logits=False)
    m.update(torch.tensor([[float("nan"), 0.5]]), torch.tensor([[0.5, 0.5]]))
    m.update(P_ORIG, P_PERT)
    assert torch.isnan(m.compute())  # as before: a NaN prompt is not silently dropped
    m = FactualFidelity(from_logits=False).to("cpu")  # torchmetrics would reset its dtype to float32 here
    third = torch.tensor([[1.0, 0.0]], dtype=torch.float64), torch.tensor([[2 / 3, 1 / 3]], dtype=torch.float64)
    m.update(*third)
    assert m.mean_value.dtype == torch.float64
    assert m.compute().item() == fidelity(*third, from_logits=False).item() == 1 - 2 / 3
