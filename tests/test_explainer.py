"""AudioGenX's mask generator and loss (the paper's Eq. 2-6)."""
import torch

from lightning_agx.explainer import (ExplainerConfig, MaskGenerator, audiogenx_loss, gumbel_mask, optimize_masks,
                                     perturbation_masks)


def test_mask_generator_is_independent_per_prompt_and_step():
    torch.manual_seed(0)
    gen = MaskGenerator(batch=2, steps=3, dim=4, hidden=8)
    x = torch.randn(2, 5, 4)
    p = gen(x)
    assert p.shape == (2, 3, 5) and ((p > 0) & (p < 1)).all()
    loss = p[0, 1].sum()
    loss.backward()
    grad = gen.w1.grad.view(2, 4, 3, 8)  # [B, D, T, H]: step s's first layer is columns s*H:(s+1)*H
    assert grad[0, :, 1].abs().sum() > 0
    assert grad[1].abs().sum() == 0 and grad[0, :, 0].abs().sum() == 0  # no leak across prompts/steps


def test_shared_mlp_gives_a_time_invariant_mask():
    gen = MaskGenerator(batch=1, steps=4, dim=3, hidden=5, per_step=False)
    p = gen(torch.randn(1, 2, 3))
    assert p.shape == (1, 4, 2) and torch.equal(p[:, 0], p[:, 3])


def test_gumbel_mask_follows_p():
    torch.manual_seed(0)
    p = torch.tensor([0.05, 0.5, 0.95]).expand(20000, 3)
    m = gumbel_mask(p, tau=1.0)
    assert ((m >= 0) & (m <= 1)).all()
    means = m.mean(0)
    assert means[0] < 0.2 and 0.4 < means[1] < 0.6 and means[2] > 0.8
    hard = gumbel_mask(p, hard=True)
    assert set(hard.unique().tolist()) <= {0.0, 1.0}


def test_perturbation_masks_leave_padding_alone():
    m = torch.tensor([[[0.2, 0.7, 0.0]]])
    valid = torch.tensor([[True, True, False]])
    factual, counterfactual = perturbation_masks(m, valid)
    assert torch.allclose(factual, torch.tensor([[[0.2, 0.7, 1.0]]]))
    assert torch.allclose(counterfactual, torch.tensor([[[0.8, 0.3, 1.0]]]))


def test_loss_terms_by_hand():
    target = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])  # [B=1, T=2, D=2]
    factual = torch.tensor([[[1.0, 0.0], [1.0, 1.0]]])  # cos: 1, 1/sqrt(2)
    counterfactual = torch.tensor([[[0.0, 1.0], [0.0, -1.0]]])  # cos: 0, -1
    p = torch.tensor([[[0.5, 0.25, 0.9], [0.5, 0.25, 0.9]]])
    valid = torch.tensor([[True, True, False]])
    terms = audiogenx_loss(target, factual, counterfactual, p, valid)
    assert torch.allclose(terms.factual, torch.tensor([-(1 + 2 ** -0.5)]))
    assert torch.allclose(terms.counterfactual, torch.tensor([-1.0]))
    assert torch.allclose(terms.l1, torch.tensor([1.5]))  # the padding token's 0.9 is ignored
    assert torch.allclose(terms.l2, torch.tensor([(2 * 0.25 + 2 * 0.0625) ** 0.5]))
    total = terms.total(beta=1e-3, gamma=1e-1)
    assert torch.allclose(total, terms.factual + terms.counterfactual + 1e-3 * terms.l1 + 1e-1 * terms.l2)
    assert torch.allclose(terms.total(1e-3, 1e-1, "factual"), terms.factual + 1e-3 * terms.l1 + 1e-1 * terms.l2)


def test_optimisation_lowers_the_loss_on_the_debug_model(debug_tag, debug_generation):
    """Without regularisers, a short AudioGenX run must make the factual latents closer to the original and the
    counterfactual ones further, nearly as much as the all-ones mask (the best possible on this model)."""
    from lightning_agx.models import CrossAttentionEdit

    config = ExplainerConfig(hidden=32, epochs=30, lr=1e-2, beta=0.0, gamma=0.0)
    gen = debug_generation
    p = optimize_masks(debug_tag, gen, config, seed=0)
    assert p.shape == (2, gen.num_steps, gen.text.valid.shape[1])
    target = debug_tag.latents(gen)

    def fidelity(mask):
        factual, counterfactual = perturbation_masks(mask, gen.text.valid)
        h = debug_tag.latents(gen, CrossAttentionEdit(post_softmax=torch.cat([factual, counterfactual])), repeats=2)
        hf, hcf = h.split(2)
        cos = torch.nn.functional.cosine_similarity
        return (cos(target, hf, dim=-1).mean() - cos(target, hcf, dim=-1).mean()).item()

    with torch.no_grad():
        best = fidelity(torch.ones_like(p))  # 1 - cos(h, h without any cross-attention), ~5e-3 here
        assert fidelity(torch.full_like(p, 0.5)) == 0.0
        assert fidelity(p) > 0.5 * best > 1e-3
