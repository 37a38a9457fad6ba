"""What the explorer app does, without the page: explain a prompt, re-aggregate it over an interval (Eq. 7),
refine it with the per-prompt optimisation, edit it (Eq. 15), classify every audio, and save the main job's files.

`Explorer` holds one loaded model, its classifier and its method; every call that runs the model holds the
explorer's lock, so two users' requests run one after the other and never share model state (the page also
queues them, `lightning_agx.app.ui`). A `Result` is one user's explanation: the page keeps it in that user's
session, so results are never mixed between sessions. Bad input raises `UserError` with a one-line message
before any model work; what could be fixed silently (a prompt over the model's token limit, words outside a
closed vocabulary) is done and said in `Result.notices`.

The explanation is the library's own: a prompt explained here with seed s gives the mask and audio of
``lightning_agx.explain(model, [prompt], seed=s, method=...)`` (prompt 0 of a run seeded s, its seed
``prompt_seed(s, 0)``).
"""
from __future__ import annotations

import math
import shutil
import tempfile
import threading
import uuid
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import matplotlib.pyplot as plt
import torch

from ..classifiers.base import module_device
from ..editing import edit_mask, generate_with_masks
from ..errors import UserError
from ..explainer import ExplainerConfig, optimize_masks, perturbation_masks
from ..explanation import Explanation, build_explanations, write_audio
from ..figures import heatmap_figure, save_figures, write_figure
from ..inputs import check_duration, check_seed
from ..methods import check_methods, make_method
from ..models import TAGModel, load_model
from ..models.base import SPECIAL_TOKENS
from ..seeding import prompt_seed

Progress = Callable[[float, str], None]  # fraction done in [0, 1], what is running
EDIT_PRESETS = {"amplify": 0.9, "suppress": 0.1}  # the paper's values for Eq. 15
TOP_LABELS = 5
KEEP = 64  # results' folders kept on disk while serving (the oldest deleted first)


@dataclass
class Audio:
    """A waveform ``[C, samples]`` at `sample_rate` and the classifier's top labels for it (label -> p)."""

    wav: torch.Tensor
    sample_rate: int
    labels: dict[str, float]


@dataclass
class Result:
    """One explained prompt: the explanation (mask, codes, audio), the seed it was generated with, the audio
    with its labels, the factual (A * m) and counterfactual (A * (1 - m)) regenerations, and notices."""

    explanation: Explanation
    seed: int  # the prompt's own seed (prompt_seed(run seed, 0)): generation and every regeneration use it
    run_seed: int
    duration: float
    audio: Audio
    factual: Audio
    counterfactual: Audio
    folder: Path  # this result's files (downloads, figures); deleted once `Explorer.keep` newer ones exist
    notices: list[str] = field(default_factory=list)

    @property
    def tokens(self) -> list[str]:
        return self.explanation.tokens

    @property
    def heatmap(self) -> Path:
        """The mask under the spectrogram (heatmap.png of the downloads)."""
        return self.folder / "explanation" / "heatmap.png"

    def token_choices(self) -> list[str]:
        """One label per token, unique even when a word repeats, in token order when sorted: ``"02 dog"``."""
        return token_labels(self.tokens)

    def audio_level(self) -> dict[str, float]:
        """Eq. 7 over the whole clip: token label -> importance."""
        return dict(zip(self.token_choices(), (round(float(v), 4) for v in self.explanation.audio_level())))


@dataclass
class Edit:
    """An Eq. 15 edit of a `Result`: the edited mask's explanation with the audio regenerated under it."""

    explanation: Explanation
    audio: Audio
    tokens: list[int]
    start: float
    end: float
    value: float
    heatmap: Path


