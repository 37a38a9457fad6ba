"""transformers' MusicGen (``MusicgenForConditionalGeneration``) behind `TAGModel`: the route many MusicGen users
take, loaded from safetensors (no pickle at all).

The model is transformers' own, never forked: a T5 text encoder (plus ``enc_to_dec_proj`` where the widths differ),
the MusicGen decoder (``MusicgenForCausalLM``: K codebook embeddings, sinusoidal positions, causal self-attention,
cross-attention to the text, one LM head per codebook) and the EnCodec codec (``audio_encoder``).

**The edit** enters the decoder's text cross-attention through transformers' attention interface: this module
registers `edited_cross_attention_forward` as a transformers attention function (``AttentionInterface.register``,
name `ATTENTION_NAME`), and `edited_cross_attention` switches the ``encoder_attn`` module of every decoder layer to
it for the duration of a ``with`` block (each gets a copy of the decoder config whose ``_attn_implementation`` names
it; leaving the block, or an error, puts the shared config back). transformers calls it with the module's own
projections (q, k, v ``[batch, heads, L, d]``) and scaling; it computes ``softmax(q k^T * scaling)`` explicitly so
that a `CrossAttentionEdit` multiplies the scores (pre_softmax) or the weights (post_softmax, no renormalisation)
and records them, then ``weights @ v``; transformers applies ``out_proj``. Self-attention, the causal mask and the
text encoder are untouched (their implementation stays transformers' choice, sdpa by default). Padding text keys
get no attention (a score of -inf, so a prompt's output does not depend on its neighbours' lengths); a row with no
valid key (the unconditional rows of classifier-free guidance, whose text is zeros) attends to its first key only,
which, all its keys being equal, is transformers' value.

**Classifier-free guidance** as transformers' ``generate`` does it: the batch is ``[cond; uncond]``, the
unconditional rows read zeroed encoder states with an all-zero attention mask, and the logits are
``uncond + (cond - uncond) * guidance_scale`` (transformers' ``ClassifierFreeGuidanceLogitsProcessor``, then its
temperature, top-k and top-p warpers); no unconditional rows when ``guidance_scale <= 1``. The edit concerns the
conditional rows only. **Per-prompt seeds**: transformers' ``generate`` samples the whole batch from torch's global
generator, so the adapter runs its own sampling loop over the decoder (with transformers' key/value cache): each
prompt samples its K codes of a step from its own ``torch.Generator`` (`lightning_agx.seeding.streams`).

**A step** is one decoder step of the delayed sequence, as for audiocraft's LM: transformers builds the delay
pattern (``MusicgenForCausalLM.build_delay_pattern_mask``): a sequence of S = F + K' positions (K' = K codebooks,
or K / 2 for stereo models whose left/right codebooks share a delay), position 0 the decoder start token, codebook k
delayed by k; step t reads positions 0..t and predicts position t + 1 (codebook k's frame t - k), so
T = S - 1 = F + K' - 1 and step t covers about frame t.

**The reference forward** (`TransformersMusicgen.forward_steps`) is one teacher-forced pass of the decoder over
positions 0..T-1 of the finished sequence (causal self-attention, no cache), the text of the conditional rows (with
`cfg`, the unconditional rows follow in the batch, as in generation). Its latents h_t are the decoder's last hidden
state (after its final layer norm) at step t ``[B, T, hidden]``, the input of the LM heads; its log-probabilities
those of the generated code of each codebook at each step from the conditional model (0 where the delay pattern
has no frame). The text embeddings X are what the cross-attention reads: T5's last hidden state, projected by
``enc_to_dec_proj`` where the model has one, zero at padding (as transformers' forward multiplies them by the
attention mask); ``dim`` is the decoder's width.

Sampling parameters (`TransformersMusicgen.generation_params`, overridable per call) use the keys every family
shares in run identities (`lightning_agx.resume.SAMPLING_KEYS`): ``use_sampling`` (transformers' ``do_sample``),
``temp`` (``temperature``), ``top_k`` (0: off), ``top_p`` (0: off; transformers' 1.0 is off too) and
``guidance_scale``, read from the model's ``generation_config``.

Names (`lightning_agx.models.registry.load_model`): a folder written by ``save_pretrained`` (its ``config.json``
has model_type "musicgen"), or ``transformers:<hub id or folder>``, e.g. ``transformers:facebook/musicgen-small``.
The Hub repositories of facebook/musicgen-* hold both audiocraft's checkpoint (``state_dict.bin``, which the bare
name loads with audiocraft, `lightning_agx.models.audiocraft.checkpoints`) and transformers' (``model.safetensors``): the
``transformers:`` prefix chooses the format, so every existing name keeps its meaning.
"""
from __future__ import annotations

