"""The run plumbing the API and the evaluation share: the Lightning Trainer, the W&B logger, the output folder.

The ``trainer`` and ``logger`` sections of a run are Lightning's own ``Trainer`` and ``WandbLogger`` arguments,
passed through (and checked against their signatures on the command line, `add_trainer_arguments`), with
our defaults (`TRAINER_DEFAULTS`, `LOGGER_DEFAULTS`: W&B offline) and the arguments an explanation run
fixes itself (`TRAINER_FIXED`: one epoch over the step schedule, no checkpoints, our callbacks and logger).
"""
from __future__ import annotations

import inspect
import os
from pathlib import Path

import lightning as L
import torch

from .errors import UserError
from .inputs import check_writable, ensure_writable

TRAINER_DEFAULTS = {"accelerator": "auto", "devices": 1, "precision": "32-true", "enable_progress_bar": True}
TRAINER_FIXED = ("max_epochs", "logger", "callbacks", "enable_checkpointing", "enable_model_summary",
                 "use_distributed_sampler", "num_sanity_val_steps", "log_every_n_steps", "default_root_dir",
                 "inference_mode")
FIT_DEFAULTS = {"accelerator": "auto", "devices": 1, "precision": "32-true", "enable_progress_bar": True,
                "max_epochs": 20, "log_every_n_steps": 10}  # training an amortised explainer (a real fit)
FIT_FIXED = ("logger", "callbacks", "default_root_dir")
LOGGER_DEFAULTS = {"offline": True, "project": "lightning_agx"}  # W&B stays offline unless asked
LOGGER_FIXED = ("save_dir", "dir", "log_model", "experiment", "checkpoint_name")


def trainer_signature() -> inspect.Signature:
    return inspect.signature(L.Trainer)


def logger_signature() -> inspect.Signature:
    from lightning.pytorch.loggers import WandbLogger
    return inspect.signature(WandbLogger)


def add_trainer_arguments(parser, key: str = "trainer", fit: bool = False) -> None:
    """``--trainer.*``: the Trainer's own arguments (less `TRAINER_FIXED`, or `FIT_FIXED` for a training run),
    defaults `TRAINER_DEFAULTS` (`FIT_DEFAULTS`)."""
    fixed, defaults = (FIT_FIXED, FIT_DEFAULTS) if fit else (TRAINER_FIXED, TRAINER_DEFAULTS)
    parser.add_class_arguments(L.Trainer, key, instantiate=False, skip=set(fixed), fail_untyped=False)
    parser.set_defaults({f"{key}.{k}": v for k, v in defaults.items()})


def add_logger_arguments(parser, key: str = "logger") -> None:
    """``--logger.*``: WandbLogger's own arguments (less `LOGGER_FIXED`), defaults `LOGGER_DEFAULTS`."""
    from lightning.pytorch.loggers import WandbLogger
    parser.add_class_arguments(WandbLogger, key, instantiate=False, skip=set(LOGGER_FIXED), fail_untyped=False)
    parser.set_defaults({f"{key}.{k}": v for k, v in LOGGER_DEFAULTS.items()})


def given(values: dict, signature: inspect.Signature) -> dict:
    """The arguments that differ from the signature's defaults (what a run's section really says); those the
    signature takes through ``**kwargs`` (WandbLogger passes them to ``wandb.init``) when set."""
    params = signature.parameters
    return {k: v for k, v in dict(values).items() if (v != params[k].default if k in params else v is not None)}


def check_arguments(values: dict, signature: inspect.Signature, fixed: tuple, section: str) -> dict:
    """`values` are arguments of `signature` and not ones the run fixes; else a one-line `UserError`."""
    open_ended = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values())
    unknown = [] if open_ended else sorted(k for k in values if k not in signature.parameters)
    if unknown:
        raise UserError(f"{section} has no argument {', '.join(unknown)}; see its documentation for the names")
    taken = sorted(k for k in values if k in fixed)
    if taken:
        raise UserError(f"{section}: {', '.join(taken)} is set by lightning_agx itself; remove it")
    return dict(values)


def make_trainer(trainer: dict | None, logger, output_dir: Path | None, callbacks: list) -> L.Trainer:
    """The Trainer of an explanation run: `TRAINER_DEFAULTS` updated by `trainer` (Lightning's arguments;
    ``strategy: ddp`` splits prompts across devices, buffers not broadcast), plus what the run fixes."""
    args = {**TRAINER_DEFAULTS, **check_arguments(trainer or {}, trainer_signature(), TRAINER_FIXED, "trainer")}
    if args.get("strategy") == "ddp":
        from lightning.pytorch.strategies import DDPStrategy
        args["strategy"] = DDPStrategy(broadcast_buffers=False,
                                       process_group_backend="nccl" if torch.cuda.is_available() else "gloo")
    return L.Trainer(**args, max_epochs=1, logger=[logger] if logger is not None else False, callbacks=callbacks,
                     enable_checkpointing=False, enable_model_summary=False, use_distributed_sampler=False,
                     num_sanity_val_steps=0, log_every_n_steps=1, default_root_dir=str(output_dir or "."),
                     inference_mode=False)  # a one-pass method's predict_step may take gradients (Grad-CAM, AtMan)


def make_fit_trainer(trainer: dict | None, loggers: list, output_dir: Path, callbacks: list) -> L.Trainer:
    """The Trainer of a training run (the amortised explainer): `FIT_DEFAULTS` updated by `trainer`."""
    args = {**FIT_DEFAULTS, **check_arguments(trainer or {}, trainer_signature(), FIT_FIXED, "trainer")}
    return L.Trainer(**args, logger=loggers or False, callbacks=callbacks, default_root_dir=str(output_dir))


def progress_bar(trainer: dict | None) -> bool:
    return bool({**TRAINER_DEFAULTS, **(trainer or {})}["enable_progress_bar"])


def wandb_logger(logger: dict | None, output_dir: Path | None):
    """Lightning's WandbLogger with `LOGGER_DEFAULTS` updated by `logger`, saving under ``output_dir/wandb_logs``."""
    from lightning.pytorch.loggers import WandbLogger
    args = {**LOGGER_DEFAULTS, **check_arguments(logger or {}, logger_signature(), LOGGER_FIXED, "logger")}
    if args.get("offline"):
        os.environ.setdefault("WANDB_MODE", "offline")
        os.environ.setdefault("WANDB_SILENT", "true")  # no "sync this run to the cloud" hint for an offline run
    save_dir = Path(output_dir or ".") / "wandb_logs"
    save_dir.mkdir(parents=True, exist_ok=True)
    return WandbLogger(**args, save_dir=str(save_dir), log_model=False)


def output_folder(path: str | Path | None, create: bool = True) -> Path | None:
    """The run's output folder, checked writable before any heavy work (None: no folder); created now, or with
    `create` False by the run itself once every check has passed (`lightning_agx.resume.claim_folder`)."""
    if path is None:
        return None
    return ensure_writable(path) if create else check_writable(path)
