"""Python API: ``explain(model, prompts) -> list[Explanation]``, and the run behind ``train.py``."""
from __future__ import annotations

import logging
import warnings
from pathlib import Path

import lightning as L

from .callbacks import ExplanationProgressBar, ExplanationWriter
from .errors import RunStopped
from .explainer import ExplainerConfig
from .explanation import Explanation, prompt_folder_name
from .inputs import check_batch_size, check_duration, check_duration_value, check_prompts
from .methods.audiogenx import variant_name
from .models import TAGModel, load_model
from .models.text_check import check_text_before_loading
from .module import AudioGenXModule
from .resume import ResumePlan, prepare_output, run_identity, write_index
from .runner import make_trainer, output_folder, progress_bar, wandb_logger
from .signals import StopOnSignal, stop_requests

log = logging.getLogger("lightning_agx")


def explain(model: str | TAGModel, prompts: list[str], output_dir: str | Path | None = None,
            config: ExplainerConfig | None = None, batch_size: int = 8, seed: int = 0,
            duration: float | None = None, trainer: dict | None = None, logger: dict | None = None,
            wandb: bool = False, figures: bool = True, save_audio: bool = True,
            generation: dict | None = None, overwrite: bool = False) -> list[Explanation]:
    """Explain `prompts` on `model` (a name or a loaded `TAGModel`) with AudioGenX.

    Prompt i is explained with its own seed, ``lightning_agx.seeding.prompt_seed(seed, i)``: its result does
    not depend on the batch size or on the other prompts. With `output_dir`, each explanation is saved as it
    finishes and a rerun resumes exactly (`lightning_agx.resume`): results of another run identity stop the
    run (`overwrite=True` replaces them), finished prompts are verified and kept, ``index.json`` lists this
    run's prompts. SIGINT / SIGTERM stop after saving what finished and raise `RunStopped`. `trainer` and
    `logger` are Lightning ``Trainer`` and ``WandbLogger`` arguments (`lightning_agx.runner`); W&B logs only
    with `wandb`. Returns the explanations in prompt order (on rank 0 under DDP; other ranks get []).
    """
    prompts = check_prompts(prompts)  # cleaned where they enter
    if not isinstance(model, TAGModel):
        check_text_before_loading(model, prompts)
    check_duration_value(duration)
    check_batch_size(batch_size)
    output_dir = output_folder(output_dir)
    tag = model if isinstance(model, TAGModel) else load_model(model, duration=duration)
    return explain_prompts(tag, prompts, output_dir, config, batch_size, seed, duration, trainer,
                           logger if wandb else None, figures, save_audio, generation, overwrite)


def run_explain(run) -> list[Explanation]:
    """``train.py --config ...`` with task 'explain' (`lightning_agx.config.ExplainRun`)."""
    prompts = run.prompts.load()  # cleaned where they enter
    check_text_before_loading(run.model.name, prompts)
    output_dir = output_folder(run.output_dir)
    return explain_prompts(run.model.load(), prompts, output_dir, run.explainer, run.prompts.batch_size, run.seed,
                           run.model.duration, run.trainer, run.logger if run.wandb else None, run.figures,
                           run.save_audio, run.model.generation(), run.overwrite)


def explain_prompts(tag: TAGModel, prompts: list[str], output_dir: Path | None, config: ExplainerConfig | None,
                    batch_size: int, seed: int, duration: float | None, trainer: dict | None, logger: dict | None,
                    figures: bool, save_audio: bool, generation: dict | None, overwrite: bool) -> list[Explanation]:
    """`explain` on a loaded model and cleaned prompts (`logger`: WandbLogger arguments, None: no W&B)."""
    config = config or ExplainerConfig()
    check_batch_size(batch_size)
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
        if progress_bar(trainer):
            callbacks.append(ExplanationProgressBar())
        pl_trainer = make_trainer(trainer, None if logger is None else wandb_logger(logger, output_dir), output_dir,
                                  callbacks)
        try:
            if plan.todo and stop.signum is None:
                module = AudioGenXModule(tag, prompts, config, batch_size=batch_size, seed=seed, duration=duration,
                                         todo=plan.todo, keep_audio=save_audio, generation=generation,
                                         identity=identity)
                with warnings.catch_warnings():
                    warnings.filterwarnings("ignore", message=".*module\\(s\\) in eval mode.*")  # the frozen TAG
                    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
                    pl_trainer.fit(module)
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


__all__ = ["explain", "explain_prompts", "run_explain"]
