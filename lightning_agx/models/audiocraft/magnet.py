"""audiocraft's MAGNeT (``MagnetLMModel``: non-autoregressive masked-token LM) behind `TAGModel`.

`AudiocraftMagnet` wraps an audiocraft ``MAGNeT`` genmodel (its ``lm`` and ``compression_model``); the text,
the codec, decoding and the randomisation cascade are those of every audiocraft model (`AudiocraftModel`).

**A step is one audio frame.** MAGNeT decodes every frame in parallel, codebook after codebook (a "stage"),
each stage in several decoding iterations that re-mask and re-sample the least probable spans, so no call
of the model belongs to one frame: T = the generated frames (a multiple of the span length, as MAGNeT trims
its sequence), step t covers seconds ``[t / frame_rate, (t + 1) / frame_rate)`` and the mask ``[B, T, N]``
edits the text cross-attention of frame t's query in every call (``edit_cross_attention(streaming=False)``).

**The reference forward** (`forward_steps`; the latents h_t of AudioGenX Eq. 2-6) is MAGNeT's own prediction
of the first codebook (stage 0) of frame t from the text and the rest of the generated audio, in two passes
run as one batch: codebook 0 of the generated codes with the even spans (of ``span_len`` frames) masked,
then with the odd spans masked, every higher codebook masked, ``stage=0``. h_t is the final hidden state
(after ``out_norm``) at frame t in the pass where frame t is masked; `log_probs` is log p(generated codebook-0
token of frame t) under that pass, ``[rB, 1, T]`` (codebook 0 is the only stream predicted there). Why:
- it depends on the generated audio (the other half of the spans is the generated codebook 0), as the LM's
  teacher-forced latents depend on the generated past;
- every pass is an input of MAGNeT's training distribution: its training picks a stage, masks spans of that
  codebook at a rate cos(pi u / 2), u ~ U(0, 1) (here one half), masks the higher codebooks and scores the
  masked positions only, which is where h_t is read; its stage-0 decoding passes through such states too
  (a falling fraction of the spans masked, the rest fixed);
- stage 0 predicts the first codebook, the coarsest description of a frame (the higher RVQ codebooks refine
  its residual), and its self-attention is unrestricted (``attn_mask_per_stage[0]`` is None).
The alternative of the first decoding iteration (every position masked) would not depend on the audio at all.
A mask ``[rB, T, N]`` edits both passes. The recorded cross-attention of frame t is its weights in the pass
that predicts it, one tensor per layer from which both passes' weights are assembled
(`predicting_pass_attention`), so the gradient baselines differentiate through the predicting pass.

**Batch invariance** is exact by construction: `generate` runs MAGNeT's own ``generate`` prompt by prompt,
each with its text encoded alone and torch's global generators (which MAGNeT samples from) seeded inside
``torch.random.fork_rng`` from the prompt's 'generation' stream (`lightning_agx.seeding.stream`); the caller's
global random state is left as it was. The reference forward runs the batch; padding keys get no
attention (`lightning_agx.models.attention`).

**Restricted self-attention.** At stages > 0 MAGNeT's self-attention sees only ``subcodes_context`` frames
on either side (``attn_mask_per_stage``). audiocraft applies that mask only with xformers: under its 'torch'
backend (the one lightning_agx selects) its memory-efficient path runs a *causal* attention instead, and its
other path fails unless the sequence has the mask's padded length. `stage_attention` computes the masked
attention explicitly, with the module's own weights, during generation and the reference forward.

Shapes: B prompts, K codebooks, T frames (steps), N text tokens, D = LM dimension.
"""
from __future__ import annotations

import contextlib
import math
import types

import torch
from torch import nn

from ._install import ensure_audiocraft
from ...errors import UserError
from ...seeding import resolve_seeds, stream
from ..attention import (CrossAttentionEdit, _KeyMask, attend_out, cross_attention_modules, edit_cross_attention,
                        project_qkv)
from .lm import TEXT_CONDITION, AudiocraftModel, LMText
from ..base import Generation, StepOutputs

ensure_audiocraft()

from audiocraft.modules.conditioners import ConditioningAttributes  # noqa: E402

#: Sampling parameters of ``MagnetLMModel.generate`` besides those of ``MAGNeT.generation_params``.
EXTRA_SAMPLING = ("anneal_temp", "span_scoring")