class Explorer:
    """One model, its classifier and its explanation method, shared by every user of the app.

    Every result and every edit writes its files into a folder of its own under `workdir` (a fresh temporary
    folder by default, removed by `close`); only the newest `keep` of these folders stay on disk, so a
    long-serving app holds a bounded amount of it.
    """

    def __init__(self, model: str | TAGModel = "toysounds", method: str | None = None, device: str = "cpu",
                 classifier: str = "auto", workdir: str | Path | None = None,
                 explainer: ExplainerConfig | None = None, keep: int = KEEP):
        if method is not None:
            check_methods([method])  # before the model loads
        if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
            raise UserError(f"keep must be a whole number of results' folders >= 1; got {keep!r}")
        self.tag = model if isinstance(model, TAGModel) else load_model(model, device=device)
        self.method = method or default_method(self.tag)
        self.chosen = make_method(self.method).prepare(self.tag)  # as `explain` runs it; a bad explainer stops here
        # the Refine button's per-prompt optimisation: the model's recommended settings where `explainer` leaves
        # a field unset, as explain(..., method="audiogenx") takes them
        self.explainer = (explainer or ExplainerConfig()).for_model(self.tag)
        self.classifier, self.classifier_notice = _classifier(classifier, self.tag)
        self.workdir = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="lightning_agx_app_"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.keep = keep
        self._folders: deque[Path] = deque()  # results' and edits' folders, oldest first
        self._lock = threading.Lock()

    @property
    def duration(self) -> float:
        return float(self.tag.duration)

    @property
    def max_duration(self) -> float:
        return float(self.tag.max_duration or self.tag.duration)

    @property
    def min_duration(self) -> float:
        """The shortest duration the page offers: two LM steps."""
        return round(2 / self.tag.frame_rate, 4)

    def close(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)

    # ------------------------------------------------------------------ input
    def prepare(self, prompt, seed=0, duration=None) -> tuple[str, int, float, list[str]]:
        """The prompt, seed and duration as the model will take them, and what was changed; a `UserError`
        for what cannot be used."""
        if not isinstance(prompt, str) or not prompt.strip():
            raise UserError("the prompt is empty: describe a sound in words, e.g. 'a dog barks'")
        prompt = " ".join(prompt.split())
        seed = _seed(seed)
        duration = self.duration if duration is None or duration == "" else float(duration)
        if not math.isfinite(duration) or duration <= 0:
            raise UserError(f"the duration must be a positive number of seconds; got {duration}")
        check_duration(self.tag, duration)
        notices = []
        prompt, dropped = self._truncate(prompt)
        if dropped:
            notices.append(f"the prompt is longer than the model's limit of {self.tag.max_text_tokens} text tokens: "
                           f"explained {prompt!r}, dropped {dropped!r}")
        unknown = self.unknown_words(prompt)
        if unknown:
            known = sorted(w for w in self.tag.vocabulary or [] if w not in SPECIAL_TOKENS and w.isalpha())[:12]
            words = [w for w in self.tag.token_strings(prompt) if w not in SPECIAL_TOKENS]
            if len(unknown) == len(set(words)):
                raise UserError(f"no word of the prompt is in the model's vocabulary ({', '.join(unknown)}); "
                                f"use its words, e.g. {', '.join(known)}")
            notices.append(f"words outside the model's vocabulary, read as unknown: {', '.join(unknown)}")
        self.tag.check_text([prompt])  # anything left (only punctuation, say) is a one-line UserError
        return prompt, seed, duration, notices

    def unknown_words(self, prompt: str) -> list[str]:
        """The prompt's words outside the model's closed vocabulary (none for sub-word text encoders)."""
        vocabulary = self.tag.vocabulary
        if vocabulary is None:
            return []
        words = [w for w in self.tag.token_strings(prompt) if w not in SPECIAL_TOKENS]
        return list(dict.fromkeys(w for w in words if w not in vocabulary))

    def _truncate(self, prompt: str) -> tuple[str, str]:
        """The longest prefix of whole words within the model's token limit, and the words dropped."""
        limit = self.tag.max_text_tokens
        words = prompt.split()
        kept = len(words)
        while limit is not None and kept > 1 and len(self.tag.token_strings(" ".join(words[:kept]))) > limit:
            kept -= 1
        return " ".join(words[:kept]), " ".join(words[kept:])

    # ------------------------------------------------------------------ explain
    def explain(self, prompt, seed=0, duration=None, progress: Progress | None = None) -> Result:
        """Generate `prompt` with the prompt seed of run seed `seed`, explain it with the explorer's method,
        and regenerate it factually and counterfactually under the mask (same seed)."""
        prompt, seed, duration, notices = self.prepare(prompt, seed, duration)
        progress = progress or _no_progress
        with self._lock:
            progress(0.0, "generating")
            prompt_s = prompt_seed(seed, 0)
            generation = self.tag.generate([prompt], duration=duration, seed=[prompt_s])
            progress(0.3, f"explaining ({self.method})")
            importance = self.chosen.run(self.tag, generation, generation.seeds)
            return self._result(generation, importance, self.chosen.record_name, seed, duration, notices, progress)

    def refine(self, result: Result, progress: Progress | None = None) -> Result:
        """`result` re-explained by the per-prompt AudioGenX optimisation (``explainer.epochs`` steps, the same
        audio and seed): the mask of ``explain(model, [prompt], seed=..., method="audiogenx")``."""
        progress = progress or _no_progress
        config = self.explainer
        with self._lock:
            generation = self.tag.generation_from_codes([result.explanation.prompt], result.explanation.codes[None],
                                                        [result.seed])
            p = optimize_masks(self.tag, generation, config, generation.seeds,
                               on_step=lambda done, total: progress(0.8 * done / total, f"refining: step {done}/{total}"))
            importance = p * generation.text.valid[:, None, :]
            return self._result(generation, importance, "audiogenx", result.run_seed, result.duration,
                                list(result.notices), progress, start=0.8)

    def _result(self, generation, importance, method, run_seed, duration, notices, progress, start=0.5) -> Result:
        """Decode, regenerate under m and 1 - m (one generate call), classify, and write the result's files."""
        progress(start, "regenerating: factual and counterfactual")
        factual, counterfactual = perturbation_masks(importance, generation.text.valid)
        masks = torch.cat([factual, counterfactual])
        seed = generation.seeds[0]
        prompt = generation.text.prompts[0]
        waves = generate_with_masks(self.tag, [prompt, prompt], masks, [seed, seed], duration=duration)
        wav = self.tag.decode(generation.codes).cpu()
        explanation = build_explanations(self.tag, generation, importance, method,
                                         {"run_seed": run_seed, "model": self.tag.name}, audio=wav)[0]
        folder = self._new_folder()
        progress(start + 0.4 * (1 - start), "classifying and drawing")
        with _figures_closed():
            explanation.save(folder / "explanation", extras=(write_audio, save_figures))
        rate = self.tag.sample_rate
        return Result(explanation, seed, run_seed, duration, Audio(wav[0], rate, self.labels(wav[0])),
                      Audio(waves[0], rate, self.labels(waves[0])), Audio(waves[1], rate, self.labels(waves[1])),
                      folder, notices + ([self.classifier_notice] if self.classifier_notice else []))

    # ------------------------------------------------------------------ intervals (Eq. 7)
    def interval(self, result: Result, start, end) -> dict[str, float]:
        """Token label -> mean importance over the steps of [start, end) seconds (no model work)."""
        start, end = check_interval(start, end, result.explanation.duration)
        values = result.explanation.interval(start, end)
        return dict(zip(result.token_choices(), (round(float(v), 4) for v in values)))

    # ------------------------------------------------------------------ editing (Eq. 15)
    def edit(self, result: Result, tokens: list[int | str], start, end, value) -> Edit:
        """Set the mask of `tokens` (indices or ``"02 word"`` labels) over [start, end) s to `value` and
        regenerate with the result's seed."""
        explanation = result.explanation
        indices = _token_indices(tokens, explanation.tokens)
        start, end = check_interval(start, end, explanation.duration)
        value = _edit_value(value)
        mask = edit_mask(explanation, indices, start, end, value)
        with self._lock:
            text = self.tag.encode_text([explanation.prompt])
            full = torch.ones(1, mask.shape[0], text.valid.shape[1])
            full[0][:, text.valid[0].cpu()] = mask
            wav = generate_with_masks(self.tag, [explanation.prompt], full, [result.seed], duration=result.duration)
            edited = Explanation(explanation.prompt, explanation.tokens, mask, explanation.frame_rate,
                                 method=f"{explanation.method} edited (Eq. 15)", audio=wav[0],
                                 sample_rate=explanation.sample_rate,
                                 metadata={"edit": {"tokens": indices, "start": start, "end": end, "value": value}})
            heatmap = self._new_folder() / "heatmap.png"
            with _figures_closed():
                write_figure(heatmap_figure, edited, heatmap, dpi=100)
        return Edit(edited, Audio(wav[0], self.tag.sample_rate, self.labels(wav[0])), indices, start, end, value,
                    heatmap)

    # ------------------------------------------------------------------ classifier and files
    def _new_folder(self) -> Path:
        """A fresh folder for one result's (or edit's) files, the oldest deleted beyond `keep` of them."""
        folder = self.workdir / uuid.uuid4().hex[:12]
        folder.mkdir()
        self._folders.append(folder)
        while len(self._folders) > self.keep:
            shutil.rmtree(self._folders.popleft(), ignore_errors=True)
        return folder

    @torch.no_grad()
    def labels(self, wav: torch.Tensor, top: int = TOP_LABELS) -> dict[str, float]:
        """The classifier's top labels of ``[C, samples]`` audio with their probabilities (sigmoid: the
        classifiers are multi-label, AudioSet-style); {} without a classifier."""
        if self.classifier is None:
            return {}
        mono = wav.float().mean(0, keepdim=True)
        mono = mono.to(module_device(self.classifier, mono.device))
        probs = torch.sigmoid(self.classifier.logits(mono, self.tag.sample_rate))[0]
        order = torch.argsort(probs.cpu(), descending=True)[:top]
        return {self.classifier.labels[i]: round(float(probs[i]), 4) for i in order}

    def downloads(self, result: Result) -> list[Path]:
        """The files the main job writes for a prompt: explanation.json, explanation.safetensors, audio.wav,
        heatmap.png, bars.png."""
        folder = result.folder / "explanation"
        return sorted(p for p in folder.iterdir() if p.is_file())


