"""Diffusion text-to-audio models served through diffusers (Stable Audio Open's DiT, the embedded ToySounds
diffusion model, the debug model, AudioLDM 2's UNet: `lightning_agx.models.diffusers.audioldm2`) behind `TAGModel`.

`DiffusersTAG` wraps diffusers' own classes (used as a library): a denoiser (``StableAudioDiTModel``, called as
``StableAudioPipeline`` calls it, `StableAudioDenoiser`), a diffusers scheduler, a decoder from the latent to
the waveform (Stable Audio's ``AutoencoderOobleck``, a codec's decoder) and a text encoder (`TextEncoder`: T5
for real models, a lookup table for the tiny and toy ones).

**A step is one latent time frame.** The latent is ``[C, L]`` (C channels, L frames at `frame_rate` frames per
second); the queries of the DiT's text cross-attention are its frames, so row t of the mask ``[T, N]`` scales
the cross-attention of frame t to the N text tokens, at every denoising step and in every layer (T = L).
Stable Audio prepends one global (timing) token to the frames: it is not a frame and is never masked; neither
are the cross-attention keys past the text tokens (Stable Audio's two duration tokens, fixed-length padding).
**2-D latents** ``[C, H, W]`` (AudioLDM 2's mel latent: axis 2 is time, H rows, W frequency bins): a step is one
latent time row (T = H); each UNet level's queries pool the mask rows of their time span
(`lightning_agx.models.diffusers.attention`, ``AttentionState.grid``). In general the latent is
``[C, T, *rest]`` (rest: () for 1-D, (W,) for 2-D), and a step is one index of axis 2 with all its channels and
``rest`` positions. A denoiser may read a second, unmasked text stream (``TextConditioning.extra``, AudioLDM 2's
GPT-2 vectors): what it carries is out of the mask's reach.

**Generation** is ``StableAudioPipeline.__call__``'s loop (steps 4-8): the scheduler's timesteps,
``scale_model_input``, one denoiser call over ``[uncond; cond]`` rows, classifier-free guidance
``uncond + guidance_scale * (cond - uncond)`` (none at ``guidance_scale <= 1``), ``scheduler.step``. Each prompt
draws its initial noise (and any sampler noise) from its own 'generation' stream (`lightning_agx.seeding`):
its result does not depend on its batch. A `CrossAttentionEdit` applies to the conditional rows only (the
unconditional half of CFG is untouched, Eq. 2 and 4). The "codes" of this family are the generated clean
latent ``[C, T, *rest]`` (float), which `decode` turns into audio.

**The trajectory and the reference forward** (`forward_steps`, the analogue of the LM's teacher-forced pass).
K fixed points k of the sampler's schedule (steps ``round(linspace(0, S - 1, K))`` of S inference steps) give
the noisy latents the denoiser is explained on: ``x_k = noise(x0, eps_k, k)`` (the scheduler's forward
process: ``sqrt(abar) x0 + sqrt(1 - abar) eps`` for DDPM-type schedulers, ``x0 + sigma eps`` for EDM ones),
x0 the generated clean latent, eps_k drawn from the prompt's own 'trajectory' stream. Why the forward process
of the generated audio rather than the sampler's own intermediate states (kept too, ``sampled``): it is the
input distribution the denoiser was trained on, it depends on the generated audio as the LM's teacher-forced
pass depends on the generated tokens, and it is a function of the saved clean latent and the seed alone, so
`generation_from_codes` rebuilds exactly the same pass from a saved explanation.
h_t is the denoiser's **predicted clean latent x0-hat of frame t** at each of the K points, conditional rows
(no guidance, as the LM's h_t is conditional), the K predictions concatenated along the feature axis:
``[B, T, K * F]`` (`latent_dim`; F = the C channels of a frame for 1-D latents, C * W values of a time row
for 2-D ones). Why x0-hat: it is what the denoiser says the audio of frame t is (the quantity the decoder
hears), on one scale at every noise level (a noise or v prediction is not), and it depends on the text only
through the cross-attention the mask edits; several noise levels capture both the coarse content decided at
high noise and the detail at low noise. The K points run as ONE denoiser call of ``K * rB`` rows.
`log_probs` (for the gradient and perturbation baselines) is a per-frame Gaussian log-likelihood proxy of the
generated output: ``-0.5 * ||x0-hat_k(t) - x0(t)||^2`` summed over the frame's F values, ``[rB, K, T]`` (the K
points play the LM's codebooks), computed from the latents h_t.
The recorded cross-attention of a layer is ``[rB, K * heads, T, N]`` (the heads of the K points side by side;
for a 2-D level, per time row: the mean over its frequency columns); the self-attention ``[rB, K * heads, T, T]``
(frames only; the global token's row and column left out; not recorded for 2-D latents).

Shapes: B prompts, N text tokens, D text width, C latent channels, T = L latent frames (time rows), K trajectory
points.
"""
from __future__ import annotations

