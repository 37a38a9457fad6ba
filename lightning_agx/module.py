"""The LightningModule of an explanation run: a frozen TAG model and a method (`lightning_agx.methods.Method`),
AudioGenX by default.

Prompts are explained in chunks of `batch_size` prompts per device. A chunk is generated once. A method
optimised per chunk (per-prompt AudioGenX: L = L_F + L_CF + beta L1 + gamma L2) runs through `fit`: `epochs`
steps per chunk, each ONE reference forward + backward over all T steps with the factual and counterfactual
masks batched together ([factual; counterfactual] = 2B rows). Any other method (the amortised explainer, the
baselines) is one pass per chunk, `predict_step`, with no optimiser. Under DDP each rank explains its own prompts: gradients are rank-local (the
explainers of different prompts share nothing), so the backward runs under ``no_sync``; results are
gathered on disk by the writer callback. Every explanation records ``seconds_generation`` and
``seconds_mask`` (its share of the chunk's generation and mask time).
"""
from __future__ import annotations

import contextlib
import time
from dataclasses import asdict

import lightning as L
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from .data import StepSchedule, plan_chunks
from .explainer import MaskGenerator, MaskOptimization, make_optimizer
from .explanation import Explanation, build_explanations
from .methods import Method, make_method
from .models import TAGModel
from .seeding import prompt_seed