# ---------------------------------------------------------------------------------------------- helpers
def default_method(tag: TAGModel) -> str:
    """The amortised explainer where the model has one (one forward per prompt), else per-prompt AudioGenX."""
    from ..amortized.store import AmortizedCheckpointError
    from ..methods.audiogenx_amortized import amortized_explainer
    try:
        amortized_explainer(tag)
    except AmortizedCheckpointError:
        return "audiogenx"
    return "audiogenx_amortized"


def check_interval(start, end, duration: float) -> tuple[float, float]:
    """[start, end) seconds inside a clip of `duration` seconds, end after start; a `UserError` otherwise."""
    try:
        start, end = float(start), float(end)
    except (TypeError, ValueError):
        raise UserError(f"the interval needs numbers of seconds; got start={start!r}, end={end!r}") from None
    if not (math.isfinite(start) and math.isfinite(end)):
        raise UserError(f"the interval needs finite seconds; got [{start}, {end})")
    if start < 0 or start >= duration:
        raise UserError(f"the interval starts at {start:g} s, outside the clip (0 to {duration:g} s): start inside it")
    if end <= start:
        raise UserError(f"the interval ends at {end:g} s, not after its start ({start:g} s): set end after start")
    if end > duration + 1e-6:
        raise UserError(f"the interval ends at {end:g} s, after the clip's end ({duration:g} s): end inside it")
    return start, end


