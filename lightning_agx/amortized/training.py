"""Training the amortised explainer: a real Lightning fit of `AmortizedExplainer` on the AudioGenX objective.

Each step takes a batch of cached generations (`data.AmortizedData`), runs the unmasked reference pass (the
target latents h_t and the explainer's inputs, `network.step_context`), predicts p for every step and token,
samples the Gumbel-softmax mask and runs the factual and counterfactual passes as one batch: L = L_F + L_CF +
beta L1 + gamma L2 (Eq. 6), averaged over prompts (`explainer.masked_objective`, the per-prompt explainer's
own objective). Validation logs the loss terms with a fixed Gumbel noise per prompt, and, for a model with
ground truth, the mean per-prompt AUC of the audio-level importance (Eq. 7) against the sound words and the
"X followed by Y" timing check. ModelCheckpoint keeps the best validation objective; ``--ckpt_path`` resumes
(a checkpoint of a fit with other settings, `run_settings`, is refused before the model loads); at the end
the best explainer is exported (`store.save_explainer`) for the ``audiogenx_amortized`` method.
The epoch order and every prompt's Gumbel noise come from the run's seed, the prompt and the epoch, so a fit
resumed from a checkpoint gives the weights an uninterrupted one does.
"""
from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import asdict
from pathlib import Path

import lightning as L
import torch

from ..errors import UserError
from ..explainer import ExplainerConfig, masked_objective
from ..seeding import derived_seeds, streams
from .network import AmortizedExplainer, step_context
from .settings import NetworkConfig  # noqa: F401  re-exported
from .store import model_identity, read_lightning_checkpoint

TRAIN_NOISE = 10_000  # training noise of epoch e: derived seed TRAIN_NOISE + e of each prompt (validation: its own)
OBJECTIVE_KEYS = ("tau", "hard", "beta", "gamma", "objective")  # the explainer config's fields Eq. 6 reads here


def run_settings(run) -> dict:
    """What a resumed fit must share with the fit its checkpoint comes from (JSON-ready): the network, the
    objective, the seed, the data (not where its cache is) and the generation; the trainer (e.g. max_epochs) and
    the devices may differ."""
    data = {k: v for k, v in asdict(run.data).items() if k != "cache_dir"}
    settings = {"network": asdict(run.network), "objective": {k: getattr(run.explainer, k) for k in OBJECTIVE_KEYS},
                "seed": run.seed, "data": data,
                "model": {"duration": run.model.duration, "generation": run.model.generation}}
    return json.loads(json.dumps(settings, default=str))


START_ANEW = "drop --ckpt_path to start anew (in another --output_dir, not to overwrite that run's checkpoints)"


def _resume_fix(run) -> str:
    return f"give a checkpoint of this run ({Path(run.output_dir) / 'checkpoints'}) or {START_ANEW}"


def check_resume(run) -> dict:
    """The hyper-parameters of the checkpoint ``run.ckpt_path`` (read weights only), checked before any model
    loads or file is written: a missing or malformed file, or one of a fit with other settings (`run_settings`;
    a checkpoint of an older version, with only its network and objective saved, is checked on those), is a
    one-line `UserError` naming what differs."""
    from ..resume import differences
    if not Path(run.ckpt_path).is_file():
        raise UserError(f"--ckpt_path {run.ckpt_path} does not exist; {_resume_fix(run)}")
    hyper = read_lightning_checkpoint(run.ckpt_path, _resume_fix(run))["hyper_parameters"]
    saved = hyper.get("settings")
    if not isinstance(saved, dict):
        objective = hyper.get("objective") if isinstance(hyper.get("objective"), dict) else {}
        saved = {"network": hyper.get("network"), "objective": {k: objective.get(k) for k in OBJECTIVE_KEYS}}
    now = run_settings(run)
    changed = differences(saved, {k: now.get(k) for k in saved})
    if changed:
        raise UserError(f"--ckpt_path {run.ckpt_path} comes from a fit with other settings ({'; '.join(changed)}); "
                        f"resume with its settings, or {START_ANEW}")
    return hyper


def check_resumed_model(hyper: dict, tag, run) -> None:
    """The model of the run is the one the checkpoint's fit trained on (name, weights, width, vocabulary)."""
    from ..resume import differences
    changed = differences(hyper.get("identity") or {}, model_identity(tag), "model.")
    if changed:
        raise UserError(f"--ckpt_path {run.ckpt_path} comes from a fit on another model ({'; '.join(changed)}); "
                        f"resume on that model, or {START_ANEW}")


