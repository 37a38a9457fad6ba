"""The speed and memory options (lightning_agx.performance): off on CPU by default, each one faithful when on."""
import os

import pytest
import torch

from lightning_agx.errors import UserError
from lightning_agx.explainer import ExplainerConfig, optimize_masks
from lightning_agx.performance import CHECKPOINT_TOKENS, Performance, Resolved, tf32_matmuls

MOVING = ExplainerConfig(hidden=16, epochs=10, lr=1e-2)  # a larger lr than the authors': the mask moves in 10 steps


@pytest.fixture
def debug_perf(debug_tag):
    """The session's debug model, its performance options restored after the test."""
    yield debug_tag
    debug_tag.performance = Performance()


def _mask(tag, generation, performance):
    tag.performance = performance
    return optimize_masks(tag, generation, MOVING, seed=0)


def test_defaults_are_off_on_cpu_and_on_on_cuda():
    assert Performance().resolve("cpu") == Resolved(autocast=None, tf32=False, compile="off", checkpoint_tokens=None)
    cuda = Performance().resolve("cuda")
    assert cuda.autocast in (torch.bfloat16, torch.float16) and cuda.tf32 and cuda.compile == "off"
    assert cuda.checkpoint_tokens == CHECKPOINT_TOKENS and not cuda.checkpoints(100) and cuda.checkpoints(10_000)
    forced = Performance(autocast="off", tf32=False, checkpointing=False).resolve("cuda")
    assert (forced.autocast, forced.tf32, forced.checkpoint_tokens) == (None, False, None)


def test_a_bad_option_is_one_line():
    with pytest.raises(UserError, match="unknown autocast dtype 'fp8'; available: bfloat16, float16, off"):
        Performance(autocast="fp8")
    with pytest.raises(UserError, match="unknown compile mode 'fast'"):
        Performance(compile="fast")


def test_bf16_autocast_latents_are_float32_and_close(debug_perf, debug_generation):
    reference = debug_perf.latents(debug_generation)
    debug_perf.performance = Performance(autocast="bfloat16")
    latents = debug_perf.latents(debug_generation)
    assert latents.dtype == torch.float32  # the losses stay float32
    assert not torch.equal(latents, reference)  # the option is active (bf16 rounds the LM's matmuls)
    # bf16 keeps 8 bits of mantissa: relative error of the order of 2^-8 per op, a few of them in 2 layers
    assert (latents - reference).abs().max() < 2e-2 * reference.abs().max()


def test_bf16_autocast_mask_is_close_to_float32(debug_perf, debug_generation):
    fp32 = _mask(debug_perf, debug_generation, Performance())
    bf16 = _mask(debug_perf, debug_generation, Performance(autocast="bfloat16"))
    assert (fp32 - 0.5).abs().mean() > 0.05  # the mask moved far from its start, so closeness means something
    assert (bf16 - fp32).abs().max() < 0.02


def test_activation_checkpointing_gives_the_same_mask(debug_perf, debug_generation):
    plain = _mask(debug_perf, debug_generation, Performance())
    checkpointed = _mask(debug_perf, debug_generation, Performance(checkpointing=True))
    assert (checkpointed - plain).abs().max() < 1e-6  # the same arithmetic, recomputed


def test_activation_checkpointing_recomputes_with_the_mask(debug_perf, debug_generation, monkeypatch):
    """The recomputation runs in the backward, after the edit's context ended: it must still apply the mask."""
    from lightning_agx.models import CrossAttentionEdit, attention
    edited = attention._edited_forward
    masked_calls = []

    def counting(module, edit, *args, **kwargs):
        masked_calls.append(edit.post_softmax is not None)
        return edited(module, edit, *args, **kwargs)

    monkeypatch.setattr(attention, "_edited_forward", counting)
    grads = []
    for performance in (Performance(), Performance(checkpointing=True)):
        debug_perf.performance = performance
        mask = torch.full((2, debug_generation.num_steps, debug_generation.text.valid.shape[1]), 0.7,
                          requires_grad=True)
        with torch.enable_grad():
            debug_perf.latents(debug_generation, CrossAttentionEdit(post_softmax=mask)).sum().backward()
        grads.append(mask.grad)
    layers = len(debug_perf.lm.transformer.layers)
    assert len(masked_calls) == 3 * layers and all(masked_calls)  # 1 pass without, forward + recomputation with
    assert torch.allclose(grads[0], grads[1], atol=1e-6) and grads[0].abs().sum() > 0


def test_tf32_flags_are_restored():
    before = torch.backends.cuda.matmul.allow_tf32
    with tf32_matmuls():
        assert torch.backends.cuda.matmul.allow_tf32
    assert torch.backends.cuda.matmul.allow_tf32 == before


@pytest.mark.skipif(not torch.cuda.is_available() and not os.environ.get("LIGHTNING_AGX_TEST_COMPILE"),
                    reason="torch.compile takes ~70 s on 2 CPU cores; LIGHTNING_AGX_TEST_COMPILE=1 runs it")
def test_compiled_teacher_forcing_gives_the_same_mask(debug_perf, debug_generation):
    plain = _mask(debug_perf, debug_generation, Performance())
    compiled = _mask(debug_perf, debug_generation, Performance(compile="default"))
    assert (compiled - plain).abs().max() < 1e-5  # inductor reorders float32 sums: last-digit differences


def test_run_identity_records_options_that_change_the_numbers(debug_tag):
    """A resume never reuses results made with other numerics: bf16 / TF32 / compile enter the run identity;
    the CPU defaults (all off) and exact checkpointing leave it as it was."""
    from lightning_agx.explainer import ExplainerConfig
    from lightning_agx.performance import Performance
    from lightning_agx.resume import run_identity
    previous = debug_tag.performance
    try:
        identities = {}
        for name, options in (("off", Performance()), ("checkpointing", Performance(checkpointing=True)),
                              ("bf16", Performance(autocast="bfloat16"))):
            debug_tag.performance = options
            identities[name] = run_identity(debug_tag, "audiogenx", ExplainerConfig(), 0, None, None)
    finally:
        debug_tag.performance = previous
    assert "numerics" not in identities["off"] and identities["checkpointing"] == identities["off"]
    assert identities["bf16"]["numerics"] == {"autocast": "bfloat16", "tf32": False, "compile": "off"}


def test_config_passes_performance_to_the_model():
    from lightning_agx.config import ExplainRun, parse
    run = parse(ExplainRun, ["--config", "configs/debug.yaml", "--model.performance.autocast", "bfloat16"])
    assert run.model.performance.autocast == "bfloat16"
