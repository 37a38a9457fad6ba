"""The contract every `TAGModel` family keeps (the idea of diffusers' ModelTesterMixin), run over every family of
`tag_families.FAMILIES` (one entry each): what the explainers, the baselines, `explain` and `evaluate` rely on.

- text: the token strings the model splits, padding False in ``valid`` and zero in the embeddings;
- generation: ``codes [B, *output_shape()]``, T = ``num_steps()``, one seed per prompt (`prompt_seed`), the same
  seed the same audio, another seed other audio, the caller's random state untouched; decoding to the clip;
- the mask: an all-ones mask is the identity, in generation and in the reference forward; a zero mask changes
  both; a mask of the wrong shape is refused;
- batch invariance: each prompt alone gives what it gives beside another (text, audio, latents), and the
  ``repeats`` rows of one reference forward are independent;
- the reference forward: latents ``[B, T, latent_dim]``, log-probabilities ``[B, K, T]`` <= 0, gradients reach
  the mask and not the frozen weights, recorded cross-attention weights ``[rB, *, T, N]``, self-attention
  recorded or refused; the latents kept by generation are the reference forward's;
- `generation_from_codes` reproduces the reference forward (latents and log-probabilities);
- every method gives ``[B, T, N]`` in [0, 1], 0 at padding, and each prompt some importance;
- `explain` and `evaluate` end to end, and their resume;
- the checkpoint round trip: the weights saved in the family's format and loaded back (same weights, same
  audio, a stable ``weights_hash``) and explanations saved and loaded, whose codes `generation_from_codes`
  accepts and rebuild the reference forward.

Tolerances are the family's (`tag_families.Family`, each with its reason); everything else is bitwise.
"""
import json
import warnings

import pytest
import torch

from tag_families import PROMPTS
from lightning_agx.explainer import ExplainerConfig
from lightning_agx.explanation import Explanation, build_explanations
from lightning_agx.methods import METHODS, run_method
from lightning_agx.models import CrossAttentionEdit
from lightning_agx.models.base import state_dict_hash
from lightning_agx.seeding import prompt_seed

FAST = ExplainerConfig(epochs=2, hidden=8)
QUIET = {"enable_progress_bar": False}  # lightning.Trainer arguments


def close(actual, expected, atol: float, what: str = "") -> None:
    """Bitwise equal when `atol` is 0, else within `atol` (absolute and relative)."""
    if atol == 0:
        assert torch.equal(actual, expected), f"{what}: not bitwise equal (max diff " \
            f"{float((actual.float() - expected.float()).abs().max()):.3g})"
    else:
        torch.testing.assert_close(actual, expected, atol=atol, rtol=atol, msg=lambda m: f"{what}: {m}")


def _mask(generation, value: float, rows: int | None = None, steps: int | None = None, tokens: int | None = None):
    b, t, n = len(generation.text), generation.num_steps, generation.text.valid.shape[1]
    return torch.full((rows or b, steps or t, tokens or n), float(value))


def _importance(family, method: str, untrained_explainer) -> torch.Tensor:
    """A method's importance on the family's generation, computed once per session."""
    key = ("importance", method)
    if key not in family.cache:
        options = {}
        if method == "audiogenx_amortized":  # no trained explainer ships for these tiny models
            options = {"checkpoint": untrained_explainer(family)}
        elif method.startswith("audiogenx"):
            options = {"config": FAST}
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="chefer: the self-attention")  # falls back to R_aa = I
            family.cache[key] = run_method(method, family.tag, family.generation, seed=family.generation.seeds,
                                           **options)
    return family.cache[key]


# ---------------------------------------------------------------------------------------------------- text, generation
def test_text_tokens_and_padding(family):
    tag, text = family.tag, family.generation.text
    assert text.tokens == [tag.token_strings(p) for p in PROMPTS]
    assert text.valid.sum(1).tolist() == [len(t) for t in text.tokens]
    assert text.embeddings.shape == (len(PROMPTS), text.valid.shape[1], tag.dim)
    padding = ~text.valid
    assert padding[1].any(), "the short prompt is padded in the batch"
    assert text.embeddings[padding].abs().sum() == 0, "padding embeds are zero"


