"""The model-family interface: everything outside `lightning_agx.models` sees a text-to-audio model as a `TAGModel`.

A family (audiocraft's autoregressive LM, audiocraft's MAGNeT, ...) is one adapter file implementing this
class and one line in `lightning_agx.models.registry`. The explainers, the baselines, the metrics, the
evaluation and the analyses use only what is declared here.

What a family provides:
- **text**: the prompt's token strings, their embeddings X ``[B, N, D]`` and validity (padding) in one
  `TextConditioning` (with, for a model that reads a second text-derived stream, that stream: it is
  conditioning the explanation does not mask); the model's token limit;
- **generation** (optionally with a `CrossAttentionEdit` applied to the text cross-attention) that returns a
  `Generation`: the audio representation it decodes (``codes``), its number of explained steps T, the
  per-prompt seeds; and the same `Generation` rebuilt from saved codes (`generation_from_codes`);
- **the reference forward** (`forward_steps`): one pass over a finished generation returning the explained
  latents h_t of every step ``[B, T, D]`` (optionally edited), and on request what the gradient and
  perturbation baselines need: the per-step log-probabilities of the generated output ``[B, K, T]``, a
  differentiable graph, the cross-attention weights (recorded through the edit) and, where the family can,
  the self-attention weights;
- **decoding** to a waveform and the **step <-> seconds** mapping: step t covers seconds
  ``[t / frame_rate, (t + 1) / frame_rate)``.

A "step" is one row of the ``[T, N]`` mask and of the explanation: for audiocraft's LM one generation call
(delay pattern), for MAGNeT one audio frame (all its decoding iterations), for a diffusion model
(`lightning_agx.models.diffusers.tag`) one latent time frame (the queries of the denoiser's text
cross-attention), at every denoising step.

What varies by family, and is declared here rather than assumed: ``Generation.codes`` is whatever `decode`
reads (audiocraft: int audio tokens ``[B, K, F]``; diffusion: the float clean latent ``[B, C, L]``); the latents
h_t are ``[B, T, latent_dim]`` (`latent_dim`, the LM's D; a diffusion model's predicted clean latent at K noise
levels); the K "streams" of `StepOutputs.log_probs` are the codebooks of an LM and the trajectory points of a
diffusion model (a Gaussian log-likelihood proxy).
"""
from __future__ import annotations

import abc
import hashlib
from dataclasses import dataclass, field
from typing import Protocol

import torch
from torch import nn

from ..errors import UserError
from ..inputs import check_prompts
from .attention import CrossAttentionEdit


@dataclass
class TextConditioning:
    """Text side of a batch of prompts, as the model sees it. Families may subclass it to carry their own
    condition tensors; `select` keeps rows."""

    prompts: list[str]
    tokens: list[list[str]]  # per prompt, one string per valid text token
    embeddings: torch.Tensor  # [B, N, D] text token embeddings X the cross-attention reads (zeros at padding)
    valid: torch.Tensor  # [B, N] bool, False at padding
    # [B, M, D'] a second conditioning stream computed from the prompt that the model reads besides X and that
    # the mask does NOT reach (AudioLDM 2's GPT-2 "8 vectors"); None for a family with one text stream
    extra: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.prompts)

    def select(self, index: list[int]) -> "TextConditioning":
        return TextConditioning([self.prompts[i] for i in index], [self.tokens[i] for i in index],
                                self.embeddings[index], self.valid[index],
                                None if self.extra is None else self.extra[index])


@dataclass
class Generation:
    """Audio generated for a batch of prompts, with what is needed to explain it. Families may subclass it."""

    text: TextConditioning
    codes: torch.Tensor  # [B, ...] what `decode` turns into audio (audiocraft: audio tokens [B, K, F])
    num_steps: int  # T: explained steps (rows of the mask)
    latents: torch.Tensor | None = None  # [B, T, D] h_t captured during generation, when the family keeps them
    seeds: list[int] | None = None  # per prompt: the seed of its sampling stream (lightning_agx.seeding)

    def select(self, index: list[int]) -> "Generation":
        return Generation(self.text.select(index), self.codes[index], self.num_steps,
                          None if self.latents is None else self.latents[index],
                          None if self.seeds is None else [self.seeds[i] for i in index])


