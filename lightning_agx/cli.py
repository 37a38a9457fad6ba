"""The command line: ``train.py --config configs/NAME.yaml [--section.key value ...]`` -> the task's run."""
from __future__ import annotations

import sys

from .config import parse
from .door import entry_point


def _main(argv: list[str]) -> None:
    """Run the task; errors go through `lightning_agx.door` (a user error is one line and exit 2, ``--debug``
    shows its traceback; a stop by SIGINT / SIGTERM exits 130 / 143 after saying what was saved)."""
    console_logging()
    run = parse(None, argv)
    print(f"lightning_agx: task={run.task} model={run.model.name} output_dir={run.output_dir}", file=sys.stderr)
    run.run()


main = entry_point(_main, prog="train.py")


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


__all__ = ["console_logging", "main"]
