"""A prompt's audio and explanation depend on the prompt, the model, the settings and its seed, not its batch.

What is exact and what is not (issue 29). Prompts of a chunk share nothing: each has its own MLP rows and
Gumbel noise, Adam is elementwise (its moments and step are per parameter element, so per prompt), the loss
is a sum of per-prompt terms (Eq. 6), nothing is clipped or normalised across the batch. So with the same
shapes (batch size, padded token count N, row) a prompt's tokens and mask are bitwise those it gets beside
any other neighbour (`test_a_neighbour_of_the_same_shape_changes_nothing`). The shapes themselves change
float32 rounding: BLAS picks another kernel for a linear of fewer than 4 rows (the cross-attention keys of a
prompt of <= 3 tokens explained alone: M = B * N), reductions run over the padded N, vectorised exp/log/
sigmoid round differently from their scalar tail. A batch changes a prompt's target latents by ~1e-6. The
50-step optimisation does not damp that: it amplifies it, most where the trajectory passes a kink, so the
tokens are identical but the mask is only as stable as the optimisation is (`test_toysounds_bound_...`).
"""
import pytest
import torch

from lightning_agx.api import explain
from lightning_agx.explainer import ExplainerConfig
from lightning_agx.models import CrossAttentionEdit
from lightning_agx.seeding import prompt_seed

FAST = ExplainerConfig(hidden=16, epochs=4)
QUIET = {"enable_progress_bar": False}  # lightning.Trainer arguments
PROMPTS = ["a dog barks", "rain falls on a tin roof near the old river", "wind", "a bird sings at dawn",
           "thunder rolls", "a car passes by quickly", "bells", "a crowd cheers loudly at the stadium"]


def _explain(tag, prompts, batch_size, seed=0, epochs=None):
    config = FAST if epochs is None else ExplainerConfig(hidden=16, epochs=epochs)
    return explain(tag, prompts, config=config, batch_size=batch_size, seed=seed, trainer=QUIET, logger=None,
                   figures=False)


def test_padding_keys_get_no_attention(debug_tag):
    gen = debug_tag.generate(["rain", "a dog barks loudly near the old river"], seed=0)
    edit = CrossAttentionEdit(record=True)
    debug_tag.forward_steps(gen, edit=edit, cfg=True)
    valid = gen.text.valid  # [2, N]; "rain" has 1 valid token of N
    for weights in edit.layer_weights():  # [2B, heads, T, N]: [cond; uncond]
        cond = weights[:2]
        assert torch.all(cond.masked_select(~valid[:, None, None, :].expand_as(cond)) == 0)
        assert torch.allclose(cond.sum(-1), torch.ones_like(cond.sum(-1)), atol=1e-5)


def test_explained_with_a_neighbour_equals_explained_alone(debug_tag):
    a, b = "rain", "a dog barks loudly near the old river"
    both = _explain(debug_tag, [a, b], batch_size=2)
    alone_a = _explain(debug_tag, [a], batch_size=1)  # index 0 in both runs: the same seed
    assert torch.equal(both[0].codes, alone_a[0].codes)
    assert (both[0].mask - alone_a[0].mask).abs().max() < 1e-5
    assert both[0].metadata["seed"] == alone_a[0].metadata["seed"] == prompt_seed(0, 0)
    # B keeps index 1 (its seed) beside another neighbour, a longer one: the same tokens and mask
    other = _explain(debug_tag, ["thunder rolls over the dark hills far away tonight", b], batch_size=2)
    assert torch.equal(both[1].codes, other[1].codes)
    assert (both[1].mask - other[1].mask).abs().max() < 1e-5


@pytest.mark.parametrize("batch_size", [2, 8])
def test_batch_size_does_not_change_tokens_or_masks(debug_tag, batch_size):
    one = _explain(debug_tag, PROMPTS, batch_size=1)
    other = _explain(debug_tag, PROMPTS, batch_size=batch_size)
    for x, y in zip(one, other):
        assert torch.equal(x.codes, y.codes), x.prompt
        assert (x.mask - y.mask).abs().max() < 1e-5, x.prompt


