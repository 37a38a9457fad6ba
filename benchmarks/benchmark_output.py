"""What the benchmark scripts share: their command line's checks, their tables and where their numbers are
written. Every script's ``main`` goes through `lightning_agx.door` (``main = entry_point(_main)``, its parser a
`lightning_agx.door.ArgumentParser`): a bad option or value is one line and exit 2, before anything loads."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from lightning_agx.door import whole  # noqa: F401  re-exported: the benchmarks' whole-number type


def existing(kind: str = "folder"):
    """An argparse ``type``: the path of an existing folder (``kind`` "folder") or file ("file")."""
    def parse(text: str) -> Path:
        path = Path(text)
        if not (path.is_dir() if kind == "folder" else path.is_file()):
            raise argparse.ArgumentTypeError(f"{text} is not an existing {kind}")
        return path
    parse.__name__ = f"existing {kind}"
    return parse


def heldout_arguments(parser) -> None:
    """The README's held-out ToySounds prompt set (`toyworld.heldout.heldout_clips`): how many, its seed, batching."""
    parser.add_argument("--prompts", type=whole(1), default=48)
    parser.add_argument("--seed", type=whole(0), default=2024)
    parser.add_argument("--batch-size", type=whole(1), default=8)


def print_table(header: list[str], rows: list[list], align: str = "---:") -> None:
    """A Markdown table on stdout (first column left-aligned)."""
    print("| " + " | ".join(header) + " |")
    print("|---|" + "|".join([align] * (len(header) - 1)) + "|")
    for row in rows:
        print("| " + " | ".join(str(cell) for cell in row) + " |")


def write_result(result: dict, path: str | Path) -> Path:
    """Everything the benchmark measured, as JSON at `path` (folders created)."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(f"\nwritten: {out}")
    return out
