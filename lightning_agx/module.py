"""The LightningModule: a frozen TAG model and the AudioGenX explainer, L = L_F + L_CF + beta L1 + gamma L2.

Prompts are explained in chunks of `batch_size` prompts per device. A chunk is generated once, then
optimised for `epochs` steps; each step is ONE teacher-forced forward + backward over all T steps with the
factual and counterfactual masks batched together ([factual; counterfactual] = 2B rows). Under DDP each
rank explains its own prompts: gradients are rank-local (the explainers of different prompts share
nothing), so the backward runs under ``no_sync``; results are gathered on disk by the writer callback.
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
from .explainer import ExplainerConfig, MaskGenerator, MaskOptimization, make_optimizer
from .explanation import Explanation, build_explanations
from .methods.audiogenx import variant_name
from .models import TAGModel
from .seeding import prompt_seed


class AudioGenXModule(L.LightningModule):
    def __init__(self, tag: TAGModel, prompts: list[str], config: ExplainerConfig | None = None,
                 batch_size: int = 8, seed: int = 0, duration: float | None = None,
                 todo: list[int] | None = None, keep_audio: bool = True, generation: dict | None = None,
                 identity: dict | None = None):
        super().__init__()
        self.tag = tag  # frozen: requires_grad False, always in eval mode (TAGModel.train is a no-op)
        self.prompts = list(prompts)
        self.config = config or ExplainerConfig()
        self.batch_size = batch_size
        self.seed = seed
        self.duration = duration
        self.todo = list(range(len(self.prompts))) if todo is None else list(todo)
        self.identity = dict(identity or {})  # the run's identity, stored with every result (lightning_agx.resume)
        self.keep_audio = keep_audio
        self.generation_overrides = dict(generation or {})
        self.automatic_optimization = False
        self.save_hyperparameters({"explainer": asdict(self.config), "batch_size": batch_size, "seed": seed,
                                   "duration": duration, "model": tag.name, "num_prompts": len(prompts)})
        self.explainer: MaskGenerator | None = None
        self.chunks: list[list[list[int]]] = []
        self.finished: list[tuple[int, Explanation]] = []  # (prompt index, explanation), popped by the writer
        self._chunk = -1
        self._indices: list[int] = []
        self._run: MaskOptimization | None = None  # the chunk being explained
        self._chunk_started = 0.0

    # ------------------------------------------------------------------ set-up
    def setup(self, stage: str) -> None:
        world, rank = self.trainer.world_size, self.trainer.global_rank
        self.chunks = plan_chunks(self.todo, self.batch_size, world)
        self.rank = rank
        steps = self.tag.num_steps(self.duration)
        self.explainer = MaskGenerator(self.batch_size, steps, self.tag.dim, self.config.hidden,
                                       self.config.per_step)

    def train_dataloader(self) -> DataLoader:
        """One item per optimisation step, ``(chunk, epoch)``, over this run's chunks (planned in `setup`)."""
        return DataLoader(StepSchedule(len(self.chunks), self.config.epochs), batch_size=None, shuffle=False)

    def configure_optimizers(self):
        return make_optimizer(self.explainer, self.config)

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
        self._run = MaskOptimization(self.tag, generation, self.config, seeds, explainer=self.explainer)
        self.optimizers().optimizer.state.clear()

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
            self._finish_chunk(terms)
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
    def _finish_chunk(self, terms) -> None:
        run, n = self._run, len(self._indices)
        gen = run.generation
        p = run.keep_probabilities()  # the explanation: keep probabilities
        audio = self.tag.decode(gen.codes).cpu() if self.keep_audio else None
        seconds = (time.perf_counter() - self._chunk_started) / n
        metadata = [{"seed": gen.seeds[row], "run_seed": self.seed, "model": self.tag.name,
                     "explainer": asdict(self.config), **self.identity_metadata(),
                     "loss_factual": float(terms.factual[row]), "loss_counterfactual": float(terms.counterfactual[row]),
                     "seconds": round(seconds, 3), "prompt_index": index, "rank": self.rank}
                    for row, index in enumerate(self._indices)]
        explanations = build_explanations(self.tag, gen, p, variant_name(self.config.objective), metadata, audio)
        self.finished.extend(zip(self._indices, explanations))
        self._run = None

    def identity_metadata(self) -> dict:
        return {"run": self.identity} if self.identity else {}

    def pop_finished(self) -> list[tuple[int, Explanation]]:
        finished, self.finished = self.finished, []
        return finished