@dataclass
class StepOutputs:
    """What one reference forward returns; rB = repeats * B rows (see `TAGModel.forward_steps`)."""

    latents: torch.Tensor  # [rB, T, latent_dim] explained latents h_t (conditional rows)
    log_probs: torch.Tensor | None = None  # [rB, K, T] log p(generated output) per stream and step (0 where none);
    # streams: an LM's codebooks, a diffusion model's trajectory points (a Gaussian log-likelihood proxy)
    self_attention: list[torch.Tensor] | None = None  # per layer [rB, heads, T, T], in the order the layers run
    extra: dict = field(default_factory=dict)


class GroundTruth(Protocol):
    """What a model's world knows must matter (the embedded ToySounds model has one; real models do not)."""

    def labels(self, tokens: list[str]) -> list[bool]:
        """True for the tokens whose words make the sound (they must get the highest importance)."""

    def auc(self, importance, tokens: list[str]) -> float:
        """ROC AUC of per-token importance ``[N]`` against `labels` (NaN when undefined)."""


class TAGModel(nn.Module, abc.ABC):
    """A frozen text-to-audio model behind the interface the explainers use (see the module docstring)."""

    name: str
    duration: float  # seconds generated by default
    ground_truth: GroundTruth | None = None

    def __init__(self, name: str, duration: float):
        super().__init__()
        self.name = name
        self.duration = float(duration)
        self.ground_truth = None
        self.generation_params: dict = {}  # the sampling parameters `generate` uses unless overridden

    def train(self, mode: bool = True) -> "TAGModel":
        """The model is frozen: it always stays in eval mode (no dropout), whatever its parent does."""
        return super().train(False)

    # ------------------------------------------------------------------ what it is
    @property
    @abc.abstractmethod
    def frame_rate(self) -> float:
        """Explained steps per second of audio (step t covers ``[t / frame_rate, (t + 1) / frame_rate)``)."""

    @property
    @abc.abstractmethod
    def sample_rate(self) -> int:
        """Sample rate of the decoded audio."""

    @property
    @abc.abstractmethod
    def dim(self) -> int:
        """D: width of the text embeddings X (and, unless `latent_dim` says otherwise, of the latents h_t)."""

    @property
    def latent_dim(self) -> int:
        """Width of the explained latents h_t (`forward_steps`); the text width D unless the family says otherwise."""
        return self.dim

    @property
    @abc.abstractmethod
    def max_text_tokens(self) -> int | None:
        """The text encoder's token limit (None: no limit)."""

    @property
    def max_duration(self) -> float | None:
        """The longest duration (seconds) the model generates in one pass (None: no limit)."""
        return None

    @property
    def sampling_keys(self) -> tuple[str, ...]:
        """The sampling settings `generate` takes as overrides, and that a result depends on (the run identity
        records them; configs are checked against them). A family names its own."""
        return tuple(sorted(self.generation_params))

    def check_sampling(self, values: dict | None) -> dict:
        """`values` (sampling overrides) are settings of this model (`sampling_keys`); else a one-line
        `UserError` listing them."""
        values = dict(values or {})
        unknown = sorted(str(k) for k in values if k not in self.sampling_keys)
        if unknown:
            raise UserError(f"{self.name} has no sampling setting {', '.join(unknown)}; its settings: "
                            f"{', '.join(self.sampling_keys)} (give them as --model.generation.KEY VALUE)")
        return values

    @property
    def recommended_explainer(self) -> dict:
        """The AudioGenX settings chosen for this model (`lightning_agx.explainer.ExplainerConfig` fields; those
        not named are the authors'), from the catalogue of shipped models (`lightning_agx.models.catalogue`)."""
        from .catalogue import recommended_explainer
        return recommended_explainer(self.name)

    @property
    def vocabulary(self) -> set[str] | None:
        """The words the text encoder knows (a closed vocabulary), or None (sub-word encoders know every word)."""
        return None

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def weights_hash(self) -> str:
        """sha256 of the weights (set by the loader from its files, else computed once from the state dict)."""
        if getattr(self, "_weights_hash", None) is None:
            self._weights_hash = state_dict_hash(*self.hashed_modules())
        return self._weights_hash

    @weights_hash.setter
    def weights_hash(self, value: str) -> None:
        self._weights_hash = value

    def hashed_modules(self) -> tuple[nn.Module, ...]:
        """The modules whose weights make `weights_hash` (a family keeps its order stable across versions)."""
        return (self,)

    @property
    def records_self_attention(self) -> bool:
        """Whether `forward_steps(self_attention=True)` can return the self-attention weights."""
        return False

    @abc.abstractmethod
    def num_steps(self, duration: float | None = None) -> int:
        """T for a generation of `duration` seconds (None: the model's duration)."""

    @abc.abstractmethod
    def output_shape(self, duration: float | None = None) -> tuple[int, ...]:
        """Shape of one prompt's ``Generation.codes`` for `duration` seconds."""

    # ------------------------------------------------------------------ text
    @abc.abstractmethod
    def token_strings(self, prompt: str) -> list[str]:
        """The text tokens of `prompt` as the text encoder splits it."""

    @abc.abstractmethod
    def encode_text(self, prompts: list[str]) -> TextConditioning:
        """Tokenise and embed `prompts` (padded to the longest), checked with `check_text`."""

    def check_text(self, prompts: list[str]) -> list[list[str]]:
        """Token strings of every prompt; a prompt with no token the text encoder keeps, or over its limit,
        raises a `UserError` naming it."""
        prompts = check_prompts(prompts, clean=False)
        tokens = [self.token_strings(p) for p in prompts]
        check_tokens(prompts, tokens, self.max_text_tokens)
        return tokens

    # ------------------------------------------------------------------ generation
    @abc.abstractmethod
    def generate(self, prompts: list[str] | TextConditioning, duration: float | None = None,
                 seed: int | list[int] | None = None, edit: CrossAttentionEdit | None = None,
                 **overrides) -> Generation:
        """Sample audio for `prompts`. Each prompt samples from its own stream (`lightning_agx.seeding`): `seed`
        is one seed per prompt, an int (prompt i gets ``prompt_seed(seed, i)``) or None (fresh seeds); a
        prompt's output does not depend on the rest of the batch. `edit` (``[B, T, N]`` masks) applies to
        the text cross-attention of the conditional rows at every step. `overrides` update the sampling
        parameters of the family."""

    @abc.abstractmethod
    def generation_from_codes(self, prompts: list[str] | TextConditioning, codes: torch.Tensor,
                              seeds: list[int] | None = None) -> Generation:
        """The `Generation` of saved `codes` ``[B, ...]`` for `prompts`, to explain or re-explain the same audio."""

    # ------------------------------------------------------------------ the reference forward
    @abc.abstractmethod
    def forward_steps(self, generation: Generation, edit: CrossAttentionEdit | None = None, repeats: int = 1,
                      log_probs: bool = False, grad: bool = False, self_attention: bool = False) -> StepOutputs:
        """One reference pass over all T steps of `generation` (`repeats` copies of its B prompts in one batch,
        so factual and counterfactual masks run together; `edit` has ``repeats * B`` rows).

        Returns the latents h_t ``[rB, T, D]``; with `log_probs` the log-probability of the generated output per
        stream and step ``[rB, K, T]`` from the conditional (unguided) model, computed from those latents;
        with `grad` a graph in which the latents, the recorded attention weights and the log-probabilities
        can be differentiated (the weights themselves stay frozen); with `self_attention` (only where
        `records_self_attention`) the self-attention weights of every layer."""

    def latents(self, generation: Generation, edit: CrossAttentionEdit | None = None,
                repeats: int = 1) -> torch.Tensor:
        """The explained latents ``[repeats*B, T, D]`` of `forward_steps`."""
        return self.forward_steps(generation, edit, repeats).latents

    # ------------------------------------------------------------------ audio
    @abc.abstractmethod
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """``Generation.codes`` -> waveform ``[B, C, samples]`` at `sample_rate`."""

    def num_frames(self, duration: float | None = None) -> int:
        """Audio frames of `duration` seconds at the model's frame rate (None: the model's duration); a duration
        shorter than one frame is a one-line `UserError`."""
        frames = int((duration or self.duration) * self.frame_rate)
        if frames < 1:
            raise UserError(f"duration {duration or self.duration} s is shorter than one audio frame of {self.name} "
                            f"({1 / self.frame_rate:.3f} s); give a longer duration")
        return frames

    # ------------------------------------------------------------------ analyses
    @abc.abstractmethod
    def randomization_cascade(self) -> list[tuple[str, list[nn.Module]]]:
        """The model's layers for a cascading randomisation (top layer first, then embeddings, heads and the
        text conditioner), as ``(name, modules)``: the modules of `self` to re-initialise at each step."""


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
    digest = hashlib.sha256()
    for module in modules:
        for name, tensor in sorted(module.state_dict().items()):
            digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
            digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()