def test_generation_shapes_seeds_and_decoding(family):
    tag, gen = family.tag, family.generation
    assert tuple(gen.codes.shape) == (len(PROMPTS), *tag.output_shape())
    assert gen.num_steps == tag.num_steps()
    assert gen.seeds == [prompt_seed(0, i) for i in range(len(PROMPTS))], "prompt i samples from prompt_seed(0, i)"
    wav = tag.decode(gen.codes)
    assert wav.dim() == 3 and wav.shape[0] == len(PROMPTS) and bool(torch.isfinite(wav).all())
    # codes' third axis is time: its frames at the frame rate make the clip, which lasts the duration asked to the
    # frame (MAGNeT trims to whole spans of 3 frames)
    assert wav.shape[-1] == round(gen.codes.shape[2] * tag.sample_rate / tag.frame_rate)
    assert abs(wav.shape[-1] / tag.sample_rate - tag.duration) < 3 / tag.frame_rate


def test_the_same_seed_gives_the_same_audio_and_leaves_the_callers_random_state(family):
    tag, gen = family.tag, family.generation
    state = torch.random.get_rng_state()
    again = tag.generate(PROMPTS, seed=0)
    assert torch.equal(torch.random.get_rng_state(), state), "the caller's global random state is untouched"
    assert torch.equal(again.codes, gen.codes)
    assert not torch.equal(tag.generate(PROMPTS, seed=1).codes, gen.codes)


# ---------------------------------------------------------------------------------------------------- the mask
def test_all_ones_mask_is_the_identity_in_generation(family):
    tag, gen = family.tag, family.generation
    masked = tag.generate(PROMPTS, seed=0, edit=CrossAttentionEdit(post_softmax=_mask(gen, 1)))
    assert torch.equal(masked.codes, gen.codes)


def test_all_ones_mask_is_the_identity_in_the_reference_forward(family):
    tag, gen = family.tag, family.generation
    plain = tag.forward_steps(gen, log_probs=True)
    masked = tag.forward_steps(gen, CrossAttentionEdit(post_softmax=_mask(gen, 1)), log_probs=True)
    assert torch.equal(masked.latents, plain.latents) and torch.equal(masked.log_probs, plain.log_probs)


def test_a_zero_mask_changes_latents_and_audio(family):
    tag, gen = family.tag, family.generation
    zeros = CrossAttentionEdit(post_softmax=_mask(gen, 0))
    assert (tag.forward_steps(gen, zeros).latents - tag.forward_steps(gen).latents).abs().max() > 1e-3
    assert not torch.equal(tag.generate(PROMPTS, seed=0, edit=zeros).codes, gen.codes)


@pytest.mark.parametrize("where", ["forward-tokens", "forward-steps", "generate-tokens", "generate-steps"])
def test_a_mask_of_the_wrong_shape_is_refused(family, where):
    """A mask built for other prompts (N) or another duration (T) is an error, not silently cropped or
    applied to padding keys."""
    tag, gen = family.tag, family.generation
    call, axis = where.split("-")
    mask = _mask(gen, 1, tokens=gen.text.valid.shape[1] + 3) if axis == "tokens" else _mask(gen, 1,
                                                                                            steps=gen.num_steps + 2)
    with pytest.raises(ValueError):
        if call == "forward":
            tag.forward_steps(gen, CrossAttentionEdit(post_softmax=mask))
        else:
            tag.generate(PROMPTS, seed=0, edit=CrossAttentionEdit(post_softmax=mask))


