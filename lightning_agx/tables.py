"""Tables as Markdown and CSV: the one writer of the evaluation's tables, the analyses' and the report's."""
from __future__ import annotations

import csv
from pathlib import Path


def markdown_table(rows: list[dict], columns: list[str] | None = None, digits: int = 4) -> str:
    """Rows of dicts as a Markdown table (floats with `digits` decimals, ``|`` escaped); columns: the first row's."""
    columns = list(columns or rows[0])

    def cell(value) -> str:
        if isinstance(value, float):
            return f"{value:.{digits}f}"
        return str(value).replace("|", "\\|")
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row[c]) for c in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def write_csv(rows: list[dict], path: Path, columns: list[str] | None = None) -> Path:
    """Rows of dicts as CSV at `path` (an empty file for no rows); columns: the first row's."""
    path = Path(path)
    if not rows and columns is None:
        path.write_text("")
        return path
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns or rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path
