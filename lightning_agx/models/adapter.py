"""One small interface over an audiocraft text-to-audio model (AudioGen, MusicGen, the embedded ToySounds).

`AudiocraftTAG` wraps an audiocraft ``BaseGenModel`` (its ``lm`` and ``compression_model``) and offers what
an explainer needs: the text token embeddings ``X`` and token strings of a prompt, generation that keeps
the conditional latents ``h_t`` of every step, a teacher-forced forward over a whole generated sequence
with an optional cross-attention edit, masked generation, and decoding to a waveform.

Shapes: B prompts, K codebooks, F audio frames, S = pattern steps (delay pattern), T = S - 1 LM steps
(the generation calls; step t reads sequence position t and predicts position t + 1), N text tokens,
D = LM dimension.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
from torch import nn

from .._audiocraft import ensure_audiocraft
from ..errors import UserError
from ..inputs import check_prompts
from ..seeding import resolve_seeds, streams
from .attention import CrossAttentionEdit, edit_cross_attention
from .sampling import per_prompt_sampling

ensure_audiocraft()

from audiocraft.modules.conditioners import (  # noqa: E402
    ClassifierFreeGuidanceDropout, ConditioningAttributes, LUTConditioner, T5Conditioner, WhiteSpaceTokenizer)

TEXT_CONDITION = "description"


@dataclass
class TextConditioning:
    """Text side of a batch of prompts, as the LM sees it."""

    prompts: list[str]
    tokens: list[list[str]]  # per prompt, one string per valid text token
    embeddings: torch.Tensor  # [B, N, D] conditioner output X (zeros at padding)
    valid: torch.Tensor  # [B, N] bool, False at padding
    cfg_conditions: dict  # audiocraft ConditionTensors for [cond; uncond], 2B rows

    def __len__(self) -> int:
        return len(self.prompts)

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

    def select(self, index: list[int]) -> "TextConditioning":
        b = len(self.prompts)
        rows = torch.tensor(index + [b + i for i in index], device=self.embeddings.device)
        return TextConditioning(
            prompts=[self.prompts[i] for i in index], tokens=[self.tokens[i] for i in index],
            embeddings=self.embeddings[index], valid=self.valid[index],
            cfg_conditions={k: (e[rows], m[rows]) for k, (e, m) in self.cfg_conditions.items()})


@dataclass
class Generation:
    """Audio tokens generated for a batch of prompts, with what is needed to explain them."""

    text: TextConditioning
    codes: torch.Tensor  # [B, K, F] audio tokens
    sequence: torch.Tensor  # [B, K, S] delay-pattern sequence (special token where a codebook has no frame)
    latents: torch.Tensor | None  # [B, T, D] conditional h_t captured step by step during generation
    seeds: list[int] | None = None  # per prompt: the seed of its sampling stream (lightning_agx.seeding)

    @property
    def num_steps(self) -> int:
        return self.sequence.shape[-1] - 1

    def select(self, index: list[int]) -> "Generation":
        return Generation(self.text.select(index), self.codes[index], self.sequence[index],
                          None if self.latents is None else self.latents[index],
                          None if self.seeds is None else [self.seeds[i] for i in index])


@dataclass
class StepOutputs:
    latents: torch.Tensor  # [rB, T, D] conditional h_t (after the output norm)
    logits: torch.Tensor | None  # [rB, K, T, card]; with cfg, guided logits uncond + (cond - uncond) * coef


class AudiocraftTAG(nn.Module):
    """A frozen audiocraft text-to-audio model behind the interface the explainers use."""

    def __init__(self, genmodel, name: str | None = None, duration: float | None = None):
        super().__init__()
        self.name = name or getattr(genmodel, "name", "audiocraft")
        self.lm = genmodel.lm
        self.compression_model = genmodel.compression_model
        object.__setattr__(self, "genmodel", genmodel)  # not a submodule: it only holds lm and codec
        self.duration = float(duration if duration is not None else genmodel.duration)
        self.generation_params = dict(genmodel.generation_params)
        self.generation_params["two_step_cfg"] = False  # edits assume the batched [cond; uncond] layout
        self.requires_grad_(False)
        self.eval()

    # ------------------------------------------------------------------ properties
    @property
    def weights_hash(self) -> str:
        """sha256 of the weights (set by the loader from its files, else computed once from the state dict)."""
        if getattr(self, "_weights_hash", None) is None:
            self._weights_hash = state_dict_hash(self.lm, self.compression_model)
        return self._weights_hash

    @weights_hash.setter
    def weights_hash(self, value: str) -> None:
        self._weights_hash = value

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

    def train(self, mode: bool = True) -> "AudiocraftTAG":
        """The TAG model is frozen: it always stays in eval mode (no dropout), whatever its parent does."""
        return super().train(False)

    def num_frames(self, duration: float | None = None) -> int:
        """Audio frames F of `duration` seconds (None: the model's duration)."""
        return int((duration or self.duration) * self.frame_rate)

    def num_steps(self, duration: float | None = None) -> int:
        codes = torch.zeros(1, self.lm.num_codebooks, self.num_frames(duration), dtype=torch.long)
        return self.pattern_sequence(codes).shape[-1] - 1

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

    def check_text(self, prompts: list[str]) -> list[list[str]]:
        """Token strings of every prompt; a prompt with no token the text encoder keeps, or over its limit,
        raises a `UserError` naming it."""
        prompts = check_prompts(prompts, clean=False)
        tokens = [self.token_strings(p) for p in prompts]
        check_tokens(prompts, tokens, self.max_text_tokens)
        return tokens

    def encode_text(self, prompts: list[str]) -> TextConditioning:
        """Tokenise and embed `prompts` (padded to the longest) in the CFG layout used for generation."""
        prompts = check_prompts(prompts, clean=False)
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
        return TextConditioning(prompts, tokens, embeddings[:b], valid, cfg_conditions)

    # ------------------------------------------------------------------ generation
    @torch.no_grad()
    def generate(self, prompts: list[str] | TextConditioning, duration: float | None = None,
                 seed: int | list[int] | None = None, edit: CrossAttentionEdit | None = None,
                 **overrides) -> Generation:
        """Sample audio tokens for `prompts`, keeping the conditional latents h_t of every step.

        Each prompt samples from its own stream (`lightning_agx.seeding`): `seed` is one seed per prompt, or an
        int (prompt i gets ``prompt_seed(seed, i)``), or None (fresh seeds). Padding keys get no attention,
        so a prompt's tokens do not depend on the rest of the batch. `edit` (e.g. a factual/counterfactual
        mask ``[B, T, N]``) is applied to the cross-attention of the conditional half at every step.
        `overrides` update the sampling parameters (top_k, temp, cfg_coef...).
        """
        text = prompts if isinstance(prompts, TextConditioning) else self.encode_text(list(prompts))
        params = {**self.generation_params, **overrides}
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
        sequence = self.pattern_sequence(codes)
        return Generation(text, codes, sequence, torch.cat(captured, dim=1).float(), seeds)

    def pattern_sequence(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes ``[B, K, F]`` -> the LM's pattern sequence ``[B, K, S]`` (as built during generation)."""
        pattern = self.lm.pattern_provider.get_pattern(codes.shape[-1])
        sequence, _, _ = pattern.build_pattern_sequence(codes, self.lm.special_token_id)
        return sequence

    # ------------------------------------------------------------------ teacher forcing
    def forward_steps(self, generation: Generation, edit: CrossAttentionEdit | None = None, repeats: int = 1,
                      cfg: bool = False, logits: bool = False) -> StepOutputs:
        """Teacher-forced forward over all T steps of `generation` in one pass (causal self-attention).

        The batch is `repeats` copies of the B prompts (so factual and counterfactual masks run as one
        forward), followed, with `cfg`, by the unconditional copies as in generation. `edit` must have
        ``repeats * B`` rows. Returns the conditional latents ``[repeats*B, T, D]`` and, with `logits`, the
        per-codebook logits (classifier-free-guided when `cfg`).
        """
        inputs = generation.sequence[..., :-1].repeat(repeats, 1, 1)  # [rB, K, T]
        rb = inputs.shape[0]
        conditions = generation.text.conditions(cfg=cfg, repeats=repeats)
        if cfg:
            uncond = generation.sequence[..., :-1].repeat(repeats, 1, 1)
            inputs = torch.cat([inputs, uncond])
        lm = self.lm
        with edit_cross_attention(lm, edit):
            x = sum(lm.emb[k](inputs[:, k]) for k in range(lm.num_codebooks))
            x, cross = lm.fuser(x, conditions)
            hidden = lm.transformer(x, cross_attention_src=cross)
            if lm.out_norm is not None:
                hidden = lm.out_norm(hidden)
        out_logits = None
        if logits:
            all_logits = torch.stack([lm.linears[k](hidden) for k in range(lm.num_codebooks)], dim=1)
            out_logits = all_logits[:rb]
            if cfg:
                coef = self.generation_params.get("cfg_coef", lm.cfg_coef)
                out_logits = all_logits[rb:] + (all_logits[:rb] - all_logits[rb:]) * coef
        return StepOutputs(hidden[:rb], out_logits)

    def latents(self, generation: Generation, edit: CrossAttentionEdit | None = None, repeats: int = 1,
                cfg: bool = False) -> torch.Tensor:
        """Teacher-forced conditional latents ``[repeats*B, T, D]``; see `forward_steps`."""
        return self.forward_steps(generation, edit, repeats, cfg).latents

    # ------------------------------------------------------------------ audio
    @torch.no_grad()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Audio tokens ``[B, K, F]`` -> waveform ``[B, C, samples]`` at `sample_rate`."""
        return self.compression_model.decode(codes, None).float()

    # ------------------------------------------------------------------ helpers
    def _final_module(self) -> nn.Module:
        return self.lm.out_norm if self.lm.out_norm is not None else self.lm.transformer

    def _autocast(self):
        autocast = getattr(self.genmodel, "autocast", None)
        return autocast if autocast is not None else contextlib.nullcontext()


SPECIAL_TOKENS = ("</s>", "<pad>", "<s>")


def check_tokens(prompts: list[str], tokens: list[list[str]], limit: int | None) -> None:
    """Every prompt keeps at least one token (special ones aside) and at most `limit`."""
    for i, (prompt, toks) in enumerate(zip(prompts, tokens)):
        if not [t for t in toks if t not in SPECIAL_TOKENS]:
            raise UserError(f"prompt {i} ({prompt[:60]!r}) has no token the model's text encoder keeps "
                            "(symbols and punctuation are dropped); describe the sound in words")
        if limit is not None and len(toks) > limit:
            raise UserError(f"prompt {i} has {len(toks)} text tokens, more than the model's limit of {limit}; "
                            f"shorten it: {prompt[:60]!r}...")


def state_dict_hash(*modules: nn.Module) -> str:
    """sha256 over the names, dtypes, shapes and bytes of the modules' state dicts."""
    import hashlib
    digest = hashlib.sha256()
    for module in modules:
        for name, tensor in sorted(module.state_dict().items()):
            digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
            digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()