# ---------------------------------------------------------------------------------------------------- batch invariance
def test_a_prompt_alone_equals_it_beside_another(family):
    """Each prompt generated alone (its own seed) gives the text, the audio and the reference latents it gets in
    the batch, beside a longer or a shorter prompt (padding)."""
    tag, gen, atol = family.tag, family.generation, family.spec.batch_atol
    batched = tag.forward_steps(gen, log_probs=True)
    for i in range(len(PROMPTS)):
        alone = tag.generate(PROMPTS[i:i + 1], seed=gen.seeds[i:i + 1])
        n = len(gen.text.tokens[i])
        assert alone.text.tokens[0] == gen.text.tokens[i]
        close(alone.text.embeddings[0, :n], gen.text.embeddings[i, :n], atol, f"prompt {i}: text embeddings")
        if gen.text.extra is not None:  # a second, unmasked text stream (AudioLDM 2's GPT-2 vectors)
            close(alone.text.extra[0], gen.text.extra[i], atol, f"prompt {i}: the second text stream")
        close(alone.codes[0], gen.codes[i], atol, f"prompt {i}: generated codes")
        if gen.latents is not None:
            close(alone.latents[0], gen.latents[i], atol, f"prompt {i}: the latents generation kept")
        out = tag.forward_steps(alone, log_probs=True)
        close(out.latents[0], batched.latents[i], atol, f"prompt {i}: reference latents")
        close(out.log_probs[0], batched.log_probs[i], atol, f"prompt {i}: log-probabilities")


def test_repeats_are_independent_rows(family):
    """`repeats` copies of the prompts in one reference forward (factual and counterfactual masks together):
    each copy is what it is alone."""
    tag, gen, b = family.tag, family.generation, len(PROMPTS)
    mask = torch.rand(b, gen.num_steps, gen.text.valid.shape[1], generator=torch.Generator().manual_seed(0))
    single = tag.forward_steps(gen, CrossAttentionEdit(post_softmax=mask), log_probs=True)
    double = tag.forward_steps(gen, CrossAttentionEdit(post_softmax=torch.cat([mask, mask])), repeats=2,
                               log_probs=True)
    assert double.latents.shape[0] == 2 * b and double.log_probs.shape[0] == 2 * b
    close(double.latents[:b], double.latents[b:], 0, "the two copies")
    close(double.latents[:b], single.latents, family.spec.batch_atol, "a copy vs the prompts alone")


# ---------------------------------------------------------------------------------------------------- reference forward
def test_reference_forward_shapes_and_gradients(family):
    tag, gen = family.tag, family.generation
    b, t, n = len(PROMPTS), gen.num_steps, gen.text.valid.shape[1]
    mask = torch.full((b, t, n), 0.5, requires_grad=True)
    out = tag.forward_steps(gen, CrossAttentionEdit(post_softmax=mask), log_probs=True, grad=True)
    assert out.latents.shape == (b, t, tag.latent_dim) and bool(torch.isfinite(out.latents).all())
    assert out.log_probs.dim() == 3 and out.log_probs.shape[0] == b and out.log_probs.shape[2] == t
    assert bool(torch.isfinite(out.log_probs).all()) and bool((out.log_probs <= 0).all())
    (out.latents.pow(2).sum() + out.log_probs.sum()).backward()
    assert mask.grad is not None and bool(torch.isfinite(mask.grad).all())
    for i in range(b):
        assert mask.grad[i][:, gen.text.valid[i]].abs().sum() > 0, f"the mask of prompt {i} reaches the output"
    assert all(p.grad is None for p in tag.parameters()), "the model stays frozen"


def test_recorded_cross_attention(family):
    """The weights a `record` edit keeps, per layer ``[rB, *, T, N]`` (heads, or points x heads), are attention
    weights, and differentiable: the gradient baselines (Grad-CAM, Chefer) take the output's gradient to them."""
    tag, gen = family.tag, family.generation
    b, t, n = len(PROMPTS), gen.num_steps, gen.text.valid.shape[1]
    edit = CrossAttentionEdit(post_softmax=_mask(gen, 1, rows=2 * b), record=True)
    out = tag.forward_steps(gen, edit, repeats=2, log_probs=True, grad=True)
    weights = edit.layer_weights()
    assert weights, "every family records its text cross-attention"
    for w in weights:
        assert w.dim() == 4 and (w.shape[0], *w.shape[2:]) == (2 * b, t, n), tuple(w.shape)
        assert bool(torch.isfinite(w).all()) and w.min() >= 0 and bool((w.detach().sum(-1) <= 1 + 1e-5).all())
    recorded = [w for steps in edit.weights for w in steps]
    grads = torch.autograd.grad(out.log_probs.sum(), recorded, allow_unused=True)
    assert sum(float(g.abs().sum()) for g in grads if g is not None) > 0, "the output's gradient reaches the weights"


