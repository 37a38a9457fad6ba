"""A prompt's audio and explanation depend on the prompt, the model, the settings and its seed, not its batch."""
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


def test_generation_of_a_prompt_alone_equals_it_in_a_batch(debug_tag):
    a, b = "rain", "a dog barks loudly near the old river"  # b pads a by 5 tokens in the batch
    seeds = [11, 12]
    both = debug_tag.generate([a, b], seed=seeds)
    alone_a = debug_tag.generate([a], seed=seeds[:1])
    alone_b = debug_tag.generate([b], seed=seeds[1:])
    assert torch.equal(both.codes[0], alone_a.codes[0]) and torch.equal(both.codes[1], alone_b.codes[0])
    assert (both.latents[0] - alone_a.latents[0]).abs().max() < 1e-5


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