import contextlib
import copy
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ...errors import ModelLoadError, UserError
from ...performance import Performance
from ...seeding import resolve_seeds, streams
from ..attention import CrossAttentionEdit, _rows
from ..base import Generation, StepOutputs, TAGModel, TextConditioning
from . import PREFIX, is_musicgen_folder, is_transformers_name  # noqa: F401  re-exported

ATTENTION_NAME = "lightning_agx_edited_cross_attention"
DEFAULT_DURATION = 10.0
_EDIT = "_lightning_agx_edit"  # the attribute of an edited encoder_attn module: (state, layer index)
_ALLOW = ["*.json", "*.safetensors", "*.model", "*.txt"]  # what a transformers MusicGen folder needs (no .bin)


# ---------------------------------------------------------------------------------------------------- attention
@dataclass
class CrossState:
    """What the edited cross-attention of every layer reads during one decoder call."""

    edit: CrossAttentionEdit
    valid: torch.Tensor  # [batch, N] bool: keys that get attention (a row with none: its first key)
    start: int = 0  # the step of the current call's first query


def edited_cross_attention_forward(module: nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                                   attention_mask: torch.Tensor | None, scaling: float | None = None,
                                   dropout: float = 0.0, **kwargs):
    """A transformers attention function (``AttentionInterface``): q ``[b, h, L, d]``, k, v ``[b, h, N, d]`` ->
    (output ``[b, L, h, d]``, weights ``[b, h, L, N]``), with the edit of the module's `CrossState` applied.
    Padding keys come from the state (the model's own ``attention_mask`` marks the same keys)."""
    hook = vars(module).get(_EDIT)
    if hook is None:
        raise RuntimeError(f"the '{ATTENTION_NAME}' attention runs only inside edited_cross_attention")
    state, layer = hook
    edit = state.edit
    batch, _, length, _ = query.shape
    n_keys = key.shape[2]
    if tuple(state.valid.shape) != (batch, n_keys):
        raise RuntimeError(f"cross-attention sees {batch} rows x {n_keys} keys but the text has "
                           f"{tuple(state.valid.shape)}")
    scale = query.shape[-1] ** -0.5 if scaling is None else scaling
    scores = torch.matmul(query, key.transpose(2, 3)) * scale  # [b, h, L, N]
    if edit.pre_softmax is not None:
        scores = scores * _rows(edit.pre_softmax, state.start, length, batch, n_keys).to(scores)
    scores = scores.masked_fill(~state.valid[:, None, None, :], float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    if edit.post_softmax is not None:
        weights = weights * _rows(edit.post_softmax, state.start, length, batch, n_keys).to(weights)
    if edit.record:
        edit.weights[layer].append(weights)
    output = torch.matmul(weights.to(value.dtype), value).transpose(1, 2).contiguous()
    return output, weights


def _register() -> None:
    from transformers import AttentionInterface
    AttentionInterface.register(ATTENTION_NAME, edited_cross_attention_forward)


def cross_attention_modules(decoder: nn.Module) -> list[nn.Module]:
    """The ``encoder_attn`` module of every layer of a ``MusicgenForCausalLM``, in layer order."""
    return [layer.encoder_attn for layer in decoder.model.decoder.layers]


def key_validity(valid: torch.Tensor) -> torch.Tensor:
    """``[batch, N]`` keys that get attention: the valid text tokens; a row with none attends to its first key."""
    valid = valid.bool()
    empty = ~valid.any(dim=1)
    if empty.any():
        valid = valid.clone()
        valid[empty, 0] = True
    return valid


@contextlib.contextmanager
def edited_cross_attention(decoder: nn.Module, edit: CrossAttentionEdit | None, valid: torch.Tensor):
    """Inside the block, the text cross-attention of every decoder layer is `edited_cross_attention_forward` with
    `edit` (None: padding masked only) and key validity `valid` ``[batch, N]``; yields the `CrossState` (its
    ``start``: the step of the next call's first query)."""
    modules = cross_attention_modules(decoder)
    if any(_EDIT in vars(m) for m in modules):
        raise RuntimeError("cross-attention is already edited; nested edited_cross_attention is not supported")
    edit = edit if edit is not None else CrossAttentionEdit()
    edit.weights = [[] for _ in modules]
    state = CrossState(edit, key_validity(valid))
    configs = [m.config for m in modules]
    try:
        for index, module in enumerate(modules):
            config = copy.copy(module.config)
            config._attn_implementation = ATTENTION_NAME
            module.config = config
            setattr(module, _EDIT, (state, index))
        yield state
    finally:
        for module, config in zip(modules, configs):
            module.config = config
            vars(module).pop(_EDIT, None)


# ---------------------------------------------------------------------------------------------------- the family
@dataclass
class MusicgenGeneration(Generation):
    """`Generation` with the decoder's delayed sequence."""

    sequence: torch.Tensor | None = None  # [B, K, S]: position 0 the start token, the pad token where no frame

    def select(self, index: list[int]) -> "MusicgenGeneration":
        base = super().select(index)
        return MusicgenGeneration(base.text, base.codes, base.num_steps, base.latents, base.seeds,
                                  self.sequence[index])


class TransformersMusicgen(TAGModel):
    """A frozen transformers ``MusicgenForConditionalGeneration`` and its tokenizer (see the module docstring)."""

    SAMPLING_KEYS = ("use_sampling", "temp", "top_k", "top_p", "guidance_scale")

    def __init__(self, model: nn.Module, tokenizer, name: str = "transformers-musicgen",
                 duration: float | None = None):
        _register()
        config = model.config
        if config.decoder.audio_channels not in (1, 2):
            raise ModelLoadError(f"'{name}': {config.decoder.audio_channels} audio channels; MusicGen has 1 or 2")
        super().__init__(name, DEFAULT_DURATION)
        self.model = model
        self.tokenizer = tokenizer
        generation = model.generation_config
        self.max_positions = int(getattr(generation, "max_length", None) or 1500)
        self.generation_params = {  # SAMPLING_KEYS
            "use_sampling": bool(getattr(generation, "do_sample", True)),
            "temp": float(getattr(generation, "temperature", None) or 1.0),
            "top_k": int(getattr(generation, "top_k", None) or 0),
            "top_p": _top_p(getattr(generation, "top_p", None)),
            "guidance_scale": float(getattr(generation, "guidance_scale", None) or 1.0)}
        self.pad_token = int(generation.pad_token_id if generation.pad_token_id is not None
                             else config.decoder.pad_token_id)
        self.start_token = int(generation.decoder_start_token_id if generation.decoder_start_token_id is not None
                               else config.decoder.bos_token_id)
        self.performance = Performance()
        self.random_weights = False
        self.requires_grad_(False)
        self.eval()
        self.duration = float(duration) if duration is not None else min(DEFAULT_DURATION, self.max_duration)
        if duration is not None:
            self.num_steps(duration)  # a duration over the model's limit fails here

    # ------------------------------------------------------------------ parts
    @property
    def decoder(self) -> nn.Module:
        return self.model.decoder  # MusicgenForCausalLM

    @property
    def codec(self) -> nn.Module:
        return self.model.audio_encoder

    @property
    def num_codebooks(self) -> int:
        return int(self.decoder.num_codebooks)

    @property
    def delays(self) -> int:
        """K': the codebooks with distinct delays (stereo models interleave left/right codebooks of equal delay)."""
        k = self.num_codebooks
        return k // 2 if self.model.config.decoder.audio_channels == 2 else k

    # ------------------------------------------------------------------ what it is
    @property
    def frame_rate(self) -> float:
        codec = self.codec.config
        return float(codec.sampling_rate / codec.hop_length)

    @property
    def sample_rate(self) -> int:
        return int(self.codec.config.sampling_rate)

    @property
    def dim(self) -> int:
        return int(self.model.config.decoder.hidden_size)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def max_text_tokens(self) -> int | None:
        limit = getattr(self.tokenizer, "model_max_length", None)
        return int(limit) if limit is not None and limit < 1e9 else None

    @property
    def max_duration(self) -> float | None:
        """The longest clip transformers' ``generate`` makes by default: ``generation_config.max_length``
        positions of the delayed sequence (1500: 29.92 s for facebook/musicgen-*)."""
        return (self.max_positions - self.delays) / self.frame_rate

    @property
    def sampling_keys(self) -> tuple[str, ...]:
        return self.SAMPLING_KEYS

    def hashed_modules(self) -> tuple[nn.Module, ...]:
        return (self.model,)

    def num_steps(self, duration: float | None = None) -> int:
        return self._frames(duration) + self.delays - 1

    def output_shape(self, duration: float | None = None) -> tuple[int, ...]:
        return (self.num_codebooks, self._frames(duration))

    def _frames(self, duration: float | None) -> int:
        frames = self.num_frames(duration)
        seconds = duration or self.duration
        if frames + self.delays > self.max_positions:
            raise UserError(f"duration {seconds} s is longer than the {self.max_duration:g} s {self.name} generates "
                            "at most; give a shorter duration")
        if frames < self.delays - 1:  # transformers builds no delay pattern for so short a sequence
            raise UserError(f"duration {seconds} s is shorter than the {self.delays - 1} audio frames {self.name}'s "
                            f"delay pattern needs ({(self.delays - 1) / self.frame_rate:.3f} s); "
                            "give a longer duration")
        return frames

    # ------------------------------------------------------------------ text
    def token_strings(self, prompt: str) -> list[str]:
        """The text tokens of `prompt` as the tokenizer splits it (T5: sub-word pieces and '</s>')."""
        return self.tokenizer.convert_ids_to_tokens(self.tokenizer([prompt])["input_ids"][0])

    @torch.no_grad()
    def encode_text(self, prompts: list[str]) -> TextConditioning:
        """T5 over the prompts (padded to the longest), projected as the decoder's cross-attention reads them."""
        tokens = self.check_text(prompts)
        inputs = self.tokenizer(list(prompts), padding="longest", return_tensors="pt").to(self.device)
        mask = inputs["attention_mask"]
        hidden = self.model.text_encoder(input_ids=inputs["input_ids"], attention_mask=mask).last_hidden_state
        config = self.model.config
        if config.text_encoder.hidden_size != config.decoder.hidden_size and \
                config.decoder.cross_attention_hidden_size is None:
            hidden = self.model.enc_to_dec_proj(hidden)  # as MusicgenForConditionalGeneration.forward
        valid = mask.bool()
        for i, toks in enumerate(tokens):
            if int(valid[i].sum()) != len(toks):
                raise RuntimeError(f"token strings ({len(toks)}) and tokenizer ids ({int(valid[i].sum())}) disagree "
                                   f"for prompt {prompts[i]!r}")
        return TextConditioning(list(prompts), tokens, hidden * mask[..., None].to(hidden.dtype), valid)

    def _conditions(self, text: TextConditioning, repeats: int = 1, cfg: bool = False):
        """(encoder states ``[rows, N, D]``, attention mask ``[rows, N]``): `repeats` copies of the prompts, then
        with `cfg` as many unconditional rows (zero states, zero mask, as transformers' ``generate``)."""
        states = text.embeddings.repeat(repeats, 1, 1)
        mask = text.valid.long().repeat(repeats, 1)
        if cfg:
            states = torch.cat([states, torch.zeros_like(states)])
            mask = torch.cat([mask, torch.zeros_like(mask)])
        return states, mask

    # ------------------------------------------------------------------ generation
    @torch.no_grad()
    def generate(self, prompts: list[str] | TextConditioning, duration: float | None = None,
                 seed: int | list[int] | None = None, edit: CrossAttentionEdit | None = None,
                 **overrides) -> MusicgenGeneration:
        """Sample audio codes for `prompts` (see `TAGModel.generate`), keeping the conditional latents h_t of every
        step. `overrides`: use_sampling, temp, top_k, top_p, guidance_scale."""
        unknown = sorted(set(overrides) - set(self.SAMPLING_KEYS))
        if unknown:
            raise UserError(f"{self.name} has no sampling setting {', '.join(unknown)}; its settings: "
                            f"{', '.join(self.SAMPLING_KEYS)}")
        params = {**self.generation_params, **overrides}
        text = prompts if isinstance(prompts, TextConditioning) else self.encode_text(list(prompts))
        frames = self._frames(duration)
        b, k, device = len(text), self.num_codebooks, self.device
        _check_edit(edit, b, frames + self.delays - 1, text.valid.shape[1])
        seeds = resolve_seeds(seed, b)
        generators = streams(seeds, "generation", device)
        cfg = params["guidance_scale"] > 1
        states, mask = self._conditions(text, cfg=cfg)
        warpers = _warpers(params)
        length = frames + self.delays
        start = torch.full((b * k, 1), self.start_token, dtype=torch.long, device=device)
        _, pattern = self.decoder.build_delay_pattern_mask(start, pad_token_id=self.start_token, max_length=length)
        pattern = pattern.reshape(b, k, length)  # -1 where a code is to be sampled
        sequence = pattern.clone()
        sequence[..., 0] = self.start_token
        latents, cache = [], None
        with edited_cross_attention(self.decoder, edit, mask) as state:
            for step in range(length - 1):
                inputs = sequence[..., step:step + 1].reshape(b * k, 1)
                state.start = step
                out = self.decoder.model.decoder(
                    input_ids=inputs.repeat(2, 1) if cfg else inputs, encoder_hidden_states=states,
                    encoder_attention_mask=mask, past_key_values=cache, use_cache=True)
                cache = out.past_key_values
                hidden = out.last_hidden_state[:, -1]  # [rows, D]
                latents.append(hidden[:b].float())
                logits = torch.stack([head(hidden) for head in self.decoder.lm_heads], dim=1)  # [rows, K, card]
                scores = logits.reshape(-1, logits.shape[-1]).float()
                history = sequence[..., :step + 1].reshape(b * k, -1)
                for warper in warpers(cfg):
                    scores = warper(history, scores)
                codes = _sample(scores.reshape(b, k, -1), params, generators)  # [B, K]
                target = pattern[..., step + 1]
                sequence[..., step + 1] = torch.where(target == -1, codes, target)
        codes = sequence[pattern == -1].reshape(b, k, frames)
        return MusicgenGeneration(text, codes, length - 1, torch.stack(latents, dim=1), seeds, sequence)

    def generation_from_codes(self, prompts: list[str] | TextConditioning, codes: torch.Tensor,
                              seeds: list[int] | None = None) -> MusicgenGeneration:
        text = prompts if isinstance(prompts, TextConditioning) else self.encode_text(list(prompts))
        codes = codes.to(self.device).long()
        sequence = self.delayed_sequence(codes)
        return MusicgenGeneration(text, codes, sequence.shape[-1] - 1, None, seeds, sequence)

    def delayed_sequence(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes ``[B, K, F]`` -> the decoder's delayed sequence ``[B, K, F + K']`` (transformers' delay pattern,
        as generation builds it)."""
        b, k, frames = codes.shape
        if k != self.num_codebooks:
            raise ValueError(f"codes have {k} codebooks; {self.name} has {self.num_codebooks}")
        start = torch.full((b, k, 1), self.start_token, dtype=torch.long, device=codes.device)
        ids = torch.cat([start, codes], dim=-1).reshape(b * k, frames + 1)
        _, sequence = self.decoder.build_delay_pattern_mask(ids, pad_token_id=self.start_token,
                                                            max_length=frames + self.delays)
        return sequence.reshape(b, k, -1)

    # ------------------------------------------------------------------ the reference forward
    def forward_steps(self, generation: MusicgenGeneration, edit: CrossAttentionEdit | None = None,
                      repeats: int = 1, log_probs: bool = False, grad: bool = False, self_attention: bool = False,
                      cfg: bool = False) -> StepOutputs:
        """One teacher-forced decoder pass over all T steps of `generation` (see the module docstring and
        `TAGModel.forward_steps`); with `cfg` the unconditional rows follow in the batch, as in generation (the
        outputs are the conditional rows). `self.performance` may run it under autocast / TF32 (latents float32)."""
        if self_attention:
            raise NotImplementedError("transformers MusicGen's self-attention is not recorded")
        b, k, _ = generation.sequence.shape
        rb = repeats * b
        _check_edit(edit, rb, generation.num_steps, generation.text.valid.shape[1])
        perf = self.performance.resolve(self.device)
        if perf.compile != "off":
            raise UserError("torch.compile is not available for transformers MusicGen's reference forward; "
                            "set the performance option compile to 'off'")
        inputs = generation.sequence[..., :-1].repeat(repeats, 1, 1)  # [rB, K, T]
        states, mask = self._conditions(generation.text, repeats, cfg)
        if cfg:
            inputs = torch.cat([inputs, inputs])
        steps = inputs.shape[-1]
        with contextlib.ExitStack() as stack:
            if grad:
                stack.enter_context(torch.enable_grad())
                # a leaf that requires grad: the graph reaches every intermediate tensor, the weights stay frozen
                embed = self.decoder.model.decoder.embed_tokens[0]
                hook = embed.register_forward_hook(lambda module, args, out: out.detach().requires_grad_(True))
                stack.callback(hook.remove)
            stack.enter_context(edited_cross_attention(self.decoder, edit, mask))
            stack.enter_context(perf.precision(self.device))
            out = self.decoder.model.decoder(input_ids=inputs.reshape(-1, steps), encoder_hidden_states=states,
                                             encoder_attention_mask=mask, use_cache=False)
            latents = out.last_hidden_state[:rb].float()  # [rB, T, D]
            scores = self._log_probs(generation, latents, repeats) if log_probs else None
        return StepOutputs(latents, scores)

    def _log_probs(self, generation: MusicgenGeneration, latents: torch.Tensor, repeats: int) -> torch.Tensor:
        """``[rB, K, T]`` log-probability of each generated code (0 where the pattern has no frame)."""
        heads = self.decoder.lm_heads
        logits = torch.stack([head(latents.to(head.weight.dtype)) for head in heads], dim=1)  # [rB, K, T, card]
        targets = generation.sequence[..., 1:].repeat(repeats, 1, 1)  # step t predicts position t + 1
        real = targets != self.pad_token
        logp = torch.log_softmax(logits.float(), dim=-1)
        picked = logp.gather(-1, targets.clamp_max(logits.shape[-1] - 1).unsqueeze(-1)).squeeze(-1)
        return picked * real

    # ------------------------------------------------------------------ audio
    @torch.no_grad()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes ``[B, K, F]`` -> waveform ``[B, C, samples]`` through EnCodec (stereo: the left and right
        codebooks decoded apart, as transformers' ``generate``)."""
        codes = codes.to(self.device).long()[None]  # [1, B, K, F]: one EnCodec chunk
        scales = [None] * codes.shape[1]
        if self.model.config.decoder.audio_channels == 1:
            return self.codec.decode(codes, audio_scales=scales).audio_values.float()
        left = self.codec.decode(codes[:, :, ::2], audio_scales=scales).audio_values
        right = self.codec.decode(codes[:, :, 1::2], audio_scales=scales).audio_values
        return torch.cat([left, right], dim=1).float()

    # ------------------------------------------------------------------ analyses
    def randomization_cascade(self) -> list[tuple[str, list[nn.Module]]]:
        decoder = self.decoder.model.decoder
        layers = list(decoder.layers)
        steps = [(f"layer {i}", [layers[i]]) for i in reversed(range(len(layers)))]
        rest = [decoder.embed_tokens, self.decoder.lm_heads, decoder.layer_norm, self.model.text_encoder,
                getattr(self.model, "enc_to_dec_proj", None)]
        steps.append(("embeddings+heads+text", [m for m in rest if m is not None]))
        return steps


def _check_edit(edit: CrossAttentionEdit | None, rows: int, steps: int, keys: int) -> None:
    """An edit's masks are ``[rows, T, N]`` exactly: a mask made for other prompts or another duration is refused
    rather than cropped."""
    mask = None if edit is None else (edit.post_softmax if edit.post_softmax is not None else edit.pre_softmax)
    if mask is not None and tuple(mask.shape) != (rows, steps, keys):
        raise ValueError(f"the mask is {list(mask.shape)}; this pass needs [{rows}, {steps}, {keys}] (rows: prompts "
                         "x repeats, T: steps of the generation, N: text tokens of its prompts, padding included)")


def _top_p(value) -> float:
    """transformers' top_p (None or 1.0: off) as the families' (0: off)."""
    return float(value) if value is not None and 0.0 < float(value) < 1.0 else 0.0


def _warpers(params: dict):
    """The logits processors transformers' ``generate`` applies, in its order: classifier-free guidance, then
    (sampling) temperature, top-k, top-p."""
    from transformers.generation.logits_process import (ClassifierFreeGuidanceLogitsProcessor,
                                                        TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper)
    sampling = params["use_sampling"] and params["temp"] > 0
    after = []
    if sampling and params["temp"] != 1.0:
        after.append(TemperatureLogitsWarper(float(params["temp"])))
    if sampling and params["top_k"]:
        after.append(TopKLogitsWarper(top_k=int(params["top_k"])))
    if sampling and 0.0 < params["top_p"] < 1.0:
        after.append(TopPLogitsWarper(top_p=float(params["top_p"])))

    def warpers(cfg: bool):
        return ([ClassifierFreeGuidanceLogitsProcessor(float(params["guidance_scale"]))] if cfg else []) + after

    return warpers


def _sample(scores: torch.Tensor, params: dict, generators: list[torch.Generator]) -> torch.Tensor:
    """``[B, K, card]`` processed logits -> codes ``[B, K]``: prompt b's K codes from its own stream."""
    if not (params["use_sampling"] and params["temp"] > 0):
        return scores.argmax(dim=-1)
    probs = torch.softmax(scores, dim=-1)
    return torch.stack([torch.multinomial(probs[i], num_samples=1, generator=g).squeeze(-1)
                        for i, g in enumerate(generators)])


# ---------------------------------------------------------------------------------------------------- loading
def _offline() -> bool:
    from huggingface_hub import constants
    return bool(constants.HF_HUB_OFFLINE) or os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return (text.splitlines()[0] if text else type(error).__name__)[:200]


def model_folder(source: str) -> Path:
    """The local folder of `source` (a folder, or a Hub id from the Hugging Face cache, downloaded when online:
    only the json, safetensors and tokenizer files, not audiocraft's checkpoint beside them)."""
    if Path(source).is_dir():
        return Path(source)
    from huggingface_hub import snapshot_download
    offline = _offline()
    try:
        return Path(snapshot_download(source, allow_patterns=_ALLOW, local_files_only=offline))
    except Exception as error:  # noqa: BLE001  huggingface_hub raises many kinds: one line for all
        if offline:
            raise ModelLoadError(
                f"the weights of '{source}' are not in the Hugging Face cache and downloads are off "
                f"(HF_HUB_OFFLINE=1): download them once online (`hf download {source}`) or unset HF_HUB_OFFLINE") from None
        raise ModelLoadError(f"could not download '{source}' ({type(error).__name__}: {_first_line(error)}); check "
                             "the name and your network") from None


def weights_hash(folder: Path) -> str:
    """sha256 (hex) over the sha256 of every safetensors file of the folder (sorted by name)."""
    digests = []
    for path in sorted(folder.glob("*.safetensors")):
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        digests.append(f"{path.name}:{digest.hexdigest()}\n")
    return hashlib.sha256("".join(digests).encode()).hexdigest()


def load_transformers_musicgen(name: str, device: str | torch.device = "cpu",
                               duration: float | None = None) -> TransformersMusicgen:
    """`name`: ``transformers:<hub id or folder>`` or a ``save_pretrained`` folder of a
    ``MusicgenForConditionalGeneration``; weights from safetensors only; every failure one `ModelLoadError` line."""
    source = name[len(PREFIX):].strip() if name.startswith(PREFIX) else name
    folder = model_folder(source)
    if not is_musicgen_folder(str(folder)):
        raise ModelLoadError(f"could not load '{name}': {folder} has no config.json of model_type 'musicgen' "
                             "(a MusicgenForConditionalGeneration saved with save_pretrained)")
    if not list(folder.glob("*.safetensors")):
        raise ModelLoadError(f"could not load '{name}': {folder} has no safetensors weights (only those are read, "
                             "never pickles); re-save the model with save_pretrained(safe_serialization=True)")
    from transformers import AutoTokenizer, MusicgenForConditionalGeneration
    from transformers.utils import logging as hf_logging
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # pad/start token 'outside the vocabulary': MusicGen's design, not a problem
    try:
        model = MusicgenForConditionalGeneration.from_pretrained(folder, use_safetensors=True, dtype=torch.float32,
                                                                 local_files_only=True)
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    except Exception as error:  # noqa: BLE001  one line for every kind
        raise ModelLoadError(f"could not load '{name}' from {folder} with transformers ({type(error).__name__}: "
                             f"{_first_line(error)})") from None
    finally:
        hf_logging.set_verbosity(verbosity)
    tag = TransformersMusicgen(model.eval(), tokenizer, name=name, duration=duration).to(device)
    tag.weights_hash = weights_hash(folder)
    return tag


__all__ = ["ATTENTION_NAME", "PREFIX", "CrossState", "MusicgenGeneration", "TransformersMusicgen",
           "cross_attention_modules", "edited_cross_attention", "edited_cross_attention_forward",
           "is_musicgen_folder", "is_transformers_name", "load_transformers_musicgen", "model_folder",
           "weights_hash"]