def test_self_attention_is_recorded_or_refused(family):
    tag, gen = family.tag, family.generation
    if not tag.records_self_attention:
        with pytest.raises(NotImplementedError):
            tag.forward_steps(gen, self_attention=True)
        return
    out = tag.forward_steps(gen, self_attention=True)
    t = gen.num_steps
    assert out.self_attention and all(w.dim() == 4 and w.shape[-2:] == (t, t) for w in out.self_attention)
    assert all(bool(torch.isfinite(w).all()) and w.min() >= 0 for w in out.self_attention)
    # recording runs the attention written out: float rounding of the latents only
    close(out.latents, tag.forward_steps(gen).latents, 1e-5, "latents while recording self-attention")


def test_generation_latents_are_the_reference_latents(family):
    gen = family.generation
    if gen.latents is None:
        pytest.skip(f"{family.name} keeps no latents during generation (the reference forward makes them)")
    close(family.tag.forward_steps(gen).latents, gen.latents, family.spec.generation_latents_atol,
          "reference latents vs those generation kept")


def test_generation_from_codes_reproduces_the_reference_forward(family):
    tag, gen = family.tag, family.generation
    rebuilt = tag.generation_from_codes(PROMPTS, gen.codes.cpu(), gen.seeds)
    assert rebuilt.num_steps == gen.num_steps and rebuilt.seeds == gen.seeds
    first, second = tag.forward_steps(gen, log_probs=True), tag.forward_steps(rebuilt, log_probs=True)
    assert torch.equal(second.latents, first.latents) and torch.equal(second.log_probs, first.log_probs)


def test_randomization_cascade_is_made_of_the_models_modules(family):
    steps = family.tag.randomization_cascade()
    assert len(steps) >= 2 and len({name for name, _ in steps}) == len(steps)
    owned = {id(m) for m in family.tag.modules()}
    assert all(modules and all(id(m) in owned for m in modules) for _, modules in steps)


# ---------------------------------------------------------------------------------------------------- methods
@pytest.fixture(params=sorted(METHODS))
def importance(request, family, untrained_explainer) -> torch.Tensor:
    """Each method's importance on the family's generation (computed once per session)."""
    return _importance(family, request.param, untrained_explainer)


def test_every_method_gives_an_importance_in_0_1_zero_at_padding(family, importance):
    gen = family.generation
    assert importance.shape == (len(PROMPTS), gen.num_steps, gen.text.valid.shape[1])
    assert bool(torch.isfinite(importance).all()) and importance.min() >= 0 and importance.max() <= 1 + 1e-6
    padding = ~gen.text.valid[:, None, :].expand_as(importance)
    assert padding.any() and bool((importance[padding] == 0).all())


def test_every_method_gives_each_prompt_some_importance(family, importance):
    for i, valid in enumerate(family.generation.text.valid):
        assert importance[i][:, valid].abs().sum() > 0, f"prompt {i} ({PROMPTS[i]!r}) got no importance"


