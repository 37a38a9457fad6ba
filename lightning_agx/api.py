"""Python API: ``explain(model, prompts) -> list[Explanation]``, and the run behind ``train.py``."""
from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.strategies import DDPStrategy
from torch.utils.data import DataLoader

from .callbacks import ExplanationProgressBar, ExplanationWriter
from .config import LoggerConfig, RunConfig, TrainerConfig
from .data import StepSchedule, plan_chunks
from .errors import RunStopped
from .explainer import ExplainerConfig
from .explanation import Explanation, prompt_folder_name
from .inputs import check_batch_size, check_duration, check_duration_value, check_prompts, ensure_writable, load_prompts
from .methods.audiogenx import variant_name
from .models import TAGModel, load_model
from .models.text_check import check_text_before_loading
from .module import AudioGenXModule
from .resume import ResumePlan, prepare_output, run_identity, write_index
from .signals import StopOnSignal, stop_requests

log = logging.getLogger("lightning_agx")


def explain(model: str | TAGModel, prompts: list[str], output_dir: str | Path | None = None,
            config: ExplainerConfig | None = None, batch_size: int = 8, seed: int = 0,
            duration: float | None = None, trainer: TrainerConfig | None = None,
            logger: LoggerConfig | None = None, figures: bool = True, save_audio: bool = True,
            generation: dict | None = None, overwrite: bool = False) -> list[Explanation]:
    """Explain `prompts` on `model` (a name or a loaded `TAGModel`) with AudioGenX.

    Prompt i is explained with its own seed, ``lightning_agx.seeding.prompt_seed(seed, i)``: its result does
    not depend on the batch size or on the other prompts. With `output_dir`, each explanation is saved as it
    finishes and a rerun resumes exactly (`lightning_agx.resume`): results of another run identity stop the
    run (`overwrite=True` replaces them), finished prompts are verified and kept, ``index.json`` lists this
    run's prompts. SIGINT / SIGTERM stop after saving what finished and raise `RunStopped`. Returns the
    explanations in prompt order (on rank 0 under DDP; other ranks get []).
    """
    prompts = check_prompts(prompts)
    config = config or ExplainerConfig()
    check_batch_size(batch_size)
    check_duration_value(duration)
    trainer_config = trainer or TrainerConfig()
    if not isinstance(model, TAGModel):
        check_text_before_loading(model, prompts)
    if output_dir is not None:
        output_dir = ensure_writable(output_dir)
    tag = model if isinstance(model, TAGModel) else load_model(model, duration=duration)
    check_duration(tag, duration)
    tokens = tag.check_text(prompts)  # fail on bad prompts before any work (length limit, tokenizer)
    identity = run_identity(tag, variant_name(config.objective), config, seed, duration, generation)
    if output_dir is None:
        plan = ResumePlan(new=list(range(len(prompts))))
    else:
        plan = prepare_output(output_dir, identity, prompts, tokens, tag.num_steps(duration),
                              tag.output_shape(duration), overwrite=overwrite)
        log.info(f"lightning_agx: {output_dir}: {plan.summary()}")
    L.seed_everything(seed, workers=True, verbose=False)
    writer = ExplanationWriter(output_dir, figures=figures and output_dir is not None, audio=save_audio)
    with stop_requests() as stop:
        callbacks = [writer, StopOnSignal(stop)]
        if trainer_config.progress_bar:
            callbacks.append(ExplanationProgressBar())
        pl_trainer = _trainer(trainer_config, logger, output_dir, callbacks)
        try:
            if plan.todo and stop.signum is None:
                module = AudioGenXModule(tag, prompts, config, batch_size=batch_size, seed=seed, duration=duration,
                                         todo=plan.todo, keep_audio=save_audio, generation=generation,
                                         identity=identity)
                schedule = StepSchedule(len(plan_chunks(plan.todo, batch_size, pl_trainer.world_size)), config.epochs)
                with warnings.catch_warnings():
                    warnings.filterwarnings("ignore", message=".*module\\(s\\) in eval mode.*")  # the frozen TAG
                    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
                    pl_trainer.fit(module, DataLoader(schedule, batch_size=None, shuffle=False))
        except SystemExit:  # Lightning's SIGTERMException, raised after the step that saw the signal
            if stop.signum is None:
                raise
        finally:
            if output_dir is not None and pl_trainer.global_rank == 0:
                index = write_index(output_dir, prompts)
    if stop.signum is not None:
        saved = sum(e["status"] == "done" for e in index) if output_dir is not None else 0
        where = (f"{saved} of {len(prompts)} prompts are saved in {output_dir}; rerun the same command to resume"
                 if output_dir is not None else "nothing was saved (no output folder)")
        raise RunStopped(stop.signum, f"stopped by {stop.name}: {where}")
    if pl_trainer.global_rank != 0:
        return []
    if output_dir is None:
        return [e for _, e in sorted(writer.kept, key=lambda item: item[0])]
    return [Explanation.load(output_dir / prompt_folder_name(i, p)) for i, p in enumerate(prompts)]


def run_explain(run: RunConfig) -> list[Explanation]:
    """``train.py --config ...`` with task 'explain'."""
    prompts = load_prompts(run.prompts.file, run.prompts.texts)
    check_text_before_loading(run.model.name, prompts)
    return explain(run.model.load(), prompts, output_dir=run.output_dir, config=run.explainer,
                   batch_size=run.prompts.batch_size, seed=run.seed, duration=run.model.duration,
                   trainer=run.trainer, logger=run.logger, figures=run.figures, save_audio=run.save_audio,
                   generation=run.model.generation(), overwrite=run.overwrite)


def _trainer(config: TrainerConfig, logger: LoggerConfig | None, output_dir: Path | None, callbacks) -> L.Trainer:
    strategy = config.strategy
    if strategy == "ddp":
        strategy = DDPStrategy(broadcast_buffers=False,
                               process_group_backend="nccl" if torch.cuda.is_available() else "gloo")
    loggers = []
    if logger is not None and logger.wandb:
        loggers.append(_wandb_logger(logger, output_dir))
    return L.Trainer(max_epochs=1, accelerator=config.accelerator, devices=config.devices,
                     num_nodes=config.num_nodes, strategy=strategy, precision=config.precision,
                     logger=loggers or False, callbacks=callbacks, enable_checkpointing=False,
                     enable_model_summary=False, use_distributed_sampler=False, num_sanity_val_steps=0,
                     log_every_n_steps=1, default_root_dir=str(output_dir or "."),
                     enable_progress_bar=config.progress_bar)


def _wandb_logger(config: LoggerConfig, output_dir: Path | None):
    from lightning.pytorch.loggers import WandbLogger
    if config.offline:
        os.environ.setdefault("WANDB_MODE", "offline")
    save_dir = Path(output_dir or ".") / "wandb_logs"
    save_dir.mkdir(parents=True, exist_ok=True)
    return WandbLogger(project=config.project, name=config.name, save_dir=str(save_dir), offline=config.offline,
                       log_model=False)


__all__ = ["explain", "run_explain"]
