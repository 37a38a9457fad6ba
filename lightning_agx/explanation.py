"""The result of explaining one prompt: a ``[T, N]`` importance matrix over LM steps and text tokens.

An `Explanation` knows how to aggregate itself over time (Eq. 7), save and load itself, and where its
figures go. On disk, one folder per prompt::

    explanation.json          prompt, tokens, frame rate, method, audio-level vector, metadata (written last)
    explanation.safetensors   mask [T, N], and when kept: codes [K, F], audio [C, samples]
    audio.wav, heatmap.png, bars.png (written by the runner)

A folder is complete only when ``explanation.json`` exists: files are written to a temporary folder that is
renamed into place, so an interrupted run never leaves a folder that a resume would trust.
"""
from __future__ import annotations

import hashlib
import json
import math
import re
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load, save_file

JSON_NAME = "explanation.json"
TENSORS_NAME = "explanation.safetensors"


@dataclass
class Explanation:
    prompt: str
    tokens: list[str]  # N token strings as the text encoder splits the prompt
    mask: torch.Tensor  # [T, N] importance of token n for LM step t, in [0, 1] for AudioGenX
    frame_rate: float  # LM steps per second of audio (step t covers [t / frame_rate, (t + 1) / frame_rate))
    method: str = "audiogenx"
    codes: torch.Tensor | None = None  # [K, F] audio tokens the explanation is about
    audio: torch.Tensor | None = None  # [C, samples] decoded audio
    sample_rate: int | None = None
    metadata: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.mask.dim() != 2 or self.mask.shape[1] != len(self.tokens):
            raise ValueError(f"mask must be [T, N] with N = {len(self.tokens)} tokens; got {tuple(self.mask.shape)}")
        if self.frame_rate <= 0:
            raise ValueError(f"frame_rate must be positive; got {self.frame_rate}")

    # ------------------------------------------------------------------ Eq. 7
    @property
    def num_steps(self) -> int:
        return self.mask.shape[0]

    @property
    def duration(self) -> float:
        return self.num_steps / self.frame_rate

    def audio_level(self) -> torch.Tensor:
        """``[N]`` mean importance of each token over all steps (Eq. 7)."""
        return self.mask.float().mean(0)

    def steps(self, start: float, end: float) -> slice:
        """LM steps overlapping the interval [start, end) seconds."""
        if not 0 <= start < end:
            raise ValueError(f"an interval needs 0 <= start < end seconds; got [{start}, {end})")
        first = int(math.floor(start * self.frame_rate))
        last = min(int(math.ceil(end * self.frame_rate)), self.num_steps)
        if first >= self.num_steps:
            raise ValueError(f"interval starts at {start} s, after the explanation ends ({self.duration:.2f} s)")
        return slice(first, last)

    def interval(self, start: float, end: float) -> torch.Tensor:
        """``[N]`` mean importance of each token over the steps in [start, end) seconds (Eq. 7)."""
        return self.mask[self.steps(start, end)].float().mean(0)

    def ranking(self, start: float | None = None, end: float | None = None) -> list[tuple[str, float]]:
        """Tokens sorted by importance (audio level, or over an interval), most important first."""
        values = self.audio_level() if start is None else self.interval(start, end)
        order = torch.argsort(values, descending=True, stable=True)
        return [(self.tokens[i], float(values[i])) for i in order]

    def summary(self) -> dict:
        return {"prompt": self.prompt, "method": self.method, "tokens": self.tokens,
                "frame_rate": self.frame_rate, "num_steps": self.num_steps, "sample_rate": self.sample_rate,
                "audio_level": [round(float(v), 6) for v in self.audio_level()], "metadata": self.metadata}

    # ------------------------------------------------------------------ disk
    def save(self, folder: str | Path, extras: tuple = ()) -> Path:
        """Write atomically to `folder` (replacing it); returns the folder.

        `extras` are callables ``fn(explanation, tmp_folder)`` that add files (audio, figures) before the JSON
        that marks the folder complete is written.
        """
        folder = Path(folder)
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = folder.parent / f".{folder.name}.{uuid.uuid4().hex[:8]}.tmp"
        tmp.mkdir()
        try:
            self.write_into(tmp, extras)
            if folder.exists():
                shutil.rmtree(folder)
            tmp.rename(folder)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return folder

    def write_into(self, folder: Path, extras: tuple = ()) -> None:
        """Write the tensors, the extras, then the JSON that marks the folder complete (not atomic itself)."""
        tensors = {"mask": self.mask.detach().float().cpu().contiguous()}
        if self.codes is not None:
            tensors["codes"] = self.codes.detach().cpu().contiguous()
        if self.audio is not None:
            tensors["audio"] = self.audio.detach().float().cpu().contiguous()
        save_file(tensors, str(folder / TENSORS_NAME))
        for extra in extras:
            extra(self, folder)
        summary = {**self.summary(), "tensors_sha256": _sha256(folder / TENSORS_NAME)}
        (folder / JSON_NAME).write_text(json.dumps(summary, indent=1))

    @classmethod
    def load(cls, folder: str | Path) -> "Explanation":
        folder = Path(folder)
        if not (folder / JSON_NAME).is_file():
            raise FileNotFoundError(f"{folder} holds no complete explanation ({JSON_NAME} is missing)")
        info = json.loads((folder / JSON_NAME).read_text())
        data = (folder / TENSORS_NAME).read_bytes()  # in memory, not mapped: the file may be rewritten
        expected = info.get("tensors_sha256")  # absent in folders of versions before 0.4.1
        if expected is not None and hashlib.sha256(data).hexdigest() != expected:
            raise ValueError(f"{TENSORS_NAME} does not match the hash in {JSON_NAME} (changed or damaged since it "
                             f"was written) in {folder}")
        tensors = load(data)
        return cls(prompt=info["prompt"], tokens=info["tokens"], mask=tensors["mask"],
                   frame_rate=info["frame_rate"], method=info.get("method", "audiogenx"),
                   codes=tensors.get("codes"), audio=tensors.get("audio"), sample_rate=info.get("sample_rate"),
                   metadata=info.get("metadata", {}))

    @staticmethod
    def content_matches(folder: str | Path) -> bool:
        """Whether a complete folder's tensors file is the one its JSON was written with (by hash)."""
        folder = Path(folder)
        try:
            expected = json.loads((folder / JSON_NAME).read_text()).get("tensors_sha256")
        except (OSError, ValueError, AttributeError):
            return False
        return expected is None or _sha256(folder / TENSORS_NAME) == expected

    @staticmethod
    def is_complete(folder: str | Path) -> bool:
        return (Path(folder) / JSON_NAME).is_file() and (Path(folder) / TENSORS_NAME).is_file()


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def write_audio(explanation: Explanation, folder: Path) -> None:
    """``audio.wav`` (channels averaged) in `folder`, when the explanation keeps its audio (a `save` extra)."""
    if explanation.audio is not None:
        import soundfile
        soundfile.write(folder / "audio.wav", explanation.audio.float().mean(0).numpy(), explanation.sample_rate)