class AudiocraftMagnet(AudiocraftModel):
    """A frozen audiocraft MAGNeT text-to-audio model (see the module docstring)."""

    # ------------------------------------------------------------------ what it is
    @property
    def span_len(self) -> int:
        return max(int(self.lm.span_len), 1)

    def num_steps(self, duration: float | None = None) -> int:
        """The frames MAGNeT generates for `duration`: trimmed to a multiple of ``span_len``."""
        limit = self.max_duration
        if duration is not None and limit is not None and duration > limit:
            raise UserError(f"duration {duration} s is longer than the {limit} s {self.name} generates (its "
                            "self-attention masks cover that length)")
        frames = self.num_frames(duration)
        steps = frames - frames % self.span_len
        if steps <= 0:
            raise UserError(f"duration {duration or self.duration} s is shorter than one MAGNeT span "
                            f"({self.span_len} frames at {self.frame_rate:g} Hz)")
        return steps

    def output_shape(self, duration: float | None = None) -> tuple[int, ...]:
        return (self.lm.num_codebooks, self.num_steps(duration))

    @property
    def sampling_keys(self) -> tuple[str, ...]:
        return tuple(sorted({*self.generation_params, *EXTRA_SAMPLING}))

    # ------------------------------------------------------------------ generation
    @torch.no_grad()
    def generate(self, prompts: list[str] | LMText, duration: float | None = None,
                 seed: int | list[int] | None = None, edit: CrossAttentionEdit | None = None,
                 **overrides) -> Generation:
        """Sample audio tokens ``[B, K, T]`` with MAGNeT's own iterative decoding (see `TAGModel.generate`),
        prompt by prompt (see the module docstring). `overrides`: MAGNeT's sampling parameters (top_k,
        top_p, temp, max_cfg_coef, min_cfg_coef, decoding_steps, span_arrangement, ...). No latents are
        kept: no single call of the model produces a frame; `forward_steps` gives them."""
        text = prompts if isinstance(prompts, LMText) else self.encode_text(list(prompts))
        params = self._sampling(overrides)
        steps = self.num_steps(duration)
        seeds = resolve_seeds(seed, len(text))
        edit = edit if edit is not None else CrossAttentionEdit()
        if edit.record:
            raise NotImplementedError("recording MAGNeT's cross-attention during generation is not supported "
                                      "(every decoding iteration would be recorded); record it in forward_steps")
        if edit.batch_size not in (None, len(text)):
            raise ValueError(f"edit has {edit.batch_size} rows for {len(text)} prompts")
        codes = [self._generate_one(text, i, seeds[i], steps, edit, params) for i in range(len(text))]
        return Generation(text, torch.cat(codes), steps, None, seeds)

    def _generate_one(self, text: LMText, index: int, seed: int, steps: int, edit: CrossAttentionEdit,
                      params: dict) -> torch.Tensor:
        """Prompt `index` alone: its own text encoding, its mask rows, its seed. ``[1, K, T]``."""
        prompt = text.prompts[index]
        alone = self.encode_text([prompt])
        width = alone.valid.shape[1]
        if not (bool(alone.valid.all()) and bool(text.valid[index, :width].all())
                and int(text.valid[index].sum()) == width):
            raise RuntimeError(f"the text of {prompt!r} alone is not the unpadded prefix of its batch encoding")
        rows = CrossAttentionEdit(*(None if m is None else m[index:index + 1, :, :width]
                                    for m in (edit.post_softmax, edit.pre_softmax)))
        attributes = [ConditioningAttributes(text={TEXT_CONDITION: prompt})]
        device = self.device
        cuda = [device.index if device.index is not None else torch.cuda.current_device()] \
            if device.type == "cuda" else []
        state = stream(seed, "generation").initial_seed()  # this prompt's generation stream
        with torch.random.fork_rng(devices=cuda), edit_cross_attention(self.lm, rows, streaming=False), \
                stage_attention(self.lm), self._autocast():
            torch.random.default_generator.manual_seed(state)
            if cuda:
                with torch.cuda.device(cuda[0]):
                    torch.cuda.manual_seed(state)
            codes = self.lm.generate(None, attributes, max_gen_len=steps, **params)
        if codes.shape[-1] != steps or bool((codes == self.lm.special_token_id).any()):
            raise RuntimeError(f"MAGNeT returned codes of shape {tuple(codes.shape)} with mask tokens left or "
                               f"not {steps} frames; check decoding_steps (one entry per codebook)")
        return codes

    def _sampling(self, overrides: dict) -> dict:
        unknown = sorted(set(overrides) - set(self.sampling_keys))
        if unknown:
            hint = (" (MAGNeT's guidance is annealed from max_cfg_coef to min_cfg_coef; it has no cfg_coef or "
                    "two_step_cfg)" if {"cfg_coef", "two_step_cfg"} & set(unknown) else "")
            raise UserError(f"unknown MAGNeT sampling parameter(s) {', '.join(unknown)}{hint}; accepted: "
                            f"{', '.join(self.sampling_keys)}")
        params = {**self.generation_params, **overrides}
        if len(params["decoding_steps"]) != self.lm.num_codebooks:
            raise UserError(f"decoding_steps needs one entry per codebook ({self.lm.num_codebooks}); got "
                            f"{list(params['decoding_steps'])}")
        return params

    def generation_from_codes(self, prompts: list[str] | LMText, codes: torch.Tensor,
                              seeds: list[int] | None = None) -> Generation:
        text = prompts if isinstance(prompts, LMText) else self.encode_text(list(prompts))
        return Generation(text, codes.to(self.device), int(codes.shape[-1]), None, seeds)

    # ------------------------------------------------------------------ the reference forward
    def first_pass_frames(self, steps: int, device=None) -> torch.Tensor:
        """``[T]`` bool: frame t is masked (predicted) in the first pass (even span), else in the second."""
        return (torch.arange(steps, device=device) // self.span_len) % 2 == 0

    def forward_steps(self, generation: Generation, edit: CrossAttentionEdit | None = None, repeats: int = 1,
                      log_probs: bool = False, grad: bool = False, self_attention: bool = False) -> StepOutputs:
        """The two complementary span-masked stage-0 passes of the module docstring, as one batch of
        ``2 * repeats * B`` rows (`edit`, ``rB`` rows, applies to both); see `TAGModel.forward_steps`. The
        recorded cross-attention of a layer is ``[rB, heads, T, N]``: frame t's weights in the pass that
        predicts it (`predicting_pass_attention`)."""
        if self_attention:
            raise NotImplementedError("MAGNeT's self-attention (non-causal, masked per stage) is not recorded")
        lm = self.lm
        codes = generation.codes
        b, k, t = codes.shape
        rb = repeats * b
        first = self.first_pass_frames(t, codes.device)
        mask_id = lm.special_token_id
        inputs = torch.full((2, b, k, t), mask_id, dtype=codes.dtype, device=codes.device)
        inputs[:, :, 0] = codes[:, 0]
        inputs[0, :, 0, first] = mask_id
        inputs[1, :, 0, ~first] = mask_id
        inputs = torch.cat([inputs[0].repeat(repeats, 1, 1), inputs[1].repeat(repeats, 1, 1)])  # [2rB, K, T]
        conditions = generation.text.conditions(repeats=2 * repeats)
        edit = edit if edit is not None else CrossAttentionEdit()
        with contextlib.ExitStack() as stack:
            if grad:
                stack.enter_context(torch.enable_grad())
            stack.enter_context(predicting_pass_attention(lm, edit, first, rb))
            stack.enter_context(stage_attention(lm))
            x = sum(lm.emb[j](inputs[:, j]) for j in range(lm.num_codebooks))
            x, cross = lm.fuser(x, conditions)
            if grad:  # a leaf that requires grad: the graph reaches every intermediate tensor, weights stay frozen
                x = x.detach().requires_grad_(True)
            hidden = lm.transformer(x, cross_attention_src=cross, src_mask=lm.attn_mask_per_stage[0])
            if lm.out_norm is not None:
                hidden = lm.out_norm(hidden)
            latents = torch.where(first[None, :, None], hidden[:rb], hidden[rb:])  # [rB, T, D]
            scores = None
            if log_probs:
                logp = torch.log_softmax(lm.linears[0](latents).float(), dim=-1)  # [rB, T, card]
                target = codes[:, 0].repeat(repeats, 1)  # [rB, T]
                scores = logp.gather(-1, target.unsqueeze(-1)).squeeze(-1)[:, None]  # [rB, 1, T]
        return StepOutputs(latents, scores)


# ---------------------------------------------------------------------------------------------------- attention
@contextlib.contextmanager
def predicting_pass_attention(lm: nn.Module, edit: CrossAttentionEdit, first: torch.Tensor, rows: int):
    """The text cross-attention of the reference forward's two passes (batch rows ``[pass 0; pass 1]``, `rows`
    = rB each; `first` ``[T]``: frames predicted in pass 0), inside the block.

    Each layer computes what `edit_cross_attention` computes (audiocraft's projections, scores
    q.k/sqrt(d) times ``edit.pre_softmax``, padding keys at -inf, softmax, times ``edit.post_softmax``; the
    ``rB``-row masks apply to both passes), then takes frame t's weights from the pass that predicts it as
    one tensor ``[rB, heads, T, N]`` (recorded when ``edit.record``) and assembles both passes' weights from
    it and the other rows, values unchanged: the recorded tensor is part of the graph, so the gradient
    baselines differentiate the outputs with respect to it (through the pass that predicts each frame)."""
    modules = cross_attention_modules(lm)
    if any("forward" in vars(m) for m in modules):
        raise RuntimeError("cross-attention is already edited; nested edits are not supported")
    keys = _KeyMask()
    hook = lm.fuser.register_forward_pre_hook(keys.read, with_kwargs=True)
    edit.weights = [[] for _ in modules]
    twice = {name: None if m is None else torch.cat([m, m])[:, None]  # [2rB, 1, T, N]
             for name, m in (("pre", edit.pre_softmax), ("post", edit.post_softmax))}
    pick = first[None, None, :, None]

    def make(layer: int):
        def forward(module, query, key, value, key_padding_mask=None, need_weights=False, attn_mask=None,
                    average_attn_weights=True, is_causal=False):
            if key_padding_mask is not None or attn_mask is not None:
                raise NotImplementedError("edited cross-attention does not support key_padding_mask/attn_mask")
            for m in twice.values():
                if m is not None and (m.shape[0], *m.shape[2:]) != (query.shape[0], query.shape[1], key.shape[1]):
                    raise ValueError(f"a mask [{m.shape[0] // 2}, {m.shape[2]}, {m.shape[3]}] does not fit the "
                                     f"reference forward's [{rows}, {query.shape[1]}, {key.shape[1]}] (rB, T, N)")
            q, k, v, dtype = project_qkv(module, query, key, value)
            scores = torch.einsum("bhtd,bhnd->bhtn", q, k) / math.sqrt(q.shape[-1])
            if twice["pre"] is not None:
                scores = scores * twice["pre"].to(scores)
            if keys.valid is not None:
                scores = scores.masked_fill(~keys.valid[:, None, None, :], float("-inf"))
            weights = torch.softmax(scores, dim=-1)
            if twice["post"] is not None:
                weights = weights * twice["post"].to(weights)
            own = torch.where(pick, weights[:rows], weights[rows:])  # frame t where it is predicted
            other = torch.where(pick, weights[rows:], weights[:rows])  # frame t where it is context
            if edit.record:
                edit.weights[layer].append(own)
            weights = torch.cat([torch.where(pick, own, other), torch.where(pick, other, own)])
            return attend_out(module, weights, v, dtype), None

        return forward

    try:
        for index, module in enumerate(modules):
            module.forward = types.MethodType(make(index), module)
        yield edit
    finally:
        hook.remove()
        for module in modules:
            vars(module).pop("forward", None)


@contextlib.contextmanager
def stage_attention(lm: nn.Module):
    """Inside the block, a self-attention called with MAGNeT's stage mask (``attn_mask``, additive,
    ``[1, heads, S, S]`` padded to a multiple of 8) computes softmax(q k^T / sqrt(d) + mask) v with the
    module's own projections; without a mask it runs audiocraft's own forward."""
    modules = [layer.self_attn for layer in lm.transformer.layers]
    if any("forward" in vars(m) for m in modules):
        raise RuntimeError("self-attention is already patched; nested stage_attention is not supported")
    try:
        for module in modules:
            module.forward = types.MethodType(_stage_masked_forward, module)
        yield
    finally:
        for module in modules:
            vars(module).pop("forward", None)


def _stage_masked_forward(module, query, key, value, key_padding_mask=None, need_weights=False, attn_mask=None,
                          average_attn_weights=True, is_causal=False):
    if attn_mask is None:
        return type(module).forward(module, query, key, value, key_padding_mask=key_padding_mask,
                                    need_weights=need_weights, average_attn_weights=average_attn_weights)
    if key_padding_mask is not None or getattr(module, "causal", False) or getattr(module, "rope", None) is not None \
            or getattr(module, "kv_repeat", 1) != 1:
        raise NotImplementedError("MAGNeT's stage mask with a key padding mask, causal attention, rotary "
                                  "embeddings or kv_repeat is not supported")
    q, k, v, dtype = project_qkv(module, query, key, value)
    length = q.shape[2]
    scores = torch.einsum("bhtd,bhsd->bhts", q, k) / math.sqrt(q.shape[-1])
    scores = scores + attn_mask[..., :length, :length].to(scores)
    return attend_out(module, torch.softmax(scores, dim=-1), v, dtype), None


__all__ = ["AudiocraftMagnet", "predicting_pass_attention", "stage_attention"]