# ---------------------------------------------------------------------------------------------------- end to end
def test_explain_end_to_end(family, tmp_path):
    from lightning_agx.api import explain
    tag, gen = family.tag, family.generation
    explanations = explain(tag, PROMPTS, output_dir=tmp_path, config=FAST, trainer=QUIET, figures=False)
    assert [e.prompt for e in explanations] == PROMPTS
    assert [tuple(e.mask.shape) for e in explanations] == [(gen.num_steps, len(t)) for t in gen.text.tokens]
    assert [e.metadata["seed"] for e in explanations] == gen.seeds
    for i, e in enumerate(explanations):
        assert e.tokens == gen.text.tokens[i] and e.frame_rate == tag.frame_rate
        assert 0 < float(e.mask.min()) and float(e.mask.max()) < 1, "AudioGenX's keep probabilities (a sigmoid)"
        close(e.codes, gen.codes[i].cpu(), family.spec.batch_atol, "explain's audio vs generate's, same seed")
        assert e.audio is not None and e.audio.shape == tag.decode(gen.codes[i:i + 1])[0].shape
        assert e.sample_rate == tag.sample_rate
    assert [e["status"] for e in json.loads((tmp_path / "index.json").read_text())] == ["done"] * len(PROMPTS)
    again = explain(tag, PROMPTS, output_dir=tmp_path, config=FAST, trainer=QUIET, figures=False)  # resumes
    assert all(torch.equal(a.mask, e.mask) and torch.equal(a.codes, e.codes) for a, e in zip(again, explanations))


def test_evaluate_end_to_end(family, tmp_path):
    from lightning_agx.classifiers import DebugClassifier
    from lightning_agx.evaluation.run import evaluate
    methods = ["audiogenx", "random"]
    result = evaluate(family.tag, PROMPTS, DebugClassifier(), tmp_path, methods=methods, explainer=FAST, repeats=1,
                      ori_repeats=1)
    rows = {row["method"]: row for row in result.table1}
    assert set(rows) == {"ori", *methods} and all(rows[m]["n"] == len(PROMPTS) for m in rows)
    assert result.paths["table1_md"].is_file() and result.paths["table2_csv"].is_file()
    assert result.computed == {m: len(PROMPTS) for m in methods} and result.originals_generated == len(PROMPTS)
    saved = Explanation.load(next((tmp_path / "prompts").glob("0001_*")) / "audiogenx")
    close(saved.codes, family.generation.codes[1].cpu(), family.spec.batch_atol, "the evaluation's original audio")
    again = evaluate(family.tag, PROMPTS, DebugClassifier(), tmp_path, methods=methods, explainer=FAST, repeats=1,
                     ori_repeats=1)  # resumes: nothing generated or explained again
    assert again.computed == {m: 0 for m in methods} and again.originals_generated == 0
    assert again.table1 == result.table1


# ---------------------------------------------------------------------------------------------------- checkpoints
def test_checkpoint_round_trip(family, tmp_path):
    """The model saved in its family's format and loaded back is the same model: the same weights, the same audio
    from the same seed, and a ``weights_hash`` (a run's identity) that another save and load keeps."""
    tag = family.tag
    again = family.spec.reload(tag, tmp_path / "saved")
    assert type(again) is type(tag)
    assert state_dict_hash(*again.hashed_modules()) == state_dict_hash(*tag.hashed_modules())
    assert torch.equal(again.generate(PROMPTS, seed=0).codes, family.generation.codes)
    assert family.spec.reload(again, tmp_path / "saved_again").weights_hash == again.weights_hash


def test_saved_explanations_rebuild_the_generation(family, tmp_path, untrained_explainer):
    """Explanations saved and loaded keep their mask, and their codes are what `generation_from_codes` takes to
    rebuild the reference forward they explain."""
    tag, gen = family.tag, family.generation
    importance = _importance(family, "random", untrained_explainer)
    made = build_explanations(tag, gen, importance, "random")
    loaded = [Explanation.load(e.save(tmp_path / str(i))) for i, e in enumerate(made)]
    for e, f in zip(made, loaded):
        assert torch.equal(e.mask, f.mask) and e.tokens == f.tokens and e.metadata["seed"] == f.metadata["seed"]
    codes = torch.stack([e.codes for e in loaded])
    assert codes.dtype == gen.codes.dtype
    rebuilt = tag.generation_from_codes([e.prompt for e in loaded], codes, [e.metadata["seed"] for e in loaded])
    first, second = tag.forward_steps(gen, log_probs=True), tag.forward_steps(rebuilt, log_probs=True)
    assert torch.equal(second.latents, first.latents) and torch.equal(second.log_probs, first.log_probs)