class AmortizedTraining(L.LightningModule):
    """The frozen TAG model (not a submodule: never in a checkpoint) and the amortised explainer it trains."""

    def __init__(self, tag, network: NetworkConfig, objective: ExplainerConfig, val_clips: list | None = None,
                 settings: dict | None = None):
        super().__init__()
        object.__setattr__(self, "tag", tag)
        self.explainer = AmortizedExplainer(tag.dim, network.hidden, tag.latent_dim)
        self.network, self.objective = network, objective
        self.val_clips = list(val_clips or [])
        # `settings` (`run_settings`): what a resume from this module's checkpoints is checked against
        self.save_hyperparameters({"hidden": network.hidden, "network": asdict(network),
                                   "objective": asdict(objective), "identity": model_identity(tag),
                                   "settings": settings})
        self._val: dict[str, list] = {}

    def setup(self, stage: str) -> None:
        self.tag.to(self.device)

    def configure_optimizers(self):
        return torch.optim.AdamW(self.explainer.parameters(), lr=self.network.lr,
                                 weight_decay=self.network.weight_decay)

    def _objective(self, batch, generators=None):
        index, prompts, seeds, codes = batch
        generation = self.tag.generation_from_codes(prompts, codes, seeds)
        context = step_context(self.tag, generation)
        p = self.explainer(generation.text.embeddings, context, generation.text.valid)
        loss, terms = masked_objective(self.tag, generation, context.latents, p, self.objective, generators)
        return loss / len(prompts), terms, p, generation

    def _log_terms(self, split: str, loss, terms, p, generation) -> None:
        valid = generation.text.valid[:, None, :].expand_as(p)
        self.log_dict({f"{split}/loss": loss, f"{split}/factual": terms.factual.mean(),
                       f"{split}/counterfactual": terms.counterfactual.mean(), f"{split}/l1": terms.l1.mean(),
                       f"{split}/l2": terms.l2.mean(), f"{split}/mean_p": p.detach()[valid].mean()},
                      prog_bar=split == "val", batch_size=len(generation.text), on_epoch=True,
                      on_step=split == "train")

    def training_step(self, batch, batch_idx):
        # each prompt's Gumbel noise from its own seed and the epoch: a resumed fit draws what an uninterrupted
        # one would (the global RNG is not part of a checkpoint)
        seeds = derived_seeds(batch[2], TRAIN_NOISE + self.current_epoch)
        loss, terms, p, generation = self._objective(batch, streams(seeds, "explainer", self.device))
        self._log_terms("train", loss, terms, p, generation)
        return loss

    def on_validation_epoch_start(self) -> None:
        self._val = {"auc": [], "timing": []}

    def validation_step(self, batch, batch_idx):
        index, _, seeds, _ = batch
        loss, terms, p, generation = self._objective(batch, streams(seeds, "explainer", self.device))
        self._log_terms("val", loss, terms, p, generation)
        truth = self.tag.ground_truth
        for row, i in enumerate(index):
            tokens, valid = generation.text.tokens[row], generation.text.valid[row]
            mask = p[row][:, valid].float().cpu()  # [T, N_b]
            if truth is not None:
                self._val["auc"].append(truth.auc(mask.mean(0), tokens))
            if i < len(self.val_clips):
                from ..toyworld.truth import timing_ok
                self._val["timing"].append(timing_ok(mask, self.val_clips[i]))

    def on_validation_epoch_end(self) -> None:
        aucs = [a for a in self._val["auc"] if not math.isnan(a)]
        timings = [t for t in self._val["timing"] if t is not None]
        if aucs:
            self.log("val/auc", sum(aucs) / len(aucs), prog_bar=True)
        if timings:
            self.log("val/timing", sum(timings) / len(timings), prog_bar=True)


def run_train_amortized(run):
    """``train.py --config configs/amortized_toysounds.yaml`` (`lightning_agx.config.AmortizedTrainRun`)."""
    from lightning.pytorch.callbacks import ModelCheckpoint, TQDMProgressBar
    from lightning.pytorch.loggers import CSVLogger

    from ..runner import make_fit_trainer, output_folder, progress_bar, wandb_logger
    from .data import AmortizedData
    from .store import record_in_build_report, save_explainer

    run.explainer = run.explainer.for_model(run.model.name)  # the model's recommended objective, overridden
    resumed = None if run.ckpt_path is None else check_resume(run)  # before anything is loaded or written
    output_dir = output_folder(run.output_dir)
    L.seed_everything(run.seed, workers=True, verbose=False)
    tag = run.model.load()
    if resumed is not None:
        check_resumed_model(resumed, tag, run)
    data = AmortizedData(tag, run.data, run.seed, run.model.duration, run.model.generation,
                         Path(run.data.cache_dir or output_dir / "generations"))
    data.check()  # every prompt's tokens before any generation
    module = AmortizedTraining(tag, run.network, run.explainer, data.val_clips, run_settings(run))
    checkpoint = ModelCheckpoint(dirpath=output_dir / "checkpoints", monitor="val/loss", mode="min",
                                 filename="best-epoch{epoch:03d}-val{val/loss:.4f}", auto_insert_metric_name=False)
    latest = ModelCheckpoint(dirpath=output_dir / "checkpoints", filename="last", enable_version_counter=False)
    callbacks = [checkpoint, latest] + ([TQDMProgressBar()] if progress_bar(run.trainer) else [])
    loggers = [CSVLogger(output_dir, name="metrics", version="")]  # the curves, also without W&B
    if run.wandb:
        loggers.append(wandb_logger(run.logger, output_dir))
    trainer = make_fit_trainer(run.trainer, loggers, output_dir, callbacks)
    begin = time.perf_counter()
    trainer.fit(module, datamodule=data, ckpt_path=run.ckpt_path)
    seconds = time.perf_counter() - begin
    best = checkpoint.best_model_path or checkpoint.last_model_path
    state = torch.load(best, map_location="cpu", weights_only=True)["state_dict"]
    module.explainer.load_state_dict({k[len("explainer."):]: v for k, v in state.items() if k.startswith("explainer.")})
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
    info = {"seed": run.seed, "checkpoint": str(best), "best_val_loss": float(checkpoint.best_model_score or math.nan),
            "epochs": trainer.current_epoch, "steps": trainer.global_step, "fit_seconds": round(seconds, 1),
            "train_prompts": len(data.prompts["train"]), "val_prompts": len(data.prompts["val"]),
            "last_val": metrics, "objective": asdict(run.explainer), "network": asdict(run.network),
            "data": asdict(run.data), "trainer": dict(run.trainer),
            "command": "python train.py " + " ".join(sys.argv[1:])}
    path = save_explainer(module.explainer, run.export or output_dir / "amortized", tag, info)
    record_in_build_report(path, info)
    print(f"lightning_agx: amortised explainer written to {path} (best val/loss {info['best_val_loss']:.4f})")
    return path
