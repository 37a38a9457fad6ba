"""Prompts in, a schedule of optimisation steps out."""
from __future__ import annotations

import csv
import warnings
from pathlib import Path

from torch.utils.data import Dataset

PROMPT_COLUMNS = ("caption", "prompt", "text", "description")


def load_prompts(file: str | Path | None = None, texts: list[str] | None = None) -> list[str]:
    """Prompts from a text file (one per line, '#' starts a comment line), a CSV file (column caption/prompt/text/description) and/or
    a list; empty lines and duplicates are dropped with a warning, order is kept."""
    prompts: list[str] = []
    if file is not None:
        path = Path(file)
        if not path.is_file():
            raise FileNotFoundError(f"prompt file {path} does not exist; give a .txt (one prompt per line) or "
                                    f".csv (a column named one of {', '.join(PROMPT_COLUMNS)})")
        if path.suffix.lower() == ".csv":
            prompts += _read_csv(path)
        else:
            prompts += [line for line in path.read_text().splitlines() if not line.lstrip().startswith("#")]
    prompts += list(texts or [])
    return clean_prompts(prompts)


def clean_prompts(prompts: list[str]) -> list[str]:
    cleaned, seen, empty, duplicates = [], set(), 0, []
    for prompt in prompts:
        prompt = " ".join(str(prompt).split())
        if not prompt:
            empty += 1
        elif prompt in seen:
            duplicates.append(prompt)
        else:
            seen.add(prompt)
            cleaned.append(prompt)
    if empty:
        warnings.warn(f"dropped {empty} empty prompt line(s)", stacklevel=2)
    if duplicates:
        shown = ", ".join(repr(d) for d in duplicates[:3]) + (" ..." if len(duplicates) > 3 else "")
        warnings.warn(f"dropped {len(duplicates)} duplicate prompt(s): {shown}", stacklevel=2)
    if not cleaned:
        raise ValueError("no prompts to explain: give a prompt file or prompts on the command line")
    return cleaned


def _read_csv(path: Path) -> list[str]:
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        fields = reader.fieldnames or []
        column = next((c for c in PROMPT_COLUMNS if c in fields), None)
        if column is None:
            raise ValueError(f"{path} has columns {fields}; name the prompt column one of {', '.join(PROMPT_COLUMNS)}")
        return [row[column] for row in reader]


def plan_chunks(num_prompts: int, chunk_size: int, world_size: int, done: set[int]) -> list[list[list[int]]]:
    """Global chunks of ``chunk_size * world_size`` prompts, each split into one slice per rank.

    Chunk boundaries depend only on the prompt indices, so a resumed run regenerates an interrupted chunk
    exactly as before; a chunk whose prompts are all done is skipped.
    """
    if chunk_size < 1:
        raise ValueError(f"batch size must be >= 1; got {chunk_size}")
    size = chunk_size * world_size
    chunks = []
    for start in range(0, num_prompts, size):
        indices = list(range(start, min(start + size, num_prompts)))
        if all(i in done for i in indices):
            continue
        chunks.append([indices[r * chunk_size:(r + 1) * chunk_size] for r in range(world_size)])
    return chunks


class StepSchedule(Dataset):
    """One item per optimisation step: ``(chunk, epoch)`` for every chunk and epoch, in order."""

    def __init__(self, num_chunks: int, epochs: int):
        self.num_chunks, self.epochs = num_chunks, epochs

    def __len__(self) -> int:
        return self.num_chunks * self.epochs

    def __getitem__(self, index: int) -> tuple[int, int]:
        return divmod(index, self.epochs)
