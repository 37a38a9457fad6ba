"""AudioLDM 2 behind `DiffusersTAG` (`lightning_agx.models.diffusers.audioldm2`) on a tiny ``AudioLDM2Pipeline`` built
offline and saved with ``save_pretrained`` (`tiny_pipelines`), loaded through the real ``audioldm2(path)``: what
only AudioLDM 2 has: the mask on the T5 stream of every UNet level (2-D mel latents, a step is one latent time row,
each query pooling the mask rows of its span), our processor against diffusers', the unconditional half untouched,
the randomisation cascade over the UNet (the real cvssp/audioldm2 with its weights: `test_diffusers.py`,
``real_weights``). What every family shares (the all-ones identity, batch invariance with the GPT-2 stream, every
method, explain and evaluate, checkpoints): tests/contract."""
import pytest
import torch

from lightning_agx.models import CrossAttentionEdit
from lightning_agx.models.diffusers.attention import AttentionState, GridLevel, edited_attention
from lightning_agx.models.diffusers.models import audioldm2

from family_fixtures import pipeline_fixtures
from tiny_pipelines import assert_zero_mask_changes_the_conditional_half_only, save_tiny_audioldm2

PROMPTS = ["a dog barks loudly near a river", "rain"]  # different lengths: T5 padding in the batch
ROWS, COLUMNS = 25, 4  # 1 s at 25 latent rows per second, 8 mel bins / VAE scale 2


saved, tag = pipeline_fixtures(save_tiny_audioldm2, audioldm2, "audioldm2")


@pytest.fixture(scope="module")
def generation(tag):
    return tag.generate(PROMPTS, seed=0)


def test_loads_the_saved_pipeline_through_from_pretrained(tag, generation):
    assert type(tag.denoiser.unet).__name__ == "AudioLDM2UNet2DConditionModel"
    assert type(tag.scheduler).__name__ == "DDIMScheduler"
    assert (tag.frame_rate, tag.sample_rate, tag.max_duration) == (25.0, 800, 1.28)
    assert tag.token_strings("a dog barks") == ["\u2581a", "\u2581dog", "\u2581barks", "</s>"]
    # the T5 stream of every level: 3 down, the mid block, 3 up blocks of 2 layers
    assert len(tag.denoiser.cross_names) == 10
    assert all(".attentions.2." in n or ".attentions.5." in n for n in tag.denoiser.cross_names)
    assert generation.codes.shape == (2, 4, ROWS, COLUMNS) and tag.output_shape() == (4, ROWS, COLUMNS)
    assert generation.text.extra.shape == (2, 8, 16), "the GPT-2 vectors travel with the text"
    assert tag.latent_dim == 4 * 4 * COLUMNS  # K points x C channels x W bins per time row


def test_the_diffusion_loader_knows_a_saved_folder_by_its_pipeline_class(saved):
    from lightning_agx.models.diffusers.models import load_diffusion_model
    tag = load_diffusion_model(str(saved), duration=0.6)
    assert type(tag.denoiser).__name__ == "AudioLDM2Denoiser" and tag.num_steps() == 15


