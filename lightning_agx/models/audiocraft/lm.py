"""The audiocraft LM family (AudioGen, MusicGen, the embedded ToySounds model) behind `TAGModel`.

`AudiocraftModel` is what every audiocraft family shares (text conditioner and token strings, the codec,
frame rate, decoding, the layers of the cascading randomisation); `AudiocraftLM` and
`lightning_agx.models.audiocraft.magnet.AudiocraftMagnet` add their generation and reference forward.

`AudiocraftLM` wraps an audiocraft ``BaseGenModel`` (its ``lm`` and ``compression_model``): the text token
embeddings ``X`` and token strings of a prompt, generation that keeps the conditional latents ``h_t`` of every
step, a teacher-forced forward over a whole generated sequence with an optional cross-attention edit (the
reference forward), masked generation, and decoding to a waveform.

A step is one generation call of the LM: with the delay pattern, step t reads sequence position t and
predicts position t + 1 (codebook k's frame t - k), so T = S - 1 and step t covers about frame t.
Shapes: B prompts, K codebooks, F audio frames, S = pattern steps, T = S - 1 LM steps, N text tokens,
D = LM dimension.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
from torch import nn

from ._install import LM_SAMPLING_KEYS, ensure_audiocraft
from ...performance import Performance
from ...seeding import resolve_seeds, streams
from ..attention import CrossAttentionEdit, edit_cross_attention
from ..base import Generation, StepOutputs, TAGModel, TextConditioning
from .sampling import per_prompt_sampling
from .self_attention import record_self_attention, self_attention_supported

ensure_audiocraft()

from audiocraft.modules.conditioners import (  # noqa: E402
    ClassifierFreeGuidanceDropout, ConditioningAttributes, LUTConditioner, T5Conditioner, WhiteSpaceTokenizer)

TEXT_CONDITION = "description"


@dataclass
class LMText(TextConditioning):
    """`TextConditioning` with audiocraft's condition tensors in the classifier-free-guidance layout."""

    cfg_conditions: dict | None = None  # audiocraft ConditionTensors for [cond; uncond], 2B rows

    def conditions(self, cfg: bool = False, repeats: int = 1) -> dict:
        """ConditionTensors for ``repeats`` copies of the conditional rows, then (cfg) the unconditional ones."""
        b = len(self.prompts)
        out = {}
        for key, (emb, mask) in self.cfg_conditions.items():
            cond = (emb[:b].repeat(repeats, 1, 1), mask[:b].repeat(repeats, 1))
            if cfg:
                cond = (torch.cat([cond[0], emb[b:].repeat(repeats, 1, 1)]),
                        torch.cat([cond[1], mask[b:].repeat(repeats, 1)]))
            out[key] = cond
        return out

    def select(self, index: list[int]) -> "LMText":
        b = len(self.prompts)
        rows = torch.tensor(index + [b + i for i in index], device=self.embeddings.device)
        return LMText(prompts=[self.prompts[i] for i in index], tokens=[self.tokens[i] for i in index],
                      embeddings=self.embeddings[index], valid=self.valid[index],
                      cfg_conditions={k: (e[rows], m[rows]) for k, (e, m) in self.cfg_conditions.items()})


@dataclass
class LMGeneration(Generation):
    """`Generation` with the LM's delay-pattern sequence."""

    sequence: torch.Tensor | None = None  # [B, K, S] (special token where a codebook has no frame)

    def select(self, index: list[int]) -> "LMGeneration":
        base = super().select(index)
        return LMGeneration(base.text, base.codes, base.num_steps, base.latents, base.seeds, self.sequence[index])