class AudioGenXModule(L.LightningModule):
    def __init__(self, tag: TAGModel, prompts: list[str], method: Method | None = None, batch_size: int = 8,
                 seed: int = 0, duration: float | None = None, todo: list[int] | None = None,
                 keep_audio: bool = True, generation: dict | None = None, identity: dict | None = None,
                 stop=None):
        super().__init__()
        self.tag = tag  # frozen: requires_grad False, always in eval mode (TAGModel.train is a no-op)
        self.prompts = list(prompts)
        self.method = method if method is not None else make_method("audiogenx")
        self.config = self.method.explainer_config(tag)
        self.batch_size = batch_size
        self.seed = seed
        self.duration = duration
        self.todo = list(range(len(self.prompts))) if todo is None else list(todo)
        self.identity = dict(identity or {})  # the run's identity, stored with every result (lightning_agx.resume)
        self.keep_audio = keep_audio
        self.generation_overrides = dict(generation or {})
        self.stop = stop  # the run's stop request (lightning_agx.signals): a one-pass run ends at the next chunk
        self.optimizes = self.method.per_chunk_optimisation  # `epochs` optimisation steps per chunk, in a fit
        self.steps_per_chunk = self.config.epochs if self.optimizes else 1
        self.automatic_optimization = False
        self.save_hyperparameters({"explainer": asdict(self.config), "batch_size": batch_size, "seed": seed,
                                   "duration": duration, "model": tag.name, "num_prompts": len(prompts),
                                   "method": self.method.record_name})
        self.explainer: MaskGenerator | None = None
        self.chunks: list[list[list[int]]] = []
        self.finished: list[tuple[int, Explanation]] = []  # (prompt index, explanation), popped by the writer
        self._chunk = -1
        self._indices: list[int] = []
        self._run: MaskOptimization | None = None  # the chunk being explained (per-prompt AudioGenX)
        self._generation = None  # the chunk being explained (any other method)
        self._chunk_started = self._mask_started = 0.0

    # ------------------------------------------------------------------ set-up
    def setup(self, stage: str) -> None:
        world, rank = self.trainer.world_size, self.trainer.global_rank
        self.chunks = plan_chunks(self.todo, self.batch_size, world)
        self.rank = rank
        if self.optimizes:
            steps = self.tag.num_steps(self.duration)
            self.explainer = MaskGenerator(self.batch_size, steps, self.tag.dim, self.config.hidden,
                                           self.config.per_step)

    def train_dataloader(self) -> DataLoader:
        """One item per step, ``(chunk, epoch)``, over this run's chunks (planned in `setup`)."""
        return DataLoader(StepSchedule(len(self.chunks), self.steps_per_chunk), batch_size=None, shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        """One item per chunk, ``(chunk, 0)``: a one-pass method explains a chunk per step."""
        return DataLoader(StepSchedule(len(self.chunks), 1), batch_size=None, shuffle=False)

    def configure_optimizers(self):
        return make_optimizer(self.explainer, self.config) if self.optimizes else None

    @property
    def num_prompts_todo(self) -> int:
        return sum(len(s) for chunk in self.chunks for s in chunk)

    # ------------------------------------------------------------------ chunks
    def _start_chunk(self, chunk: int) -> None:
        self._chunk = chunk
        self._indices = self.chunks[chunk][self.rank]
        self._chunk_started = time.perf_counter()
        if not self._indices:  # the last chunk can leave a rank without prompts
            self._run = None
            return
        prompts = [self.prompts[i] for i in self._indices]
        seeds = [prompt_seed(self.seed, i) for i in self._indices]  # each prompt's own seed and streams
        with torch.no_grad():
            generation = self.tag.generate(prompts, duration=self.duration, seed=seeds, **self.generation_overrides)
        self._mask_started = time.perf_counter()
        if not self.optimizes:
            self._generation = generation
            return
        self._run = MaskOptimization(self.tag, generation, self.config, seeds, explainer=self.explainer)
        self.optimizers().optimizer.state.clear()

    def predict_step(self, batch, batch_idx):
        """A one-pass method on one chunk (nothing once a stop was requested: what finished is saved)."""
        chunk, _ = (int(x) for x in batch)
        if self.stop is not None and self.stop.signum is not None:
            return None
        self._start_chunk(chunk)
        if self._indices:
            gen = self._generation
            with torch.enable_grad():  # Lightning predicts under no_grad; gradient methods and refinement need it
                importance = self.method.run(self.tag, gen, gen.seeds)
            self._finish_chunk(gen, importance, None)
        return None

    def training_step(self, batch, batch_idx):
        chunk, epoch = (int(x) for x in batch)
        if chunk != self._chunk:
            self._start_chunk(chunk)
        opt = self.optimizers()
        if self._run is None:
            opt.zero_grad()
            return None
        gen, n = self._run.generation, len(self._indices)
        loss, terms, p = self._run.step(opt, backward=self._backward)
        self.log_dict({"loss/total": loss / n, "loss/factual": terms.factual.mean(),
                       "loss/counterfactual": terms.counterfactual.mean(), "loss/l1": terms.l1.mean(),
                       "loss/l2": terms.l2.mean(), "mask/mean_p": self._mean_valid(p.detach(), gen.text.valid)},
                      prog_bar=False, batch_size=n)
        if epoch == self.config.epochs - 1:
            self._finish_chunk(gen, self._run.keep_probabilities(), terms)
        return loss

    def _backward(self, loss: torch.Tensor) -> None:
        """Lightning's backward, rank-local under DDP (the explainers of different prompts share nothing)."""
        model = self.trainer.strategy.model if self.trainer is not None else None
        with model.no_sync() if isinstance(model, DistributedDataParallel) else contextlib.nullcontext():
            self.manual_backward(loss)

    @staticmethod
    def _mean_valid(p: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        weights = valid[:, None, :].expand_as(p)
        return p[weights].mean()

    @torch.no_grad()
    def _finish_chunk(self, gen, importance: torch.Tensor, terms) -> None:
        """The chunk's explanations (importance ``[B, T, N]``; AudioGenX: the keep probabilities p)."""
        n = len(self._indices)
        mask_seconds = time.perf_counter() - self._mask_started
        audio = self.tag.decode(gen.codes).cpu() if self.keep_audio else None
        seconds = (time.perf_counter() - self._chunk_started) / n
        losses = [{} if terms is None else {"loss_factual": float(terms.factual[row]),
                                             "loss_counterfactual": float(terms.counterfactual[row])}
                  for row in range(n)]
        metadata = [{"seed": gen.seeds[row], "run_seed": self.seed, "model": self.tag.name,
                     "explainer": asdict(self.config), **self.identity_metadata(), **losses[row],
                     "seconds": round(seconds, 3), "prompt_index": index, "rank": self.rank,
                     "seconds_generation": round((self._mask_started - self._chunk_started) / n, 4),
                     "seconds_mask": round(mask_seconds / n, 4)}
                    for row, index in enumerate(self._indices)]
        explanations = build_explanations(self.tag, gen, importance, self.method.record_name, metadata, audio)
        self.finished.extend(zip(self._indices, explanations))
        self._run = self._generation = None

    def identity_metadata(self) -> dict:
        return {"run": self.identity} if self.identity else {}

    def pop_finished(self) -> list[tuple[int, Explanation]]:
        finished, self.finished = self.finished, []
        return finished