def token_labels(tokens: list[str]) -> list[str]:
    """``"00 a", "01 dog", ...``: unique per position, sorted as the tokens are."""
    return [f"{i:02d} {t}" for i, t in enumerate(tokens)]


def _edit_value(value) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise UserError(f"the edit value must be a number (0.9 amplifies, 0.1 suppresses); got {value!r}") from None
    if not math.isfinite(value) or value < 0:
        raise UserError(f"the edit value must be a finite number >= 0 (0.9 amplifies, 0.1 suppresses, above 1 "
                        f"strengthens further); got {value}")
    return value


def _token_indices(tokens, names: list[str]) -> list[int]:
    if not tokens:
        raise UserError("choose at least one token to edit")
    out = []
    for token in tokens:
        try:
            index = int(str(token).split()[0]) if isinstance(token, str) else int(token)
        except (ValueError, IndexError):
            raise UserError(f"token {token!r} is not a token of this prompt; choose among {token_labels(names)}") from None
        word = str(token).split(None, 1)[1] if isinstance(token, str) and len(str(token).split()) > 1 else None
        if not 0 <= index < len(names) or (word is not None and word != names[index]):
            raise UserError(f"token {token!r} is not a token of this prompt; choose among {token_labels(names)}")
        out.append(index)
    return sorted(set(out))


def _seed(seed) -> int:
    """The run seed as `lightning_agx.explain` takes it (`check_seed`: a whole number from 0 to 2**32 - 1), never
    rounded: 1.5 (or "1.5") is an error, not 2; whole floats (3.0, as the page's number box sends them) and
    their text are taken."""
    if seed is None or seed == "":
        return 0
    if isinstance(seed, str):
        text = seed.strip()
        try:
            seed = int(text)
        except ValueError:
            try:
                seed = float(text)
            except ValueError:
                seed = text
    return check_seed(seed, "the seed")


@contextmanager
def _figures_closed():
    """Around drawing with `lightning_agx.figures` (under the explorer's lock): a figure a failed drawing left
    open is closed, so no failure holds a canvas's memory."""
    opened = set(plt.get_fignums())
    try:
        yield
    finally:
        for number in set(plt.get_fignums()) - opened:
            plt.close(number)


def _classifier(name: str, tag: TAGModel):
    """The model's classifier (ToySounds for the embedded model, PaSST for real ones), or None with a notice
    when it cannot be loaded (PaSST's weights offline): the app then shows audio without labels."""
    from ..classifiers import load_classifier
    try:
        return load_classifier(name, tag.device, model_name=tag.name), None
    except Exception as error:  # noqa: BLE001  any failure to load leaves the app usable without labels
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        return None, f"no classifier labels: the classifier could not be loaded ({first[:160]})"


def _no_progress(fraction: float, description: str) -> None:
    return None


__all__ = ["Audio", "EDIT_PRESETS", "Edit", "Explorer", "Result", "check_interval", "default_method"]
