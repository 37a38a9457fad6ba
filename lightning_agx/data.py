"""Prompts to do in, a schedule of optimisation steps out (prompts are checked in lightning_agx.inputs)."""
from __future__ import annotations

from torch.utils.data import Dataset


def plan_chunks(todo: list[int], chunk_size: int, world_size: int) -> list[list[list[int]]]:
    """The prompt indices still to explain (`todo`, in order), in global chunks of ``chunk_size * world_size``,
    each split into one slice per rank.

    Results do not depend on the batch (lightning_agx.seeding), so the chunks are simply consecutive runs of
    what is left to do: a resumed run never recomputes a finished prompt, even one of an interrupted chunk.
    """
    if chunk_size < 1:
        raise ValueError(f"batch size must be >= 1; got {chunk_size}")
    size = chunk_size * world_size
    chunks = []
    for start in range(0, len(todo), size):
        indices = list(todo[start:start + size])
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