@pytest.mark.parametrize("stride", [1, 2, 4])
def test_each_query_pools_the_mask_rows_of_its_time_span(stride):
    """Query (h, w) of a level of stride s (ceil(H/s) x ceil(W/s), row-major) takes the mean of mask rows
    [h*s, min((h+1)*s, H)); keys past the text and unedited rows get ones."""
    mask = torch.rand(1, ROWS, 3)
    state = AttentionState(CrossAttentionEdit(post_softmax=mask), torch.tensor([-1, 0]), ROWS, text_keys=3,
                           grid=(ROWS, COLUMNS))
    rows, columns = -(-ROWS // stride), -(-COLUMNS // stride)
    laid = state.rows_of("post", mask, rows * columns, 5)  # [2, 1, queries, 5]
    assert GridLevel.of((ROWS, COLUMNS), rows * columns).stride == stride
    assert torch.equal(laid[0], torch.ones_like(laid[0])), "the unconditional row is untouched"
    for h in range(rows):
        expected = mask[0, h * stride:min((h + 1) * stride, ROWS)].mean(0)
        for w in range(columns):
            torch.testing.assert_close(laid[1, 0, h * columns + w, :3], expected)
    assert bool((laid[1, 0, :, 3:] == 1).all())
    ones = torch.ones(1, ROWS, 3)
    assert bool((AttentionState(CrossAttentionEdit(post_softmax=ones), torch.tensor([0]), ROWS, 3,
                                grid=(ROWS, COLUMNS)).rows_of("post", ones, rows * columns, 3) == 1).all())


def test_recorded_weights_per_mask_row_and_their_gradient():
    """A stride-2 level of a 5 x 4 latent (3 x 2 queries): row t of the record is the mean over the columns of
    query row t // 2; the layer's weights pass unchanged, and d(out)/d(record) is the pooling's adjoint."""
    from lightning_agx.models.diffusers.attention import _recorded_grid
    points, heads, n = 2, 1, 3
    state = AttentionState(CrossAttentionEdit(record=True), torch.zeros(points, dtype=torch.long), 5, text_keys=n,
                           points=points, grid=(5, 4))
    weights = torch.rand(points, heads, 6, n + 1, requires_grad=True)
    recorded, tied = _recorded_grid(weights, state)
    assert torch.equal(tied, weights) and recorded.shape == (1, points * heads, 5, n)
    grid = weights.detach()[..., :n].view(points, heads, 3, 2, n)
    for t in range(5):
        torch.testing.assert_close(recorded[0, :, t].detach(), grid[:, 0, t // 2].mean(1))
    c = torch.rand_like(weights)
    (grad,) = torch.autograd.grad((tied * c).sum(), recorded)
    pooled = c[..., :n].view(points, heads, 3, 2, n).sum(3)  # [K, H, 3, N]
    counts = torch.tensor([2.0, 2.0, 1.0])  # query rows pool mask rows {0, 1}, {2, 3}, {4}
    for t in range(5):
        torch.testing.assert_close(grad[0, :, t], pooled[:, 0, t // 2] / counts[t // 2])


def _unet_inputs(tag, generation):
    """One UNet call's inputs: the first trajectory point of both prompts, conditional."""
    schedule = tag.schedule(generation.inference_steps)
    point = torch.zeros(len(PROMPTS), dtype=torch.long)
    cond = tag.denoiser_conditions(generation.text, 1, generation.num_steps)
    return schedule.model_input(generation.trajectory[:, 0], point), schedule.timesteps[point], cond


def test_edited_processor_with_an_all_ones_mask_is_diffusers_own(tag, generation):
    """Our processor at every UNet level against diffusers' AttnProcessor2_0 (the identity in generation and in the
    reference forward, within the family's own numerics: tests/contract)."""
    sample, timesteps, cond = _unet_inputs(tag, generation)
    ones = torch.ones(len(PROMPTS), generation.num_steps, generation.text.valid.shape[1])
    with torch.no_grad():
        original = tag.denoiser(sample, timesteps, cond)  # diffusers' own AttnProcessor2_0 everywhere
        state = AttentionState(CrossAttentionEdit(post_softmax=ones), torch.arange(len(PROMPTS)),
                               generation.num_steps, text_keys=ones.shape[-1], key_valid=cond.key_valid,
                               grid=tag.denoiser.grid(generation.num_steps))
        with edited_attention(tag.denoiser.unet, state, tag.denoiser.cross_names):
            edited = tag.denoiser(sample, timesteps, cond)
    torch.testing.assert_close(edited, original, atol=1e-5, rtol=1e-5)  # a written-out softmax: rounding only


def test_zero_mask_changes_the_conditional_half_only(tag, generation):
    """A zero mask removes the text from the conditional rows; CFG's unconditional rows are untouched."""
    assert_zero_mask_changes_the_conditional_half_only(tag, generation, PROMPTS)


def test_codes_of_the_wrong_shape_are_named(tag, generation):
    with pytest.raises(ValueError, match=r"codes must be latents \[B, 4, T, 4\]"):
        tag.generation_from_codes(PROMPTS, generation.codes[..., 0])


def test_every_level_records_its_mask_rows(tag, generation):
    """The T5 cross-attention of all 10 layers (3 down, mid, 3 up blocks of 2) records [rB, K * heads, T, N] (the
    weights' range and gradients: tests/contract)."""
    b, t, n = len(PROMPTS), generation.num_steps, generation.text.valid.shape[1]
    k = generation.trajectory.shape[1]
    edit = CrossAttentionEdit(post_softmax=torch.full((2 * b, t, n), 0.5), record=True)
    out = tag.forward_steps(generation, edit, repeats=2, log_probs=True)
    assert out.latents.shape == (2 * b, t, tag.latent_dim) and out.log_probs.shape == (2 * b, k, t)
    heads = 2
    assert [tuple(w.shape) for w in edit.layer_weights()] == [(2 * b, k * heads, t, n)] * 10


def test_randomization_cascade_covers_the_unet_and_the_text(tag):
    steps = tag.randomization_cascade()
    names = [name for name, _ in steps]
    assert names[:3] == ["up block 2", "up block 1", "up block 0"] and names[3] == "mid block"
    assert names[-1] == "embeddings+heads+text" and tag.text_encoder in steps[-1][1]
    owned = {id(m) for m in tag.modules()}
    assert all(id(m) in owned for _, modules in steps for m in modules)
