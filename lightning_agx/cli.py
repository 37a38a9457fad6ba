"""The command line: ``train.py --config configs/NAME.yaml [--section.key value ...]`` -> the task's run."""
from __future__ import annotations

import sys

from .config import parse
from .errors import RunStopped, UserError


def main(argv: list[str] | None = None) -> None:
    """Run the task; a user error prints one line and exits 2 (``--debug`` shows its traceback), a stop by
    SIGINT / SIGTERM exits 130 / 143 after saying what was saved."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = any(a in ("--debug", "--debug=true", "--debug=True") for a in argv)
    argv = [a for a in argv if not a.startswith("--debug")]
    console_logging()
    try:
        run = parse(None, argv)
        print(f"lightning_agx: task={run.task} model={run.model.name} output_dir={run.output_dir}", file=sys.stderr)
        run.run()
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


__all__ = ["main"]
