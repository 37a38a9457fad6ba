"""AudioGenX's mask generator and objective (the paper's Eq. 2-6).

For each prompt b and LM step t, an MLP maps every text token embedding x_n to a keep probability
p[b, t, n] = sigmoid(MLP_{b,t}(x_n)); a Gumbel-softmax sample of (drop, keep) gives the soft mask m.
The factual mask keeps attention A * m, the counterfactual one removes it, A * (1 - m). The MLPs of all
prompts and steps are stored as batched tensors so that B prompts and T steps train in one pass.
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

from .errors import UserError


AUTHORS = {"hidden": 512, "per_step": True, "tau": 1.0, "hard": False, "beta": 1e-3, "gamma": 1e-1, "lr": 1e-3,
           "weight_decay": 1e-3, "epochs": 50, "objective": "both"}  # the authors' released settings


@dataclass
class ExplainerConfig:
    """Hyper-parameters of the mask generator and its objective. A field left None takes the model's recommended
    setting (`lightning_agx.models.TAGModel.recommended_explainer`), else the authors' (`AUTHORS`): `for_model`
    fills them in; every run resolves its config that way before it is used or recorded."""

    hidden: int | None = None  # MLP width (authors: 512)
    per_step: bool | None = None  # one MLP per LM step (authors); False: one MLP per prompt, shared by all steps
    tau: float | None = None  # Gumbel-softmax temperature (authors: 1)
    hard: bool | None = None  # straight-through hard samples while training (authors: soft)
    beta: float | None = None  # L1 weight on p (authors: 1e-3)
    gamma: float | None = None  # L2 weight on p (authors: 1e-1)
    lr: float | None = None  # Adam's learning rate (authors: 1e-3)
    weight_decay: float | None = None  # (authors: 1e-3)
    epochs: int | None = None  # optimisation steps per prompt, one teacher-forced forward + backward each (50)
    objective: str | None = None  # both: L_F + L_CF (AudioGenX); factual: Eq. 3 only; counterfactual: Eq. 5 only

    def __post_init__(self) -> None:
        from .inputs import check_int, check_number
        given = self.given()
        if "hidden" in given:
            check_int(self.hidden, "explainer.hidden", low=1)
        if "epochs" in given:
            check_int(self.epochs, "explainer.epochs", low=1)
        if "tau" in given:
            check_number(self.tau, "explainer.tau", low=0, low_open=True)
        if "lr" in given:
            check_number(self.lr, "explainer.lr", low=0, low_open=True)
        for key in ("beta", "gamma", "weight_decay"):
            if key in given:
                check_number(getattr(self, key), f"explainer.{key}", low=0)
        for key in ("per_step", "hard"):
            if key in given and not isinstance(getattr(self, key), bool):
                raise UserError(f"explainer.{key} must be true or false; got {getattr(self, key)!r}")
        if "objective" in given and self.objective not in OBJECTIVES:
            raise UserError(f"unknown objective '{self.objective}'; available: {', '.join(OBJECTIVES)}")

    def given(self) -> dict:
        """The fields this config sets (the others follow the model, then the authors)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}

    def for_model(self, tag=None) -> "ExplainerConfig":
        """Every field set: this config's, else the recommended setting of `tag` (a `TAGModel`, or a model name:
        its catalogue entry's), else the authors'. Idempotent."""
        if isinstance(tag, str):
            from .models.catalogue import recommended_explainer
            recommended = recommended_explainer(tag)
        else:
            recommended = getattr(tag, "recommended_explainer", None) or {}
        return ExplainerConfig(**{**AUTHORS, **recommended, **self.given()})

    @property
    def complete(self) -> bool:
        return all(getattr(self, f.name) is not None for f in fields(self))


OBJECTIVES = ("both", "factual", "counterfactual")


