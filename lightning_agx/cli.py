"""The command line: jsonargparse over `RunConfig`, then the task's runner."""
from __future__ import annotations

import sys
from jsonargparse import ActionConfigFile, ArgumentParser

from .config import RunConfig
from .errors import RunStopped, UserError

TASKS = {
    "explain": "lightning_agx.api:run_explain",
    "evaluate": "lightning_agx.evaluation.run:run_evaluate",
}


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(description="Explain a text-to-audio model with AudioGenX (lightning_agx).",
                            default_config_files=[], exit_on_error=True)
    parser.add_argument("--config", action=ActionConfigFile, help="YAML file with the values that differ from the defaults")
    parser.add_class_arguments(RunConfig, nested_key=None, fail_untyped=True)
    return parser


def parse(argv: list[str] | None = None) -> RunConfig:
    parser = build_parser()
    namespace = parser.parse_args(argv)
    namespace.pop("config", None)
    return _as_run_config(parser.instantiate_classes(namespace).as_dict())


def _as_run_config(values) -> RunConfig:
    from .config import EvaluationConfig, LoggerConfig, ModelConfig, PromptsConfig, TrainerConfig
    from .explainer import ExplainerConfig
    if isinstance(values, RunConfig):
        return values
    sections = {"model": ModelConfig, "prompts": PromptsConfig, "explainer": ExplainerConfig,
                "trainer": TrainerConfig, "logger": LoggerConfig, "evaluation": EvaluationConfig}
    kwargs = {}
    for key, value in values.items():
        cls = sections.get(key)
        kwargs[key] = cls(**value) if cls is not None and isinstance(value, dict) else value
    return RunConfig(**kwargs)


def run_task(run: RunConfig):
    if run.task not in TASKS:
        raise UserError(f"unknown task '{run.task}'; available: {', '.join(sorted(TASKS))}")
    module_name, function = TASKS[run.task].split(":")
    import importlib
    return getattr(importlib.import_module(module_name), function)(run)


def main(argv: list[str] | None = None) -> None:
    """Run the task; a user error prints one line and exits 2 (``--debug`` shows its traceback), a stop by
    SIGINT / SIGTERM exits 130 / 143 after saying what was saved."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = any(a in ("--debug", "--debug=true", "--debug=True") for a in argv)
    argv = [a for a in argv if not a.startswith("--debug")]
    console_logging()
    try:
        run = parse(argv)
        print(f"lightning_agx: task={run.task} model={run.model.name} output_dir={run.output_dir}", file=sys.stderr)
        run_task(run)
    except RunStopped as stop:
        print(f"lightning_agx: {stop}", file=sys.stderr)
        sys.exit(stop.exit_code)
    except UserError as error:
        if debug:
            raise
        print(f"lightning_agx: error: {error} (--debug shows the traceback)", file=sys.stderr)
        sys.exit(2)


def console_logging() -> None:
    """lightning_agx's messages (resume summary, recomputed folders) on stderr, once."""
    import logging
    logger = logging.getLogger("lightning_agx")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


__all__ = ["build_parser", "parse", "main"]
