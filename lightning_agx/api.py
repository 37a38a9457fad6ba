"""Python API: ``explain(model, prompts) -> list[Explanation]``, and the run behind ``train.py``."""
from __future__ import annotations

import os
import uuid
import warnings
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.strategies import DDPStrategy
from torch.utils.data import DataLoader

from .callbacks import ExplanationProgressBar, ExplanationWriter
from .config import LoggerConfig, RunConfig, TrainerConfig
from .data import StepSchedule, clean_prompts, load_prompts, plan_chunks
from .explainer import ExplainerConfig
from .explanation import Explanation, prompt_folder_name
from .models import AudiocraftTAG, check_prompts, load_model
from .module import AudioGenXModule


def explain(model: str | AudiocraftTAG, prompts: list[str], output_dir: str | Path | None = None,
            config: ExplainerConfig | None = None, batch_size: int = 8, seed: int = 0,
            duration: float | None = None, trainer: TrainerConfig | None = None,
            logger: LoggerConfig | None = None, figures: bool = True, save_audio: bool = True,
            generation: dict | None = None) -> list[Explanation]:
    """Explain `prompts` on `model` (a name or a loaded `AudiocraftTAG`) with AudioGenX.

    With `output_dir`, each explanation is saved as it finishes and a rerun skips prompts already done
    (resume); the explanations are returned in prompt order (on rank 0 under DDP; other ranks get []).
    """
    prompts = check_prompts(clean_prompts(list(prompts)))
    config = config or ExplainerConfig()
    trainer_config = trainer or TrainerConfig()
    if output_dir is not None:
        output_dir = ensure_writable(output_dir)
    tag = model if isinstance(model, AudiocraftTAG) else load_model(model, duration=duration)
    if duration is not None:
        check_duration(tag, duration)
    tag.check_text(prompts)  # fail on bad prompts before any work (length limit, tokenizer)
    done = _done(output_dir, prompts)
    L.seed_everything(seed, workers=True, verbose=False)
    module = AudioGenXModule(tag, prompts, config, batch_size=batch_size, seed=seed, duration=duration,
                             done=done, keep_audio=save_audio, generation=generation)
    writer = ExplanationWriter(output_dir, figures=figures and output_dir is not None, audio=save_audio)
    callbacks = [writer, ExplanationProgressBar()] if trainer_config.progress_bar else [writer]
    pl_trainer = _trainer(trainer_config, logger, output_dir, callbacks)
    world = pl_trainer.world_size
    if len(done) < len(prompts):
        schedule = StepSchedule(len(plan_chunks(len(prompts), batch_size, world, done)), config.epochs)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*module\\(s\\) in eval mode.*")  # the frozen TAG model
            warnings.filterwarnings("ignore", message=".*LeafSpec.*")
            pl_trainer.fit(module, DataLoader(schedule, batch_size=None, shuffle=False))
    if pl_trainer.global_rank != 0:
        return []
    if output_dir is None:
        return [e for _, e in sorted(writer.kept, key=lambda item: item[0])]
    return [Explanation.load(output_dir / prompt_folder_name(i, p)) for i, p in enumerate(prompts)]


def run_explain(run: RunConfig) -> list[Explanation]:
    """``train.py --config ...`` with task 'explain'."""
    prompts = load_prompts(run.prompts.file, run.prompts.texts)
    return explain(run.model.load(), prompts, output_dir=run.output_dir, config=run.explainer,
                   batch_size=run.prompts.batch_size, seed=run.seed, duration=run.model.duration,
                   trainer=run.trainer, logger=run.logger, figures=run.figures, save_audio=run.save_audio,
                   generation=run.model.generation())


def ensure_writable(folder: str | Path) -> Path:
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{uuid.uuid4().hex[:6]}"
        probe.write_text("ok")
        probe.unlink()
    except OSError as error:
        raise PermissionError(f"output folder {folder} is not writable ({error.strerror}); choose another with "
                              "--output_dir or fix its permissions") from error
    return folder


def check_duration(tag: AudiocraftTAG, duration: float) -> None:
    limit = getattr(tag.genmodel, "max_duration", None)
    if duration <= 0 or (limit is not None and duration > limit):
        raise ValueError(f"duration {duration} s is outside (0, {limit}] s, what {tag.name} generates in one pass")


def _done(output_dir: Path | None, prompts: list[str]) -> set[int]:
    if output_dir is None:
        return set()
    return {i for i, p in enumerate(prompts) if Explanation.is_complete(output_dir / prompt_folder_name(i, p))}


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
