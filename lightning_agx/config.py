"""Run configuration: one system for `train.py`, the evaluation and the analyses.

Each task is a dataclass (`ExplainRun`, `EvaluateRun`; the analyses subclass `ExplainRun`'s sections too):
defaults here, a YAML file says what differs, the command line overrides both, and `parse` (jsonargparse)
builds the nested dataclasses. ``task`` in the YAML (or ``--task``) picks the dataclass from `TASKS`. The
``trainer`` and ``logger`` sections are not re-declared: they are Lightning's ``Trainer`` and
``WandbLogger`` arguments, checked against their signatures (`lightning_agx.runner`).
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field, fields
from typing import ClassVar

from .amortized.settings import DataConfig, NetworkConfig
from .errors import UserError
from .explainer import ExplainerConfig
from .methods.audiogenx_amortized import AmortizedOptions
from .inputs import check_batch_size, check_duration_value, check_int, check_seed, load_prompts
from .performance import Performance


@dataclass
class ModelConfig:
    name: str = "toysounds"  # toysounds | toysounds-diffusion | debug | arch:audiogen-medium | facebook/... | folder
    duration: float | None = None  # seconds of audio to generate; None: the model's default
    device: str = "auto"  # where the model is loaded before Lightning moves it (auto: cuda when present)
    # sampling settings of the generated audio, the model's own keys (`TAGModel.sampling_keys`): an audiocraft LM's
    # top_k, top_p, temp, cfg_coef (AudioGen: 250, 0, 1, 3: the paper's), a diffusion model's guidance_scale and
    # num_inference_steps, MAGNeT's ...; {}: the model's own values. --model.generation.KEY VALUE sets one.
    generation: dict = field(default_factory=dict)
    # speed/memory options of the teacher-forced passes (lightning_agx.performance; None each: bf16 + TF32 on
    # CUDA, checkpointing on CUDA for long passes, compile off; all off on CPU)
    performance: Performance = field(default_factory=Performance)

    def __post_init__(self) -> None:
        from .models.registry import check_model_name, sampling_keys_of
        check_model_name(self.name)
        check_duration_value(self.duration)
        if not isinstance(self.device, str) or not self.device:
            raise UserError(f"model.device must be auto, cpu, cuda or cuda:N; got {self.device!r}")
        if not isinstance(self.generation, dict):
            raise UserError(f"model.generation must map sampling settings to values, e.g. {{top_k: 250}}; got "
                            f"{self.generation!r}")
        self.generation = {str(k): _plain_value(v) for k, v in self.generation.items()}
        keys = sampling_keys_of(self.name)  # None: known once the model is loaded (a local folder)
        unknown = sorted(k for k in self.generation if keys is not None and k not in keys)
        if unknown:
            raise UserError(f"model {self.name} has no sampling setting {', '.join(unknown)}; its settings: "
                            f"{', '.join(keys)}")

    def load(self):
        """The TAG model this section names, on its device (auto: cuda when present), frozen."""
        import torch

        from .models import load_model
        device = self.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        tag = load_model(self.name, device=device, duration=self.duration, performance=self.performance)
        tag.check_sampling(self.generation)
        return tag


def _plain_value(value):
    """A sampling value from the command line (``--model.generation.top_k 5`` gives the string '5'): as YAML reads
    it (5, 0.9, true, [8, 4]); other values as they are."""
    if isinstance(value, str):
        import yaml
        try:
            return yaml.safe_load(value)
        except yaml.YAMLError:
            return value
    return value


@dataclass
class PromptsConfig:
    file: str | None = None  # .txt (one prompt per line) or .csv (caption/prompt/text/description column)
    texts: list[str] = field(default_factory=list)  # prompts given on the command line
    batch_size: int = 8  # prompts explained at once per device (results do not depend on it)

    def __post_init__(self) -> None:
        check_batch_size(self.batch_size)

    @property
    def given(self) -> bool:
        return bool(self.file or self.texts)

    def load(self) -> list[str]:
        """The prompts, cleaned once here where they enter (duplicates and empty lines dropped, with a warning)."""
        return load_prompts(self.file, self.texts)


@dataclass
class EvaluationConfig:
    """The faithfulness evaluation (task 'evaluate', lightning_agx/evaluation): the paper's Eq. 8-12."""

    methods: list[str] = field(default_factory=lambda: [
        "audiogenx", "audiogenx_factual", "audiogenx_counterfactual", "audiogenx_amortized", "random", "gradcam_a",
        "gradcam_e", "atman", "chefer", "attention"])
    # per row, keyword options (e.g. atman: {chunk: 64}); a row of its own names its method, e.g.
    # refine5: {method: audiogenx_amortized, refine_steps: 5}
    method_options: dict = field(default_factory=dict)
    classifier: str = "toysounds"  # toysounds | passt | debug | auto
    heldout_prompts: int = 40  # with no prompt file/texts and the toysounds model: this many held-out prompts
    repeats: int = 3  # factual and counterfactual generations per prompt and method
    ori_repeats: int = 5  # unmasked regenerations for the "Ori" lower bound
    kl_direction: str = "authors"  # authors: KL(p(x') || p(x)); forward: KL(p(x) || p(x'))

    def __post_init__(self) -> None:
        from .methods import check_method_options, check_methods
        if not isinstance(self.method_options, dict):
            raise UserError("evaluation.method_options must map row names to their options, e.g. "
                            "{atman: {chunk: 64}}")
        if isinstance(self.methods, str) or not self.methods:
            check_methods(self.methods)  # the one-line error naming the methods
        for label in self.methods:
            options = self.method_options.get(label, {})
            if not isinstance(options, dict):
                raise UserError(f"evaluation.method_options.{label} must be a mapping of options")
            options = dict(options)
            check_method_options(options.pop("method", label), options)  # a row's method: its label, or `method`
        unused = sorted(set(self.method_options) - set(self.methods))
        if unused:
            raise UserError(f"evaluation.method_options names {', '.join(unused)}, not in evaluation.methods; "
                            "add them to the methods or remove their options")
        from .classifiers.registry import CLASSIFIERS
        if self.classifier not in CLASSIFIERS:
            raise UserError(f"unknown classifier {self.classifier!r}; available: {', '.join(CLASSIFIERS)}")
        check_int(self.heldout_prompts, "evaluation.heldout_prompts", low=1)
        check_int(self.repeats, "evaluation.repeats", low=1)
        check_int(self.ori_repeats, "evaluation.ori_repeats", low=1)
        if self.kl_direction not in ("authors", "forward"):
            raise UserError(f"evaluation.kl_direction must be authors or forward; got {self.kl_direction!r}")


