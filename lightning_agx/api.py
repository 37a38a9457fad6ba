"""Python API: ``explain(model, prompts) -> list[Explanation]``, and the run behind ``train.py``."""
from __future__ import annotations

import contextlib
import logging
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import lightning as L

from .callbacks import ExplanationProgressBar, ExplanationWriter
from .errors import RunStopped, UserError
from .explainer import ExplainerConfig
from .explanation import Explanation, prompt_folder_name
from .inputs import check_batch_size, check_duration, check_duration_value, check_prompts, check_seed
from .methods import check_method_options, check_methods, get_method, make_method
from .models import TAGModel, load_model
from .models.registry import check_model_name
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
            generation: dict | None = None, overwrite: bool = False, method: str = "audiogenx",
            method_options: dict | None = None) -> list[Explanation]:
    """Explain `prompts` on `model` (a name or a loaded `TAGModel`) with `method` (AudioGenX by default; any name
    of `lightning_agx.methods`, e.g. ``audiogenx_amortized`` with ``method_options={"refine_steps": 5}``).

    Prompt i is explained with its own seed, ``lightning_agx.seeding.prompt_seed(seed, i)``: its result does
    not depend on the batch size or on the other prompts. With `output_dir`, each explanation is saved as it
    finishes and a rerun resumes exactly (`lightning_agx.resume`): results of another run identity stop the
    run (`overwrite=True` replaces them), finished prompts are verified and kept, ``index.json`` lists this
    run's prompts. SIGINT / SIGTERM stop after saving what finished and raise `RunStopped`. `trainer` and
    `logger` are Lightning ``Trainer`` and ``WandbLogger`` arguments (`lightning_agx.runner`); W&B logs only
    with `wandb`. Returns the explanations in prompt order (on rank 0 under DDP; other ranks get []).
    """
    prompts = check_prompts(prompts, clean=False)  # one result per prompt given, in order (duplicates too)
    if not isinstance(model, TAGModel):
        check_model_name(model)
        check_text_before_loading(model, prompts)
    check_duration_value(duration)
    check_batch_size(batch_size)
    check_seed(seed)
    check_methods([method])
    check_method_options(method, method_options)
    if config is not None and not isinstance(config, ExplainerConfig):
        raise UserError(f"config must be an ExplainerConfig; got {type(config).__name__}")
    output_dir = output_folder(output_dir, create=False)
    tag = model if isinstance(model, TAGModel) else load_model(model, duration=duration)
    settings = ExplainSettings(output_dir, config, batch_size, seed, duration, trainer, logger if wandb else None,
                               figures, save_audio, dict(generation or {}), overwrite, method, method_options)
    return explain_prompts(tag, prompts, settings)


def run_explain(run) -> list[Explanation]:
    """``train.py --config ...`` with task 'explain' (`lightning_agx.config.ExplainRun`)."""
    prompts = run.prompts.load()  # cleaned where they enter
    check_text_before_loading(run.model.name, prompts)
    check_methods([run.method])
    output_dir = output_folder(run.output_dir, create=False)
    section = get_method(run.method).config_section  # the run's section of the method's options, if any
    options = getattr(run, section).options() if section else None
    explanations = explain_prompts(run.model.load(), prompts, ExplainSettings.of_run(run, output_dir, options))
    print(summary(explanations, output_dir, run.figures), file=sys.stderr, flush=True)
    return explanations


def summary(explanations: list[Explanation], output_dir: Path | None, figures: bool = True, top: int = 3) -> str:
    """What a finished run says: how many explanations and where, what to open, the first prompt's top tokens."""
    if not explanations:
        return "lightning_agx: nothing explained on this process"
    first = explanations[0]
    ranked = ", ".join(f"{token} {value:.2f}" for token, value in first.ranking()[:top])
    lines = [f"lightning_agx: {len(explanations)} explanation(s) ({first.method}) in {output_dir}/ "
             f"(index.json lists them)"]
    folder = output_dir / prompt_folder_name(0, first.prompt)
    opened = "heatmap.png (the [T, N] mask under the spectrogram), bars.png, audio.wav" if figures else "audio.wav"
    lines.append(f"  open {folder}/: {opened}; explanation.json holds the importances")
    lines.append(f"  {first.prompt!r}: most important tokens {ranked}")
    return "\n".join(lines)