def prompt_folder_name(index: int, prompt: str) -> str:
    """``0007_a_dog_barks`` : stable, sortable, filesystem-safe."""
    slug = re.sub(r"[^a-z0-9]+", "_", prompt.lower()).strip("_")[:60] or "prompt"
    return f"{index:04d}_{slug}"


def load_explanations(folder: str | Path) -> list[Explanation]:
    """The finished explanations of the explain run whose output folder is `folder`, in its prompt order: the
    prompts its ``index.json`` lists as done, each checked (its files' hash, its prompt, the run's identity in
    ``run.json``). Other folders there, stale or not the project's, are not read. A folder that is not a run's,
    or a listed result that fails its check, is a one-line `UserError`."""
    from .errors import UserError
    folder = Path(folder)
    index_path, run_path = folder / "index.json", folder / "run.json"
    if not index_path.is_file() or not run_path.is_file():
        raise UserError(f"{folder} is not the output folder of an explain run (no index.json / run.json); give "
                        "the --output_dir of `python train.py` (task explain)")
    try:
        index, identity = json.loads(index_path.read_text()), json.loads(run_path.read_text())
    except ValueError:
        raise UserError(f"{folder}: index.json or run.json is not valid JSON; rerun the explain run into it "
                        "to rebuild them") from None
    if not isinstance(index, list):
        raise UserError(f"{index_path} is not an explain run's index; rerun the explain run to rebuild it")
    out = []
    for entry in index:
        if not isinstance(entry, dict) or entry.get("status") != "done":
            continue
        path = folder / str(entry.get("folder", ""))
        try:
            explanation = Explanation.load(path)
        except (OSError, ValueError, KeyError) as error:
            raise UserError(f"{path} is listed as done but cannot be read ({str(error)[:100]}); rerun the explain "
                            "run into its folder to redo it") from None
        if explanation.prompt != entry.get("prompt") or explanation.metadata.get("run", identity) != identity:
            raise UserError(f"{path} does not hold the result index.json lists for it; rerun the explain run into "
                            "its folder to redo it")
        out.append(explanation)
    return out


def build_explanations(tag, generation, importance: torch.Tensor, method: str,
                       metadata: dict | list[dict] | None = None, audio: torch.Tensor | None = None) -> list[Explanation]:
    """One `Explanation` per prompt from a method's batch output ``importance [B, T, N]`` (padding dropped).

    The one place explanations are made (the Lightning module, the methods registry, the evaluation and the
    analyses call it). `tag` gives the step and sample rates; `generation` the prompts, tokens, codes and
    seeds; `metadata` is one dict for all prompts or one per prompt (each gets its ``seed`` when known);
    `audio` ``[B, C, samples]`` is kept when given."""
    rows = len(generation.text)
    per_prompt = metadata if isinstance(metadata, list) else [dict(metadata or {}) for _ in range(rows)]
    if len(per_prompt) != rows:
        raise ValueError(f"{len(per_prompt)} metadata dicts for {rows} prompts")
    importance = importance.detach().float().cpu()
    out = []
    for b, tokens in enumerate(generation.text.tokens):
        valid = generation.text.valid[b].cpu()
        info = dict(per_prompt[b])
        if generation.seeds is not None:
            info.setdefault("seed", generation.seeds[b])
        if getattr(tag, "random_weights", False):  # arch: models: the explanation of random weights means nothing
            info["random_weights"] = True
        out.append(Explanation(prompt=generation.text.prompts[b], tokens=list(tokens), mask=importance[b][:, valid],
                               frame_rate=tag.frame_rate, method=method, codes=generation.codes[b].cpu(),
                               audio=None if audio is None else audio[b].cpu(), sample_rate=tag.sample_rate,
                               metadata=info))
    return out