import contextlib
import copy
import inspect
from dataclasses import dataclass

import torch
from torch import nn

from ...errors import UserError
from ...performance import Performance
from ...seeding import resolve_seeds, stream
from ..attention import CrossAttentionEdit
from ..base import Generation, StepOutputs, TAGModel, TextConditioning
from .attention import AttentionState, edited_attention
from .denoiser import Conditions, Denoiser, StableAudioDenoiser
from .text import TextEncoder

SAMPLING_KEYS = ("guidance_scale", "num_inference_steps")


# ---------------------------------------------------------------------------------------------------- schedule
class NoiseSchedule:
    """The K trajectory points of a sampler schedule of `steps` inference steps, and the scheduler's
    parameterisation at each: the model's timestep argument, the forward-process noising, the model-input
    scaling and the clean-latent prediction x0-hat (DDPM-type schedulers with ``alphas_cumprod``, EDM ones)."""

    def __init__(self, scheduler, steps: int, points: int):
        sched = copy.deepcopy(scheduler)
        sched.set_timesteps(steps)
        self.scheduler = sched
        self.points = sorted({int(round(x)) for x in torch.linspace(0, steps - 1, points).tolist()})
        index = torch.tensor(self.points)
        self.timesteps = sched.timesteps[index]  # [K] the model's timestep argument
        self.edm = hasattr(sched, "precondition_outputs")
        self.prediction = sched.config.prediction_type
        if self.edm:
            self.sigma = sched.sigmas[index].float()  # [K]
        elif hasattr(sched, "alphas_cumprod"):
            self.alpha_bar = sched.alphas_cumprod[self.timesteps.long()].float()  # [K]
            if self.prediction not in ("epsilon", "v_prediction", "sample"):
                raise UserError(f"prediction type {self.prediction!r} is not supported; use epsilon, v_prediction "
                                "or sample")
        else:
            raise UserError(f"scheduler {type(sched).__name__} is neither DDPM-type (alphas_cumprod) nor EDM; "
                            "use e.g. DDIMScheduler or EDMDPMSolverMultistepScheduler")

    def _col(self, values: torch.Tensor, index: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        column = values.to(like.device)[index.to(like.device)].to(like.dtype)
        return column.view(-1, *[1] * (like.dim() - 1))  # [rows, 1, ...] broadcasting over the latent's axes

    def noised(self, x0: torch.Tensor, noise: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """x_k of clean latents ``[rows, C, T, *rest]`` with `noise` at points `index` ``[rows]``."""
        if self.edm:
            return x0 + self._col(self.sigma, index, x0) * noise
        ab = self._col(self.alpha_bar, index, x0)
        return ab.sqrt() * x0 + (1 - ab).sqrt() * noise

    def model_input(self, x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        if self.edm:
            return self.scheduler.precondition_inputs(x, self._col(self.sigma, index, x))
        return x  # DDPM-type schedulers' scale_model_input is the identity

    def x0(self, x: torch.Tensor, out: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        if self.edm:
            return self.scheduler.precondition_outputs(x, out, self._col(self.sigma, index, x))
        ab = self._col(self.alpha_bar, index, x)
        if self.prediction == "epsilon":
            return (x - (1 - ab).sqrt() * out) / ab.sqrt()
        if self.prediction == "v_prediction":
            return ab.sqrt() * x - (1 - ab).sqrt() * out
        return out


# ---------------------------------------------------------------------------------------------------- generation
@dataclass
class DiffusionGeneration(Generation):
    """`Generation` with the explained trajectory: ``codes`` is the clean latent x0 ``[B, C, T, *rest]``."""

    trajectory: torch.Tensor | None = None  # [B, K, *latent] x_k = noise(x0, eps_k, k): what forward_steps explains
    inference_steps: int = 0  # S: the sampler's steps (the K points are steps of that schedule)
    sampled: torch.Tensor | None = None  # [B, K, *latent] the sampler's own x at the K points (generate only)

    def select(self, index: list[int]) -> "DiffusionGeneration":
        base = super().select(index)
        return DiffusionGeneration(base.text, base.codes, base.num_steps, base.latents, base.seeds,
                                   self.trajectory[index], self.inference_steps,
                                   None if self.sampled is None else self.sampled[index])


# ---------------------------------------------------------------------------------------------------- the adapter
class DiffusersTAG(TAGModel):
    """A frozen diffusers text-to-audio model (see the module docstring).

    denoiser: a ``StableAudioDiTModel`` (wrapped in `StableAudioDenoiser` with `text_length`) or a denoiser
        wrapper with the `StableAudioDenoiser` interface (`lightning_agx.models.diffusers.audioldm2.AudioLDM2Denoiser`);
        scheduler: a diffusers scheduler (DDPM-type or EDM);
    decoder: an ``nn.Module`` mapping the clean latent ``[B, C, T, *rest]`` to the waveform ``[B, channels,
        samples]``;
    text_encoder: a `TextEncoder`; frame_rate: latent frames per second; sample_rate: of the waveform;
    duration / max_duration: seconds generated by default / at most; num_inference_steps, guidance_scale:
    the sampling defaults (overridable per call); trajectory_points: K."""

    def __init__(self, denoiser: nn.Module, scheduler, decoder: nn.Module, text_encoder: nn.Module,
                 frame_rate: float, sample_rate: int, name: str = "diffusers", duration: float = 10.0,
                 max_duration: float | None = None, num_inference_steps: int = 50, guidance_scale: float = 7.0,
                 trajectory_points: int = 4, text_length: int | None = None):
        super().__init__(name, duration)
        if not isinstance(text_encoder, TextEncoder):
            raise TypeError(f"text_encoder {type(text_encoder).__name__} lacks the TextEncoder protocol (dim, "
                            "max_tokens, tokens(prompt), __call__(prompts) -> (embeddings, valid))")
        if not isinstance(denoiser, Denoiser):
            denoiser = StableAudioDenoiser(denoiser, text_length=text_length)
        self.denoiser = denoiser
        self.decoder = decoder
        self.text_encoder = text_encoder
        self.scheduler = scheduler
        self._frame_rate, self._sample_rate = float(frame_rate), int(sample_rate)
        self._max_duration = max_duration
        self.trajectory_points = int(trajectory_points)
        self.generation_params = {"num_inference_steps": int(num_inference_steps),
                                  "guidance_scale": float(guidance_scale)}
        self.performance = Performance()
        self.random_weights = False
        self._schedules: dict[int, NoiseSchedule] = {}
        self.requires_grad_(False)
        self.eval()

    # ------------------------------------------------------------------ what it is
    @property
    def frame_rate(self) -> float:
        return self._frame_rate

    @property
    def sample_rate(self) -> int:
        return self._sample_rate

    @property
    def dim(self) -> int:
        return int(self.text_encoder.dim)

    @property
    def latent_dim(self) -> int:
        return len(self.schedule(self.generation_params["num_inference_steps"]).points) * self.denoiser.step_features

    @property
    def max_text_tokens(self) -> int | None:
        return self.text_encoder.max_tokens

    @property
    def max_duration(self) -> float | None:
        return self._max_duration

    @property
    def vocabulary(self) -> set[str] | None:
        return getattr(self.text_encoder, "vocabulary", None)

    @property
    def records_self_attention(self) -> bool:
        return bool(getattr(self.denoiser, "self_names", None))

    def hashed_modules(self) -> tuple[nn.Module, ...]:
        return (self.denoiser, self.decoder, self.text_encoder)

    @property
    def sampling_keys(self) -> tuple[str, ...]:
        return SAMPLING_KEYS

    def num_steps(self, duration: float | None = None) -> int:
        seconds = duration or self.duration
        if self._max_duration is not None and seconds > self._max_duration + 1e-9:
            raise UserError(f"duration {seconds} s is longer than the {self._max_duration:g} s {self.name} generates")
        frames = self.num_frames(duration)
        if frames < 1:
            raise UserError(f"duration {seconds} s is shorter than one latent frame ({1 / self.frame_rate:.3f} s)")
        return frames

    def output_shape(self, duration: float | None = None) -> tuple[int, ...]:
        return self.denoiser.latent_shape(self.num_steps(duration))

    def schedule(self, steps: int) -> NoiseSchedule:
        if steps not in self._schedules:
            self._schedules[steps] = NoiseSchedule(self.scheduler, steps, self.trajectory_points)
        return self._schedules[steps]

    # ------------------------------------------------------------------ text
    def token_strings(self, prompt: str) -> list[str]:
        return list(self.text_encoder.tokens(prompt))

    def encode_text(self, prompts: list[str]) -> TextConditioning:
        tokens = self.check_text(prompts)
        with torch.no_grad():
            embeddings, valid = self.text_encoder(list(prompts))
            extra = self._extra_conditioning(list(prompts))
        valid = valid.bool()
        for i, toks in enumerate(tokens):
            if int(valid[i].sum()) != len(toks):
                raise RuntimeError(f"token strings ({len(toks)}) and text encoder tokens ({int(valid[i].sum())}) "
                                   f"disagree for prompt {prompts[i]!r}")
        return TextConditioning(list(prompts), tokens, embeddings.float() * valid[..., None], valid, extra)

    def _extra_conditioning(self, prompts: list[str]) -> torch.Tensor | None:
        """The text encoder's second, unmasked stream ``[B, M, D']`` (`TextEncoder`), or None when it has none."""
        make = getattr(self.text_encoder, "extra_conditioning", None)
        return None if make is None else make(prompts).float()

    def denoiser_conditions(self, text: TextConditioning, rows: int, frames: int) -> Conditions:
        """The denoiser's conditioning of `rows` copies of `text`'s B prompts (copy-major), for `frames` steps."""
        device = self.device
        extra = None if text.extra is None else text.extra.repeat(rows, 1, 1).to(device)
        return self.denoiser.conditions(text.embeddings.repeat(rows, 1, 1).to(device),
                                        text.valid.repeat(rows, 1).to(device), frames / self.frame_rate, extra)

    # ------------------------------------------------------------------ generation
    def _sampling(self, overrides: dict) -> dict:
        params = {**self.generation_params, **self.check_sampling(overrides)}
        if int(params["num_inference_steps"]) < 1:
            raise UserError(f"num_inference_steps must be >= 1; got {params['num_inference_steps']}")
        return params

    @torch.no_grad()
    def generate(self, prompts: list[str] | TextConditioning, duration: float | None = None,
                 seed: int | list[int] | None = None, edit: CrossAttentionEdit | None = None,
                 **overrides) -> DiffusionGeneration:
        """Sample clean latents for `prompts` (see `TAGModel.generate` and the module docstring); `overrides`:
        num_inference_steps, guidance_scale."""
        text = prompts if isinstance(prompts, TextConditioning) else self.encode_text(list(prompts))
        params = self._sampling(overrides)
        steps, guidance = int(params["num_inference_steps"]), float(params["guidance_scale"])
        frames = self.num_steps(duration)
        b, device = len(text), self.device
        seeds = resolve_seeds(seed, b)
        edit = edit if edit is not None else CrossAttentionEdit()
        if edit.record:
            raise NotImplementedError("recording the cross-attention during generation is not supported (every "
                                      "denoising step would be recorded); record it in forward_steps")
        if edit.batch_size not in (None, b):
            raise ValueError(f"edit has {edit.batch_size} rows for {b} prompts")
        schedule = self.schedule(steps)
        sched = copy.deepcopy(self.scheduler)
        sched.set_timesteps(steps, device=device)
        cond = self.denoiser_conditions(text, 1, frames)
        cfg = guidance > 1.0
        model_cond = Conditions.cat([self.denoiser.unconditional(cond), cond]) if cfg else cond  # pipeline order
        rows = torch.cat([torch.full((b,), -1), torch.arange(b)]) if cfg else torch.arange(b)
        generators = [stream(s, "generation") for s in seeds]  # CPU streams: the same noise on any device
        shape = self.denoiser.latent_shape(frames)
        latents = torch.cat([torch.randn(1, *shape, generator=g) for g in generators]).to(device)
        latents = latents * sched.init_noise_sigma
        extra = {}
        accepted = set(inspect.signature(sched.step).parameters)
        if "generator" in accepted:
            extra["generator"] = generators
        state = AttentionState(edit, rows, frames, text_keys=text.valid.shape[1],
                               query_offset=self.denoiser.query_offset, key_valid=model_cond.key_valid,
                               grid=self.denoiser.grid(frames))
        sampled = []
        with edited_attention(self.denoiser.attention_model, state, self.denoiser.cross_names):
            for i, t in enumerate(sched.timesteps):
                if i in schedule.points:
                    sampled.append(latents)
                model_in = torch.cat([latents] * 2) if cfg else latents
                model_in = sched.scale_model_input(model_in, t)
                out = self.denoiser(model_in, t.reshape(1).expand(model_in.shape[0]), model_cond)
                if cfg:
                    uncond, conditional = out.chunk(2)
                    out = uncond + guidance * (conditional - uncond)
                latents = sched.step(out, t, latents, **extra).prev_sample
        x0 = latents.float()
        return DiffusionGeneration(text, x0, frames, None, seeds, self._trajectory(x0, seeds, schedule), steps,
                                   torch.stack(sampled, dim=1).float())

    def _trajectory(self, x0: torch.Tensor, seeds: list[int], schedule: NoiseSchedule) -> torch.Tensor:
        """``[B, K, *latent]``: x0 noised at the K points with each prompt's own 'trajectory' noise."""
        k = len(schedule.points)
        noise = torch.stack([torch.randn(k, *x0.shape[1:], generator=stream(s, "trajectory")) for s in seeds])
        noise = noise.to(x0.device)  # [B, K, *latent]
        b = x0.shape[0]
        index = torch.arange(k).repeat(b)
        noisy = schedule.noised(x0.repeat_interleave(k, 0), noise.flatten(0, 1), index)
        return noisy.view(b, k, *x0.shape[1:])

    def generation_from_codes(self, prompts: list[str] | TextConditioning, codes: torch.Tensor,
                              seeds: list[int] | None = None) -> DiffusionGeneration:
        """The generation of a saved clean latent ``[B, C, T, *rest]``: its trajectory is re-derived from the seeds
        (the same as the original generation's when they are its seeds and the sampling steps are the model's
        defaults). Without seeds each prompt's trajectory noise comes from seed 0."""
        text = prompts if isinstance(prompts, TextConditioning) else self.encode_text(list(prompts))
        codes = codes.to(self.device).float()
        frames = int(codes.shape[2]) if codes.dim() >= 3 else 0
        expected = self.denoiser.latent_shape(frames)
        if tuple(codes.shape[1:]) != expected:
            shape = ", ".join(["B", str(expected[0]), "T", *map(str, expected[2:])])
            raise ValueError(f"codes must be latents [{shape}]; got {tuple(codes.shape)}")
        seeds = list(seeds) if seeds is not None else [0] * len(text)
        steps = int(self.generation_params["num_inference_steps"])
        trajectory = self._trajectory(codes, seeds, self.schedule(steps))
        return DiffusionGeneration(text, codes, frames, None, seeds, trajectory, steps)

    # ------------------------------------------------------------------ the reference forward
    def forward_steps(self, generation: DiffusionGeneration, edit: CrossAttentionEdit | None = None,
                      repeats: int = 1, log_probs: bool = False, grad: bool = False,
                      self_attention: bool = False) -> StepOutputs:
        """The denoiser at the K trajectory points of `generation`, conditional rows, as ONE call of
        ``K * repeats * B`` rows (point-major; `edit` has ``repeats * B`` rows and applies at every point); see
        `TAGModel.forward_steps` and the module docstring for h_t, the log-probability proxy and the recorded
        attention."""
        if self_attention and not self.records_self_attention:
            raise NotImplementedError(f"{type(self.denoiser).__name__}'s self-attention is not recorded")
        text, x0 = generation.text, generation.codes
        b, k, *latent = generation.trajectory.shape  # latent: [C, T, *rest]
        frames = latent[1]
        rb = repeats * b
        edit = edit if edit is not None else CrossAttentionEdit()
        if edit.batch_size not in (None, rb):
            raise ValueError(f"edit has {edit.batch_size} rows; the reference forward has {rb} (repeats x prompts)")
        schedule = self.schedule(generation.inference_steps)
        device = x0.device
        x = generation.trajectory.transpose(0, 1).repeat(1, repeats, *[1] * len(latent)).reshape(k * rb, *latent)
        point = torch.arange(k).repeat_interleave(rb)  # [K*rB] row -> trajectory point
        timesteps = schedule.timesteps.to(device)[point.to(device)]
        cond = self.denoiser_conditions(text, k * repeats, frames)
        state = AttentionState(edit, torch.arange(rb).repeat(k), frames, text_keys=text.valid.shape[1],
                               query_offset=self.denoiser.query_offset, key_valid=cond.key_valid, points=k,
                               grid=self.denoiser.grid(frames), record_self=self_attention)
        names = self.denoiser.self_names if self_attention else []
        with contextlib.ExitStack() as stack:
            if grad:
                stack.enter_context(torch.enable_grad())
            stack.enter_context(edited_attention(self.denoiser.attention_model, state, self.denoiser.cross_names,
                                                 names))
            if grad:  # a leaf that requires grad: the graph reaches every intermediate tensor, weights stay frozen
                x = x.detach().requires_grad_(True)
            out = self.denoiser(schedule.model_input(x, point), timesteps, cond)
            x0_hat = schedule.x0(x, out, point)  # [K*rB, C, T, *rest]
            latents = per_step(x0_hat.view(k, rb, *latent))  # [rB, T, K*F]
            scores = None
            if log_probs:
                target = per_step(x0.repeat(repeats, *[1] * len(latent))[None])  # [rB, T, F]
                error = (latents.view(rb, frames, k, -1) - target[:, :, None]).pow(2).sum(-1)  # [rB, T, K]
                scores = (-0.5 * error).transpose(1, 2)  # [rB, K, T]
        return StepOutputs(latents, scores, state.self_weights if self_attention else None)

    # ------------------------------------------------------------------ audio
    @torch.no_grad()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Clean latents ``[B, C, T, *rest]`` -> waveform ``[B, channels, samples]`` at `sample_rate`."""
        return self.decoder(codes.to(self.device)).float()

    # ------------------------------------------------------------------ analyses
    def randomization_cascade(self) -> list[tuple[str, list[nn.Module]]]:
        steps = self.denoiser.cascade()
        name, modules = steps[-1]
        steps[-1] = (name, [*modules, self.text_encoder])
        return steps


def per_step(latents: torch.Tensor) -> torch.Tensor:
    """``[K, rB, C, T, *rest]`` -> ``[rB, T, K * F]``: each step's values (F = C * prod(rest)), point-major, then
    channel-major (for 1-D latents: ``[rB, T, K * C]``, point k's channels at ``[k * C, (k + 1) * C)``)."""
    k, rb, c, frames = latents.shape[:4]
    rest = list(range(4, latents.dim()))
    return latents.permute(1, 3, 0, 2, *rest).reshape(rb, frames, -1)


__all__ = ["DiffusersTAG", "DiffusionGeneration", "NoiseSchedule", "SAMPLING_KEYS", "per_step"]