class MaskGenerator(nn.Module):
    """B x T independent MLPs ``Linear(D, H) -> PReLU -> Linear(H, 1) -> sigmoid`` over text embeddings.

    The first layers of all T MLPs of a prompt are stored side by side as one ``[D, T * H]`` matrix, so the
    forward is one batched matmul with no copy of the (large) weights.
    """

    def __init__(self, batch: int, steps: int, dim: int, hidden: int = 512, per_step: bool = True):
        super().__init__()
        self.steps = steps
        self.mlps = steps if per_step else 1
        self.hidden = hidden
        self.w1 = nn.Parameter(torch.empty(batch, dim, self.mlps * hidden))  # MLP s uses columns s*H:(s+1)*H
        self.b1 = nn.Parameter(torch.empty(batch, self.mlps, hidden))
        self.alpha = nn.Parameter(torch.empty(batch, self.mlps, 1))  # PReLU slope, one per MLP
        self.w2 = nn.Parameter(torch.empty(batch, self.mlps, hidden))
        self.b2 = nn.Parameter(torch.empty(batch, self.mlps))
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self, generators: list[torch.Generator] | None = None) -> None:
        """nn.Linear's default initialisation, U(-1/sqrt(fan_in), 1/sqrt(fan_in)); PReLU slope 0.25.

        With `generators`, the MLPs of prompt b are drawn from ``generators[b]`` alone (the rows past the
        last generator are left as they are), so a prompt's start does not depend on its batch."""
        dim = self.w1.shape[1]
        rows = [(slice(None), None)] if generators is None else [(b, g) for b, g in enumerate(generators)]
        for row, generator in rows:
            for tensor, fan_in in ((self.w1, dim), (self.b1, dim), (self.w2, self.hidden), (self.b2, self.hidden)):
                bound = 1 / math.sqrt(fan_in)
                tensor[row].uniform_(-bound, bound, generator=generator)
        self.alpha.fill_(0.25)

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Text embeddings ``[B, N, D]`` (detached) -> keep probabilities p ``[B, T, N]``.

        B may be smaller than the generator's batch (the last chunk): the first B MLP sets are used."""
        b, n, _ = embeddings.shape
        hid = torch.bmm(embeddings, self.w1[:b]).view(b, n, self.mlps, self.hidden)  # [B, N, S, H]
        hid = hid + self.b1[:b, None]
        hid = torch.where(hid >= 0, hid, self.alpha[:b, None] * hid)  # PReLU
        logits = (hid * self.w2[:b, None]).sum(-1) + self.b2[:b, None]  # [B, N, S]
        return torch.sigmoid(logits).transpose(1, 2).expand(-1, self.steps, -1)  # [B, T, N]


def gumbel_mask(p: torch.Tensor, tau: float = 1.0, hard: bool = False, eps: float = 1e-8,
                noise: torch.Tensor | None = None) -> torch.Tensor:
    """Gumbel-softmax sample of keep (1) vs drop (0) over logits (log(1 - p), log(p)); returns m in [0, 1].

    `noise` ``[B, T, N, 2]`` is the Gumbel noise (`gumbel_noise`); None draws it from torch's global stream,
    as ``F.gumbel_softmax`` does."""
    logits = torch.stack([torch.log(1 - p + eps), torch.log(p + eps)], dim=-1)
    if noise is None:
        return F.gumbel_softmax(logits, tau=tau, hard=hard, dim=-1)[..., 1]
    soft = torch.softmax((logits + noise) / tau, dim=-1)  # F.gumbel_softmax with the given noise
    if hard:
        index = soft.argmax(dim=-1, keepdim=True)
        soft = torch.zeros_like(soft).scatter_(-1, index, 1.0) - soft.detach() + soft
    return soft[..., 1]


def gumbel_noise(generators: list[torch.Generator], steps: int, lengths: list[int], width: int,
                 device: torch.device) -> torch.Tensor:
    """Gumbel(0, 1) noise ``[B, T, width, 2]``: prompt b's valid tokens from ``generators[b]`` alone (0 at padding),
    so the noise a prompt sees does not depend on the padding width or the other prompts."""
    noise = torch.zeros(len(generators), steps, width, 2, device=device)
    for b, (generator, n) in enumerate(zip(generators, lengths)):
        draw = torch.empty(steps, n, 2, device=device).exponential_(generator=generator)
        noise[b, :, :n] = -draw.log()
    return noise