@dataclass
class AmortizedConfig(AmortizedOptions):
    """The ``amortized`` section of a run: the ``audiogenx_amortized`` method's options (`AmortizedOptions`:
    which trained explainer, how many per-prompt refinement steps), checked where the method declares them."""

    def options(self) -> dict:
        return {"checkpoint": self.checkpoint, "refine_steps": self.refine_steps, "refine_lr": self.refine_lr}


@dataclass
class ExplainRun:
    """Task 'explain' (the main job): explain the prompts (AudioGenX by default), save each result as it finishes."""

    task: str = "explain"
    seed: int = 0  # the run's seed; prompt i gets its own seed from it and i (lightning_agx.seeding)
    output_dir: str = "outputs/explain"
    overwrite: bool = False  # replace results of another run identity in output_dir (else the run stops)
    figures: bool = True  # heatmap.png and bars.png next to each explanation
    save_audio: bool = True  # audio.wav and the waveform in the safetensors file
    wandb: bool = True  # log to W&B (offline unless logger.offline is false)
    method: str = "audiogenx"  # any name of lightning_agx.methods (audiogenx_amortized: one forward per prompt)
    model: ModelConfig = field(default_factory=ModelConfig)
    prompts: PromptsConfig = field(default_factory=PromptsConfig)
    explainer: ExplainerConfig = field(default_factory=ExplainerConfig)
    amortized: AmortizedConfig = field(default_factory=AmortizedConfig)
    trainer: dict = field(default_factory=dict)  # lightning.Trainer arguments (lightning_agx.runner.TRAINER_DEFAULTS)
    logger: dict = field(default_factory=dict)  # WandbLogger arguments (lightning_agx.runner.LOGGER_DEFAULTS)

    def __post_init__(self) -> None:
        from .methods import check_method_options, get_method
        check_seed(self.seed)
        check_output_dir(self.output_dir)
        section = get_method(self.method).config_section  # the section holding the method's options, if any
        if section:
            check_method_options(self.method, getattr(self, section).options())

    def run(self):
        from .api import run_explain
        return run_explain(self)


@dataclass
class EvaluateRun(ExplainRun):
    """Task 'evaluate': the paper's Table 1 and 2 for every method (lightning_agx.evaluation)."""

    task: str = "evaluate"
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)

    def run(self):
        from .evaluation.run import run_evaluate
        return run_evaluate(self)


@dataclass
class AmortizedTrainRun:
    """Task 'train_amortized': train the amortised AudioGenX explainer across prompts (a Lightning fit)."""

    fit: ClassVar[bool] = True  # the trainer section is a training run's (epochs, checkpoints)
    task: str = "train_amortized"
    seed: int = 0
    output_dir: str = "outputs/amortized"
    ckpt_path: str | None = None  # resume from this checkpoint (e.g. <output_dir>/checkpoints/last.ckpt)
    export: str | None = None  # where the trained explainer is written (default <output_dir>/amortized.safetensors)
    wandb: bool = True
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    network: NetworkConfig = field(default_factory=NetworkConfig)
    explainer: ExplainerConfig = field(default_factory=ExplainerConfig)  # the objective: tau, hard, beta, gamma
    trainer: dict = field(default_factory=dict)  # lightning.Trainer arguments (lightning_agx.runner.FIT_DEFAULTS)
    logger: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_seed(self.seed)
        check_output_dir(self.output_dir)

    def run(self):
        from .amortized.training import run_train_amortized
        return run_train_amortized(self)


