"""What the benchmark scripts share: their tables and where their numbers are written."""
from __future__ import annotations

import json
from pathlib import Path


def heldout_arguments(parser) -> None:
    """The README's held-out ToySounds prompt set (`toyworld.heldout.heldout_clips`): how many, its seed, batching."""
    parser.add_argument("--prompts", type=int, default=48)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--batch-size", type=int, default=8)


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