def perturbation_masks(mask: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Factual (m) and counterfactual (1 - m) attention multipliers ``[B, T, N]``; 1 at padding tokens."""
    valid = valid[:, None, :]
    return torch.where(valid, mask, 1.0), torch.where(valid, 1 - mask, 1.0)


@dataclass
class LossTerms:
    factual: torch.Tensor  # [B] L_F  = -sum_t cos(h_t, h_t^F)
    counterfactual: torch.Tensor  # [B] L_CF = +sum_t cos(h_t, h_t^CF)
    l1: torch.Tensor  # [B] ||p||_1 over valid tokens
    l2: torch.Tensor  # [B] ||p||_2 over valid tokens

    def total(self, beta: float, gamma: float, objective: str = "both") -> torch.Tensor:
        """[B] L = L_F + L_CF + beta * L1 + gamma * L2 (Eq. 6), or one fidelity term only."""
        fidelity = {"both": self.factual + self.counterfactual, "factual": self.factual,
                    "counterfactual": self.counterfactual}[objective]
        return fidelity + beta * self.l1 + gamma * self.l2


def audiogenx_loss(target: torch.Tensor, factual: torch.Tensor, counterfactual: torch.Tensor,
                   p: torch.Tensor, valid: torch.Tensor) -> LossTerms:
    """Eq. 3, 5, 6 per prompt. target/factual/counterfactual: latents ``[B, T, D]``; p ``[B, T, N]``."""
    p_valid = p * valid[:, None, :]
    return LossTerms(
        factual=-F.cosine_similarity(target, factual, dim=-1).sum(-1),
        counterfactual=F.cosine_similarity(target, counterfactual, dim=-1).sum(-1),
        l1=p_valid.abs().sum((1, 2)),
        l2=p_valid.pow(2).sum((1, 2)).sqrt(),
    )


def audiogenx_step(tag, explainer: MaskGenerator, generation, target: torch.Tensor, config: ExplainerConfig,
                   generators: list[torch.Generator] | None = None) -> tuple[torch.Tensor, LossTerms, torch.Tensor]:
    """One forward of the objective for the B prompts of `generation`: returns (loss, terms, p)."""
    p = explainer(generation.text.embeddings.detach())  # [B, T, N]
    loss, terms = masked_objective(tag, generation, target, p, config, generators)
    return loss, terms, p


def masked_objective(tag, generation, target: torch.Tensor, p: torch.Tensor, config: ExplainerConfig,
                     generators: list[torch.Generator] | None = None) -> tuple[torch.Tensor, LossTerms]:
    """Eq. 6 for keep probabilities ``p [B, T, N]`` (from any explainer): returns (sum over prompts, terms).

    `target` is the unperturbed latents ``[B, T, D]``. The factual and counterfactual passes run as ONE
    reference forward over all T steps with 2B rows (only the pass the objective needs, otherwise).
    `generators` (one per prompt) draw each prompt's Gumbel noise; None: torch's global stream.
    """
    from .models import CrossAttentionEdit

    config = (config or ExplainerConfig()).for_model(tag)
    text = generation.text
    n = len(text)
    noise = None
    if generators is not None:
        noise = gumbel_noise(generators, p.shape[1], [len(t) for t in text.tokens], p.shape[2], p.device)
    m = gumbel_mask(p, config.tau, config.hard, noise=noise)
    factual, counterfactual = perturbation_masks(m, text.valid)
    masks = {"both": [factual, counterfactual], "factual": [factual], "counterfactual": [counterfactual]}
    chosen = masks[config.objective]
    latents = tag.latents(generation, CrossAttentionEdit(post_softmax=torch.cat(chosen)), repeats=len(chosen))
    parts = dict(zip(("factual", "counterfactual") if config.objective == "both" else (config.objective,),
                     latents.split(n)))
    h_factual = parts.get("factual", target)  # a missing pass contributes a constant (no gradient)
    h_counterfactual = parts.get("counterfactual", target)
    terms = audiogenx_loss(target, h_factual, h_counterfactual, p, text.valid)
    return terms.total(config.beta, config.gamma, config.objective).sum(), terms


def make_optimizer(explainer: MaskGenerator, config: ExplainerConfig, tag=None) -> torch.optim.Optimizer:
    """Adam as the authors use it; the fused kernel (CPU and CUDA) updates the many MLPs in one pass."""
    config = config.for_model(tag)
    return torch.optim.Adam(explainer.parameters(), lr=config.lr, weight_decay=config.weight_decay, fused=True)


class MaskOptimization:
    """AudioGenX for one chunk of prompts: their unmasked target latents, their explainer (initialised and
    Gumbel noise drawn from each prompt's own stream, `lightning_agx.seeding`) and `step`, the one
    optimisation step that both the Lightning module and `optimize_masks` run `config.epochs` times.

    `explainer` reuses an existing `MaskGenerator` (at least B rows; the Lightning module keeps one for all
    its chunks), else one of B rows is made. Prompt b's streams come from ``seeds[b]``."""

    def __init__(self, tag, generation, config: ExplainerConfig, seeds: list[int],
                 explainer: MaskGenerator | None = None):
        from .seeding import streams
        config = config.for_model(tag)
        self.tag, self.generation, self.config = tag, generation, config
        with torch.no_grad():
            self.target = tag.latents(generation)  # [B, T, D], same numerics as the masked passes
        device = self.target.device
        self.generators = streams(seeds, "explainer", device)
        if explainer is None:
            explainer = MaskGenerator(len(generation.text), generation.num_steps, tag.dim, config.hidden,
                                      config.per_step).to(device)
        self.explainer = explainer
        explainer.reset_parameters(self.generators)

    def step(self, optimizer: torch.optim.Optimizer, backward=None) -> tuple[torch.Tensor, LossTerms, torch.Tensor]:
        """zero_grad, the objective (Eq. 6), backward (`backward(loss)`, default ``loss.backward()``), update.
        Returns the detached (loss, terms, p). A non-finite loss raises before any update."""
        with self.tf32():  # the explainer's MLPs and Adam stay float32 (TF32 matmuls on CUDA by default)
            optimizer.zero_grad()
            loss, terms, p = audiogenx_step(self.tag, self.explainer, self.generation, self.target, self.config,
                                            self.generators)
            if not torch.isfinite(loss):
                prompts = ", ".join(repr(p[:40]) for p in self.generation.text.prompts[:3])
                raise FloatingPointError(f"the AudioGenX loss is {loss.item()} for prompts {prompts}; nothing of this "
                                         "chunk was saved: lower explainer.lr, or run the model in float32 "
                                         "(trainer.precision=32, tag.performance autocast 'off')")
            (backward or torch.Tensor.backward)(loss)
            optimizer.step()
        return loss.detach(), terms, p.detach()

    def tf32(self):
        """TF32 matmuls around the step where the model's performance options ask for them (CUDA)."""
        from .performance import model_performance, tf32_matmuls
        return tf32_matmuls() if model_performance(self.tag, self.target.device).tf32 else contextlib.nullcontext()

    @torch.no_grad()
    def keep_probabilities(self) -> torch.Tensor:
        """The explanation: p ``[B, T, N]`` of the current explainer on the prompts' embeddings."""
        return self.explainer(self.generation.text.embeddings)[:len(self.generation.text)]


def optimize_masks(tag, generation, config: ExplainerConfig | None = None,
                   seed: int | list[int] | None = 0, on_step=None) -> torch.Tensor:
    """AudioGenX without Lightning, for one generation (the methods registry and the explorer use it):
    ``p [B, T, N]``.

    Prompt b's explainer streams come from ``seed[b]`` (a list), or ``prompt_seed(seed, b)`` (an int).
    `on_step(done, total)` is called after each optimisation step (progress bars)."""
    from .seeding import resolve_seeds
    config = (config or ExplainerConfig()).for_model(tag)
    run = MaskOptimization(tag, generation, config, resolve_seeds(seed, len(generation.text)))
    optimizer = make_optimizer(run.explainer, config)
    for epoch in range(config.epochs):
        run.step(optimizer)
        if on_step is not None:
            on_step(epoch + 1, config.epochs)
    return run.keep_probabilities()