class AudiocraftModel(TAGModel):
    """What every frozen audiocraft text-to-audio model shares, whatever its LM: an audiocraft ``BaseGenModel``
    (its ``lm`` and ``compression_model``), the text conditioner, the codec. Families subclass it."""

    def __init__(self, genmodel, name: str | None = None, duration: float | None = None):
        super().__init__(name or getattr(genmodel, "name", "audiocraft"),
                         duration if duration is not None else genmodel.duration)
        self.lm = genmodel.lm
        self.compression_model = genmodel.compression_model
        object.__setattr__(self, "genmodel", genmodel)  # not a submodule: it only holds lm and codec
        self.generation_params = dict(genmodel.generation_params)
        self.performance = Performance()  # speed/memory options of the teacher-forced passes (lightning_agx.performance)
        self.random_weights = False  # load_model sets it for the arch: models
        self.requires_grad_(False)
        self.eval()

    # ------------------------------------------------------------------ properties
    def hashed_modules(self) -> tuple[nn.Module, ...]:
        return (self.lm, self.compression_model)

    @property
    def frame_rate(self) -> float:
        return float(self.compression_model.frame_rate)

    @property
    def sample_rate(self) -> int:
        return int(self.compression_model.sample_rate)

    @property
    def dim(self) -> int:
        return int(self.lm.dim)

    @property
    def device(self) -> torch.device:
        return next(self.lm.parameters()).device

    @property
    def max_duration(self) -> float | None:
        return getattr(self.genmodel, "max_duration", None)

    @property
    def text_conditioner(self) -> nn.Module:
        conditioners = self.lm.condition_provider.conditioners
        if TEXT_CONDITION not in conditioners:
            raise ValueError(f"model has no '{TEXT_CONDITION}' text conditioner; has {sorted(conditioners)}")
        return conditioners[TEXT_CONDITION]

    @property
    def max_text_tokens(self) -> int | None:
        conditioner = self.text_conditioner
        if isinstance(conditioner, T5Conditioner):
            return int(conditioner.t5_tokenizer.model_max_length)
        return getattr(getattr(conditioner, "tokenizer", None), "max_length", None)

    @property
    def vocabulary(self) -> set[str] | None:
        stoi = getattr(getattr(self.text_conditioner, "tokenizer", None), "stoi", None)
        return None if stoi is None else set(stoi)

    def output_shape(self, duration: float | None = None) -> tuple[int, ...]:
        return (self.lm.num_codebooks, self.num_frames(duration))

    # ------------------------------------------------------------------ text
    def token_strings(self, prompt: str) -> list[str]:
        """The text tokens of `prompt` as the conditioner splits it (T5: sub-word pieces and '</s>')."""
        conditioner = self.text_conditioner
        if isinstance(conditioner, T5Conditioner):
            tokenizer = conditioner.t5_tokenizer
            return tokenizer.convert_ids_to_tokens(tokenizer([prompt])["input_ids"][0])
        if isinstance(conditioner, LUTConditioner):
            tokenizer = conditioner.tokenizer
            if hasattr(tokenizer, "words"):
                return list(tokenizer.words(prompt))
            if isinstance(tokenizer, WhiteSpaceTokenizer):
                text = tokenizer([prompt], return_text=True)[2][0]
                return text.split(" ") if text else []
            return [prompt]
        raise NotImplementedError(f"token strings for {type(conditioner).__name__} are not implemented")

    def encode_text(self, prompts: list[str]) -> LMText:
        """Tokenise and embed `prompts` (padded to the longest) in the CFG layout used for generation."""
        tokens = self.check_text(prompts)
        attributes = [ConditioningAttributes(text={TEXT_CONDITION: p}) for p in prompts]
        null_attributes = ClassifierFreeGuidanceDropout(p=1.0)(attributes)
        provider = self.lm.condition_provider
        with torch.no_grad():
            cfg_conditions = provider(provider.tokenize(attributes + null_attributes))
        embeddings, mask = cfg_conditions[TEXT_CONDITION]
        b = len(prompts)
        valid = mask[:b].bool()
        for i, toks in enumerate(tokens):
            if int(valid[i].sum()) != len(toks):
                raise RuntimeError(f"token strings ({len(toks)}) and conditioner tokens ({int(valid[i].sum())}) "
                                   f"disagree for prompt {prompts[i]!r}")
        return LMText(prompts, tokens, embeddings[:b], valid, cfg_conditions=cfg_conditions)

    # ------------------------------------------------------------------ audio
    @torch.no_grad()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Audio tokens ``[B, K, F]`` -> waveform ``[B, C, samples]`` at `sample_rate`."""
        return self.compression_model.decode(codes, None).float()

    # ------------------------------------------------------------------ analyses
    def randomization_cascade(self) -> list[tuple[str, list[nn.Module]]]:
        lm = self.lm
        layers = list(lm.transformer.layers)
        steps = [(f"layer {i}", [layers[i]]) for i in reversed(range(len(layers)))]
        rest = [m for m in (lm.emb, lm.linears, lm.out_norm, lm.condition_provider, getattr(lm, "fuser", None))
                if m is not None]
        steps.append(("embeddings+heads+text", rest))
        return steps

    # ------------------------------------------------------------------ helpers
    def _autocast(self):
        autocast = getattr(self.genmodel, "autocast", None)
        return autocast if autocast is not None else contextlib.nullcontext()


class AudiocraftLM(AudiocraftModel):
    """A frozen audiocraft autoregressive LM text-to-audio model (AudioGen, MusicGen, ToySounds)."""

    SAMPLING_KEYS = LM_SAMPLING_KEYS  # audiocraft's LM sampling settings

    def __init__(self, genmodel, name: str | None = None, duration: float | None = None):
        super().__init__(genmodel, name, duration)
        self.generation_params["two_step_cfg"] = False  # edits assume the batched [cond; uncond] layout

    @property
    def sampling_keys(self) -> tuple[str, ...]:
        """audiocraft's ``set_generation_params`` settings (two_step_cfg stays off: edits need [cond; uncond])."""
        return self.SAMPLING_KEYS

    @property
    def records_self_attention(self) -> bool:
        return self_attention_supported(self.lm)

    def num_steps(self, duration: float | None = None) -> int:
        codes = torch.zeros(1, *self.output_shape(duration), dtype=torch.long)
        return self.pattern_sequence(codes).shape[-1] - 1

    # ------------------------------------------------------------------ generation
    @torch.no_grad()
    def generate(self, prompts: list[str] | LMText, duration: float | None = None,
                 seed: int | list[int] | None = None, edit: CrossAttentionEdit | None = None,
                 **overrides) -> LMGeneration:
        """Sample audio tokens for `prompts` (see `TAGModel.generate`), keeping the conditional latents h_t of
        every step. Padding keys get no attention. `overrides`: top_k, top_p, temp, cfg_coef..."""
        text = prompts if isinstance(prompts, LMText) else self.encode_text(list(prompts))
        params = {**self.generation_params, **self.check_sampling(overrides)}
        frames = self.num_frames(duration)
        seeds = resolve_seeds(seed, len(text))
        attributes = [ConditioningAttributes(text={TEXT_CONDITION: p}) for p in text.prompts]
        b = len(text)
        captured: list[torch.Tensor] = []
        hook = self._final_module().register_forward_hook(lambda m, i, out: captured.append(out[:b].detach()))
        try:
            with edit_cross_attention(self.lm, edit), self._autocast(), \
                    per_prompt_sampling(self.lm, streams(seeds, "generation", self.device)):
                codes = self.lm.generate(None, attributes, max_gen_len=frames, **params)
        finally:
            hook.remove()
        return self._generation(text, codes, torch.cat(captured, dim=1).float(), seeds)

    def generation_from_codes(self, prompts: list[str] | LMText, codes: torch.Tensor,
                              seeds: list[int] | None = None) -> LMGeneration:
        text = prompts if isinstance(prompts, LMText) else self.encode_text(list(prompts))
        return self._generation(text, codes.to(self.device), None, seeds)

    def _generation(self, text: LMText, codes: torch.Tensor, latents, seeds) -> LMGeneration:
        sequence = self.pattern_sequence(codes)
        return LMGeneration(text, codes, sequence.shape[-1] - 1, latents, seeds, sequence)

    def pattern_sequence(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes ``[B, K, F]`` -> the LM's pattern sequence ``[B, K, S]`` (as built during generation)."""
        pattern = self.lm.pattern_provider.get_pattern(codes.shape[-1])
        sequence, _, _ = pattern.build_pattern_sequence(codes, self.lm.special_token_id)
        return sequence

    # ------------------------------------------------------------------ teacher forcing
    def forward_steps(self, generation: LMGeneration, edit: CrossAttentionEdit | None = None, repeats: int = 1,
                      log_probs: bool = False, grad: bool = False, self_attention: bool = False,
                      cfg: bool = False) -> StepOutputs:
        """Teacher-forced forward over all T steps of `generation` in one pass (causal self-attention); see
        `TAGModel.forward_steps`. With `cfg` the unconditional copies follow in the batch, as in generation
        (the outputs are the conditional rows). The log-probabilities are those of the generated token of
        each codebook at each step (0 where the delay pattern has no frame).

        `self.performance` (`lightning_agx.performance`; all off on CPU by default) may run the transformer
        under autocast (the latents are returned in float32), with TF32, compiled, or with per-layer activation
        checkpointing in a pass that builds a graph and records no attention."""
        if self_attention and not self.records_self_attention:
            raise NotImplementedError("this LM's self-attention (rotary embeddings, kv_repeat or a limited context) "
                                      "cannot be recorded")
        inputs = generation.sequence[..., :-1].repeat(repeats, 1, 1)  # [rB, K, T]
        rb = inputs.shape[0]
        conditions = generation.text.conditions(cfg=cfg, repeats=repeats)
        if cfg:
            inputs = torch.cat([inputs, generation.sequence[..., :-1].repeat(repeats, 1, 1)])
        lm = self.lm
        perf = self.performance.resolve(self.device)
        with contextlib.ExitStack() as stack:
            if grad:
                stack.enter_context(torch.enable_grad())
            checkpoint = (torch.is_grad_enabled() and not self_attention and not (edit is not None and edit.record)
                          and perf.checkpoints(inputs.shape[0] * inputs.shape[-1]))
            # a recomputed layer sees step 0 again: its cross-attention must not count steps across calls
            stack.enter_context(edit_cross_attention(lm, edit, streaming=not checkpoint))
            selfs = stack.enter_context(record_self_attention(lm)) if self_attention else None
            stack.enter_context(perf.precision(self.device))
            if checkpoint:
                stack.enter_context(_layer_checkpointing(lm.transformer))
            x = sum(lm.emb[k](inputs[:, k]) for k in range(lm.num_codebooks))
            x, cross = lm.fuser(x, conditions)
            if grad:  # a leaf that requires grad: the graph reaches every intermediate tensor, weights stay frozen
                x = x.detach().requires_grad_(True)
            hidden = self._transformer(perf.compile)(x, cross_attention_src=cross)
            if lm.out_norm is not None:
                hidden = lm.out_norm(hidden)
            latents = hidden[:rb] if perf.autocast is None else hidden[:rb].float()
            scores = self._log_probs(generation, latents, repeats) if log_probs else None
        return StepOutputs(latents, scores, None if selfs is None else list(selfs))  # selfs: the whole model batch

    def _log_probs(self, generation: LMGeneration, hidden: torch.Tensor, repeats: int) -> torch.Tensor:
        """``[rB, K, T]`` log-probability of each generated token (0 where the pattern has no frame)."""
        lm = self.lm
        logits = torch.stack([lm.linears[k](hidden) for k in range(lm.num_codebooks)], dim=1)  # [rB, K, T, card]
        targets = generation.sequence[..., 1:].repeat(repeats, 1, 1)  # step t predicts position t + 1
        real = targets != lm.special_token_id
        logp = torch.log_softmax(logits.float(), dim=-1)
        picked = logp.gather(-1, targets.clamp_max(logits.shape[-1] - 1).unsqueeze(-1)).squeeze(-1)
        return picked * real

    # ------------------------------------------------------------------ helpers
    def _final_module(self) -> nn.Module:
        return self.lm.out_norm if self.lm.out_norm is not None else self.lm.transformer

    def _transformer(self, mode: str):
        """The LM's transformer, or its ``torch.compile``d twin in `mode` (made once per mode, kept on the side)."""
        if mode == "off":
            return self.lm.transformer
        compiled = vars(self).setdefault("_compiled", {})
        if mode not in compiled:
            compiled[mode] = torch.compile(self.lm.transformer, mode=None if mode == "default" else mode,
                                           dynamic=True)
        return compiled[mode]


@contextlib.contextmanager
def _layer_checkpointing(transformer: nn.Module):
    """Per-layer activation checkpointing (non-reentrant ``torch.utils.checkpoint``, as audiocraft's 'torch'
    checkpointing) that recomputes a layer with the attention edits it ran with: the backward, and with it
    the recomputation, comes after `edit_cross_attention` has restored audiocraft's forward, so each layer's
    edited forwards are captured when it runs and put back while it is recomputed."""
    from torch.utils.checkpoint import checkpoint

    def apply_layer(layer, *args, **kwargs):
        edited = {m: vars(m)["forward"] for m in layer.modules() if "forward" in vars(m)}

        def run(*a, **k):
            missing = [m for m in edited if "forward" not in vars(m)]  # the recomputation, in the backward
            for module in missing:
                module.forward = edited[module]
            try:
                return layer(*a, **k)
            finally:
                for module in missing:
                    vars(module).pop("forward", None)

        return checkpoint(run, *args, use_reentrant=False, **kwargs)

    if "_apply_layer" in vars(transformer):
        raise RuntimeError("layer checkpointing is already active on this transformer")
    transformer._apply_layer = apply_layer
    try:
        yield
    finally:
        vars(transformer).pop("_apply_layer", None)