def test_a_seed_is_the_run_seed_and_the_prompt_index(debug_tag):
    first = _explain(debug_tag, PROMPTS[:3], batch_size=3)
    assert [e.metadata["seed"] for e in first] == [prompt_seed(0, i) for i in range(3)]
    assert len({e.metadata["seed"] for e in first}) == 3
    other_seed = _explain(debug_tag, PROMPTS[:1], batch_size=1, seed=1)
    assert not torch.equal(other_seed[0].codes, first[0].codes)


@pytest.mark.slow
def test_toysounds_with_text_positions_is_batch_invariant():
    """ToySounds adds positions to its text keys, so its padding keys differed by position before."""
    from lightning_agx.models import load_model
    tag = load_model("toysounds")
    prompts = ["a beep", "there is a loud knock followed by a high whistle in the distance"]
    both = _explain(tag, prompts, batch_size=2, epochs=3)
    alone = [_explain(tag, prompts[:1], batch_size=1, epochs=3)[0]]
    assert torch.equal(both[0].codes, alone[0].codes)
    assert (both[0].mask - alone[0].mask).abs().max() < 1e-5


def test_a_neighbour_of_the_same_shape_changes_nothing(debug_tag):
    """Exact: with the same batch size, padded width (both neighbours have 6 tokens) and row, what the neighbour
    says changes no bit of a prompt's tokens or mask. A loss averaged over the batch, Adam state or a gradient
    norm shared by the chunk, or any normalisation across prompts would show here, whatever the rounding."""
    a = "rain"
    one = _explain(debug_tag, [a, "a dog barks loudly near the old river"], batch_size=2, epochs=8)
    other = _explain(debug_tag, [a, "a car passes by quickly near the old river"], batch_size=2, epochs=8)
    assert one[1].mask.shape == other[1].mask.shape and not torch.equal(one[1].codes, other[1].codes)
    assert torch.equal(one[0].codes, other[0].codes)
    assert torch.equal(one[0].mask, other[0].mask)


@pytest.mark.slow
def test_toysounds_bound_across_batch_sizes_is_the_optimisation_sensitivity():
    """The real bound across batch sizes on ToySounds at the default settings (hidden 512, 50 epochs) is ~1e-3,
    not 1e-5; this test allows 1e-2. Issue 29: held-out prompt 3, 'a siren nearby' (3 tokens), moves by 1.05e-3
    between batch size 1 and 2 (1.9e-3 in the issue's run); the others by up to 1.5e-4.

    Why (measured on CPU, one thread, torch 2.11): alone, its target pass has M = 1 * 3 < 4 key rows and
    BLAS rounds its key/value projections otherwise than for 2 or more rows: the target latents differ by
    1.9e-6. Epoch 1: Adam normalises each element's gradient g + weight_decay * theta; ~500 of the 5.1 M
    weights of a prompt have |g + wd theta| < 1e-8 (the decay cancels the gradient), where Adam's gain is up
    to lr / eps = 1e5, so p differs by 5e-6 after one step. Epoch 2: one ReLU unit of the frozen model's
    feed-forward (layer 1, in the masked passes) is on the other side of its kink in the two runs; the
    gradient of step 60's MLP jumps by 2.5 %, Adam turns that into updates of size lr = 1e-3, and p differs by
    1.1e-3 from epoch 3 on (peak 2.8e-3, 1.05e-3 at the end). The batch is only one source of rounding: alone,
    a one-ulp change of the target latents (x (1 +- 2^-23)) moves the same prompt by 1.1e-3 (two seeds of
    three), and 20 of the 24 held-out prompts by more than 1e-5 (up to 2.9e-4). So no bound tighter than the
    optimisation's own sensitivity holds for every prompt, unless every prompt ran in shapes of its own (no
    batching). The tokens are exact; the debug model (smooth at 4 epochs) keeps 1e-5 in the tests above.
    """
    from lightning_agx.models import load_model
    tag = load_model("toysounds")
    prompts = ["a loud hiss nearby", "a quiet rumble in the distance", "a quiet click in the distance",
               "a siren nearby"]  # configs/prompts/toysounds_heldout.txt, the first four (seeds by index)
    def run(batch_size):
        return explain(tag, prompts, config=ExplainerConfig(), batch_size=batch_size, seed=0, trainer=QUIET,
                       logger=None, figures=False)
    one, two = run(1), run(2)
    for x, y in zip(one, two):
        assert torch.equal(x.codes, y.codes), x.prompt
        assert (x.mask - y.mask).abs().max() < 1e-2, x.prompt