@dataclass
class ExplainSettings:
    """Everything an explain run is besides its model and prompts, travelling whole from `explain` and
    `train.py` (`of_run`) to `explain_prompts` (`logger`: WandbLogger arguments, None: no W&B)."""

    output_dir: Path | None = None
    config: ExplainerConfig | None = None
    batch_size: int = 8
    seed: int = 0
    duration: float | None = None
    trainer: dict | None = None
    logger: dict | None = None
    figures: bool = True
    save_audio: bool = True
    generation: dict = field(default_factory=dict)
    overwrite: bool = False
    method: str = "audiogenx"
    method_options: dict | None = None

    @classmethod
    def of_run(cls, run, output_dir: Path | None, method_options: dict | None) -> "ExplainSettings":
        """The settings of ``train.py``'s `lightning_agx.config.ExplainRun`."""
        return cls(output_dir, run.explainer, run.prompts.batch_size, run.seed, run.model.duration, run.trainer,
                   run.logger if run.wandb else None, run.figures, run.save_audio, dict(run.model.generation),
                   run.overwrite, run.method, method_options)


def explain_prompts(tag: TAGModel, prompts: list[str], settings: ExplainSettings) -> list[Explanation]:
    """`explain` on a loaded model and cleaned prompts."""
    s = settings
    output_dir, config, batch_size, seed, duration = s.output_dir, s.config, s.batch_size, s.seed, s.duration
    trainer, logger, figures, save_audio, generation = s.trainer, s.logger, s.figures, s.save_audio, s.generation
    overwrite, method, method_options = s.overwrite, s.method, s.method_options
    check_batch_size(batch_size)
    check_seed(seed)
    check_duration(tag, duration)
    tokens = tag.check_text(prompts)  # fail on bad prompts before any work (length limit, tokenizer)
    chosen = make_method(method, method_options, config).prepare(tag)  # a bad checkpoint stops here
    config = chosen.explainer_config(tag)
    identity = run_identity(tag, chosen.record_name, config, seed, duration, generation, chosen.identity(tag))
    if output_dir is None:
        plan = ResumePlan(new=list(range(len(prompts))))
    else:
        plan = prepare_output(output_dir, identity, prompts, tokens, tag.num_steps(duration),
                              tag.output_shape(duration), overwrite=overwrite)
        log.info(f"lightning_agx: {output_dir}: {plan.summary()}")
    L.seed_everything(seed, workers=True, verbose=False)
    writer = ExplanationWriter(output_dir, figures=figures and output_dir is not None, audio=save_audio)
    with stop_requests() as stop, quiet_lightning():
        callbacks = [writer, StopOnSignal(stop)]
        if progress_bar(trainer):
            callbacks.append(ExplanationProgressBar())
        pl_trainer = make_trainer(trainer, None if logger is None else wandb_logger(logger, output_dir), output_dir,
                                  callbacks)
        try:
            if plan.todo and stop.signum is None:
                module = AudioGenXModule(tag, prompts, chosen, batch_size=batch_size, seed=seed, duration=duration,
                                         todo=plan.todo, keep_audio=save_audio, generation=generation,
                                         identity=identity, stop=stop)
                with warnings.catch_warnings():
                    warnings.filterwarnings("ignore", message=".*module\\(s\\) in eval mode.*")  # the frozen TAG
                    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
                    warnings.filterwarnings("ignore", message=".*predict returned None.*")  # saved by the writer
                    if chosen.per_chunk_optimisation:  # per-prompt AudioGenX: its steps are a fit
                        pl_trainer.fit(module)
                    else:  # one pass per chunk
                        pl_trainer.predict(module, return_predictions=False)
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


@contextlib.contextmanager
def quiet_lightning():
    """Lightning's own notices (accelerators found, tips, 'max_epochs reached') kept off the console while a run
    explains: the run says itself what it did (warnings still show)."""
    loggers = [logging.getLogger(n) for n in ("lightning.pytorch", "lightning.fabric", "lightning")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


__all__ = ["ExplainSettings", "explain", "explain_prompts", "run_explain", "summary"]
