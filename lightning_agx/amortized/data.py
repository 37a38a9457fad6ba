"""The prompts an amortised explainer trains on, their generations computed once and cached, as a
LightningDataModule.

Prompts: for the embedded ToySounds model, distinct captions of the world's *training* grammar (train) and
*validation* grammar (val): neither ever uses a held-out template or event pair (`toyworld.grammar`); the
validation clips keep their ground truth (sound words, event spans) for the AUC and timing checks. For a real
model, a captions file the user passes (for AudioGen: AudioCaps *training* captions; `exclude` files, e.g.
the 1,000 test and 100 validation captions the paper evaluates on, are removed), split by a hash of each
caption (about 5 % to validation, at most `val_prompts`).

Generations: prompt i of split s is generated once with its own seed (`prompt_seed(seed + offset_s, i)`),
in chunks written atomically under ``cache_dir`` with the identity they depend on (model weights, seed,
duration, sampling, prompts). A rerun (or a resumed fit) reads the finished chunks and generates only the
missing ones; a cache made another way is refused with a one-line error, never reused.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

import lightning as L
import torch
from safetensors.torch import load_file, save_file
from torch.utils.data import DataLoader, Dataset, Sampler

from ..errors import UserError
from ..inputs import check_prompts, read_prompt_file
from ..seeding import prompt_seed
from .settings import DataConfig  # noqa: F401  re-exported

log = logging.getLogger("lightning_agx")
SPLIT_OFFSET = {"train": 0, "val": 7919}  # the validation prompts' seeds are another family than the training ones


def toysounds_prompts(split: str, n: int, seed: int) -> tuple[list[str], list]:
    """`n` distinct captions of the ToySounds `split` ("train" or "val") and, for "val", their clips."""
    from ..toyworld.dataset import make_clip, split_rng
    from ..toyworld.grammar import sample_scene
    rng = split_rng(split, seed)
    prompts, clips = [], []
    for _ in range(200 * n):
        if split == "val":
            clip = make_clip(rng, split)
            caption = clip.caption
        else:
            caption = sample_scene(rng, split).caption
        if caption not in prompts:
            prompts.append(caption)
            if split == "val":
                clips.append(clip)
        if len(prompts) == n:
            return prompts, clips
    raise UserError(f"the ToySounds {split} grammar gave only {len(prompts)} distinct captions, fewer than {n}; "
                    f"ask for fewer (data.{split}_prompts)")


def caption_prompts(config: DataConfig) -> dict[str, list[str]]:
    """Training and validation captions from the user's file, less the excluded files' captions."""
    captions = check_prompts(read_prompt_file(config.captions))
    excluded = {c.strip().lower() for f in config.exclude for c in read_prompt_file(f)}
    kept = [c for c in captions if c.strip().lower() not in excluded]
    if len(kept) < len(captions):
        log.warning(f"lightning_agx: {len(captions) - len(kept)} caption(s) of {config.captions} are in the "
                    "excluded files and are not used")
    val = [c for c in kept if int(hashlib.sha256(c.encode()).hexdigest(), 16) % 20 == 0][:config.val_prompts]
    train = [c for c in kept if c not in set(val)][:config.train_prompts]
    if not train or not val:
        raise UserError(f"{config.captions} gives {len(train)} training and {len(val)} validation captions; "
                        "give at least 20 distinct captions")
    return {"train": train, "val": val}


class GenerationCache:
    """The generations of one split's prompts, computed once in chunks and kept on disk (see the module doc)."""

    def __init__(self, folder: Path, tag, prompts: list[str], seed: int, split: str, duration: float | None,
                 generation: dict, chunk: int):
        self.folder, self.tag, self.prompts, self.chunk = Path(folder) / split, tag, prompts, chunk
        self.seeds = [prompt_seed(seed + SPLIT_OFFSET[split], i) for i in range(len(prompts))]
        self.duration, self.generation = duration, dict(generation)
        self.identity = {"model": tag.name, "weights": tag.weights_hash, "seed": seed, "split": split,
                         "duration": float(duration or tag.duration), "generation": self.generation,
                         "chunk": chunk, "prompts": hashlib.sha256("\n".join(prompts).encode()).hexdigest()}

    def claim(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / "identity.json"
        if path.is_file():
            found = json.loads(path.read_text())
            if found != self.identity:
                diff = sorted(k for k in set(found) | set(self.identity) if found.get(k) != self.identity.get(k))
                raise UserError(f"{self.folder} holds generations made another way ({', '.join(diff)} differ); "
                                "choose another data.cache_dir or delete that folder")
        else:
            path.write_text(json.dumps(self.identity, indent=1))

    def _chunk_path(self, k: int) -> Path:
        return self.folder / f"chunk_{k:05d}.safetensors"

    def build(self) -> torch.Tensor:
        """Codes ``[n, ...]`` of every prompt: finished chunks read, missing ones generated and saved."""
        self.claim()
        parts, made = [], 0
        for k, start in enumerate(range(0, len(self.prompts), self.chunk)):
            path = self._chunk_path(k)
            if not path.is_file():
                index = list(range(start, min(start + self.chunk, len(self.prompts))))
                with torch.no_grad():
                    gen = self.tag.generate([self.prompts[i] for i in index], duration=self.duration,
                                            seed=[self.seeds[i] for i in index], **self.generation)
                tmp = path.with_suffix(".tmp")
                save_file({"codes": gen.codes.cpu().contiguous()}, str(tmp))
                os.replace(tmp, path)
                made += len(index)
            parts.append(load_file(str(path))["codes"])
        if made:
            log.info(f"lightning_agx: generated {made} of {len(self.prompts)} {self.folder.name} prompts "
                     f"({len(self.prompts) - made} from the cache {self.folder})")
        return torch.cat(parts)


class GenerationSet(Dataset):
    """Prompt i: (index, prompt, seed, codes)."""

    def __init__(self, prompts: list[str], seeds: list[int], codes: torch.Tensor):
        self.prompts, self.seeds, self.codes = prompts, seeds, codes

    def __len__(self) -> int:
        return len(self.prompts)

    def __getitem__(self, i: int):
        return i, self.prompts[i], self.seeds[i], self.codes[i]


class EpochShuffle(Sampler):
    """A permutation of the prompts per epoch, drawn from (seed, epoch) alone: a resumed fit sees the orders an
    uninterrupted one would (Lightning calls `set_epoch` before every epoch)."""

    def __init__(self, n: int, seed: int):
        self.n, self.seed, self.epoch = n, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        generator = torch.Generator().manual_seed(int(prompt_seed(self.seed, self.epoch)) >> 1)
        return iter(torch.randperm(self.n, generator=generator).tolist())


def collate(items):
    index, prompts, seeds, codes = zip(*items)
    return list(index), list(prompts), list(seeds), torch.stack(codes)


class AmortizedData(L.LightningDataModule):
    """Training and validation prompts with their cached generations."""

    def __init__(self, tag, config: DataConfig, seed: int, duration: float | None, generation: dict,
                 cache_dir: Path):
        super().__init__()
        self.tag, self.config, self.seed, self.duration = tag, config, seed, duration
        self.generation, self.cache_dir = dict(generation), Path(cache_dir)
        if config.source == "toysounds":
            train, _ = toysounds_prompts("train", config.train_prompts, seed)
            val, self.val_clips = toysounds_prompts("val", config.val_prompts, seed)
            self.prompts = {"train": train, "val": val}
        else:
            self.prompts, self.val_clips = caption_prompts(config), []
        self.sets: dict[str, GenerationSet] = {}

    def check(self) -> None:
        """Every prompt's tokens, before any generation."""
        for prompts in self.prompts.values():
            self.tag.check_text(prompts)

    def setup(self, stage: str) -> None:
        for split, prompts in self.prompts.items():
            if split in self.sets:
                continue
            cache = GenerationCache(self.cache_dir, self.tag, prompts, self.seed, split, self.duration,
                                    self.generation, self.config.chunk)
            self.sets[split] = GenerationSet(prompts, cache.seeds, cache.build())

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.sets["train"], batch_size=self.config.batch_size, collate_fn=collate,
                          sampler=EpochShuffle(len(self.sets["train"]), self.seed))

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.sets["val"], batch_size=self.config.batch_size, shuffle=False, collate_fn=collate)


__all__ = ["AmortizedData", "DataConfig", "GenerationCache", "caption_prompts", "toysounds_prompts"]