def check_output_dir(path) -> str:
    """An output folder's path: a non-empty string naming no existing file (it is created at the run's start,
    after every check has passed)."""
    from pathlib import Path
    if not isinstance(path, str) or not path.strip():
        raise UserError(f"output_dir must be a folder path; got {path!r}")
    if Path(path).exists() and not Path(path).is_dir():
        raise UserError(f"output_dir {path} is a file, not a folder; choose a folder with --output_dir")
    return path


TASKS = {"explain": ExplainRun, "evaluate": EvaluateRun, "train_amortized": AmortizedTrainRun}


# ---------------------------------------------------------------------------------------------- parsing
def build_parser(cls, description: str | None = None):
    """jsonargparse over dataclass `cls` (``--config file.yaml`` plus ``--a.b value`` overrides); its ``trainer``
    and ``logger`` fields, when it has them, take Lightning's Trainer and WandbLogger arguments."""
    from jsonargparse import ActionConfigFile, ArgumentParser

    from . import runner
    names = {f.name for f in fields(cls)}
    passed = {"trainer", "logger"} & names
    parser = ArgumentParser(description=description or cls.__doc__, default_config_files=[], exit_on_error=False)
    parser.add_argument("--config", action=ActionConfigFile, help="YAML file with the values that differ from the defaults")
    parser.add_class_arguments(cls, nested_key=None, fail_untyped=True, skip=passed)
    if "trainer" in passed:
        runner.add_trainer_arguments(parser, "trainer", fit=getattr(cls, "fit", False))
    if "logger" in passed:
        runner.add_logger_arguments(parser, "logger")
    return parser


def parse(cls=None, argv: list[str] | None = None, description: str | None = None):
    """The run dataclass from the command line: `cls`, or for `train.py` (None) the task's class in `TASKS`."""
    from . import runner
    argv = list(sys.argv[1:] if argv is None else argv)
    if cls is None:
        cls = TASKS.get(_task(argv))
        if cls is None:
            raise UserError(f"unknown task '{_task(argv)}'; available: {', '.join(sorted(TASKS))}")
    for path in config_files(argv):  # a missing, unreadable or non-mapping YAML file: one line, before parsing
        check_sections(cls, read_config_file(path), path)
    parser = build_parser(cls, description)
    namespace = parser.parse_args(argv)
    namespace.pop("config", None)
    values = parser.instantiate(namespace).as_dict()
    if "trainer" in values:
        values["trainer"] = runner.given(values["trainer"], runner.trainer_signature())
    if "logger" in values:
        values["logger"] = runner.given(values["logger"], runner.logger_signature())
    return cls(**{f.name: values[f.name] for f in fields(cls) if f.name in values})


def config_files(argv: list[str]) -> list[str]:
    """The ``--config`` files of a command line, in order."""
    out = []
    for i, arg in enumerate(argv):
        if arg == "--config" and i + 1 < len(argv):
            out.append(argv[i + 1])
        elif arg.startswith("--config="):
            out.append(arg.split("=", 1)[1])
    return out


def read_config_file(path: str) -> dict:
    """A run's YAML file as a mapping; a missing or unreadable file, broken YAML or YAML that is not a mapping
    of option names to values is a one-line `UserError`."""
    import yaml
    try:
        with open(path, encoding="utf-8") as handle:
            values = yaml.safe_load(handle)
    except OSError as error:
        raise UserError(f"config file {path} cannot be read ({error.strerror or error}); give a YAML file with "
                        "--config") from None
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        where = getattr(error, "problem_mark", None)
        line = f" (line {where.line + 1})" if where is not None else ""
        raise UserError(f"config file {path} is not valid YAML{line}; fix its syntax") from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise UserError(f"config file {path} holds a {type(values).__name__}, not a mapping of options; write "
                        "'key: value' lines, e.g. 'task: explain'")
    if "task" in values and not isinstance(values["task"], str):
        raise UserError(f"config file {path}: task must be one of {', '.join(sorted(TASKS))}; got {values['task']!r}")
    return values


def check_sections(cls, values: dict, path: str, prefix: str = "") -> None:
    """Each section of `cls` (a nested dataclass, or the trainer / logger mapping) that `values` sets is a mapping."""
    import dataclasses
    for f in fields(cls):
        if f.name not in values or values[f.name] is None:
            continue
        section = f.default_factory if f.default_factory is not dataclasses.MISSING else None
        nested = isinstance(section, type) and dataclasses.is_dataclass(section)
        if (nested or section is dict) and not isinstance(values[f.name], dict):
            raise UserError(f"config file {path}: {prefix}{f.name} must be a section of 'key: value' lines; got "
                            f"{values[f.name]!r}")
        if nested:
            check_sections(section, values[f.name], path, f"{prefix}{f.name}.")


def _task(argv: list[str]) -> str:
    """The ``task`` of a command line: ``--task X`` / ``--task=X``, else the last ``--config`` file that sets it."""
    task = "explain"
    for path in config_files(argv):
        task = read_config_file(path).get("task", task)
    for i, arg in enumerate(argv):
        if arg == "--task" and i + 1 < len(argv):
            task = argv[i + 1]
        elif arg.startswith("--task="):
            task = arg.split("=", 1)[1]
    return task
