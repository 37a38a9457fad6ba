"""Bad input stops at the door: every check of what a user passes in, before any model is loaded.

Each check raises `lightning_agx.errors.UserError` with one line that says what is wrong and what to do. The
checks that need the model's tokenizer (a prompt's tokens, its length limit) are
`lightning_agx.models.TAGModel.check_text`; for the embedded ToySounds model they run before its weights
are loaded (`lightning_agx.models.text_check.check_text_before_loading`).
"""
from __future__ import annotations

import csv
import math
import os
import uuid
import warnings
from pathlib import Path

from .errors import UserError

PROMPT_COLUMNS = ("caption", "prompt", "text", "description")


def check_prompts(prompts, clean: bool = True) -> list[str]:
    """A list of prompt strings, whitespace normalised. `clean` (the user's input): empty prompts and
    duplicates are dropped with a warning; otherwise (rows that must stay aligned) an empty prompt raises."""
    if isinstance(prompts, str):
        raise UserError("prompts must be a list of strings, not one string; wrap it: [prompt]")
    try:
        prompts = list(prompts)
    except TypeError:
        raise UserError(f"prompts must be a list of strings; got {type(prompts).__name__}") from None
    for i, prompt in enumerate(prompts):
        if not isinstance(prompt, str):
            raise UserError(f"prompt {i} is {type(prompt).__name__}, not str; give every prompt as text")
    if not prompts:
        raise UserError("no prompts given; pass at least one prompt with words")
    if not clean:
        for i, prompt in enumerate(prompts):
            if not prompt.strip():
                raise UserError(f"prompt {i} is empty; every prompt needs at least one word")
        return [" ".join(p.split()) for p in prompts]
    cleaned, seen, empty, duplicates = [], set(), 0, []
    for prompt in prompts:
        prompt = " ".join(prompt.split())
        if not prompt:
            empty += 1
        elif prompt in seen:
            duplicates.append(prompt)
        else:
            seen.add(prompt)
            cleaned.append(prompt)
    if not cleaned:
        raise UserError("no prompts to explain: every prompt given is empty; give at least one prompt with words")
    if empty:
        warnings.warn(f"dropped {empty} empty prompt(s)", stacklevel=2)
    if duplicates:
        shown = ", ".join(repr(d) for d in duplicates[:3]) + (" ..." if len(duplicates) > 3 else "")
        warnings.warn(f"dropped {len(duplicates)} duplicate prompt(s): {shown}", stacklevel=2)
    return cleaned


def load_prompts(file: str | Path | None = None, texts: list[str] | None = None) -> list[str]:
    """Prompts from a text file (one per line, '#' starts a comment line), a CSV file (column caption/prompt/
    text/description) and/or a list, checked by `check_prompts` (order kept)."""
    prompts: list[str] = []
    if file is not None:
        prompts += read_prompt_file(file)
    prompts += list(texts or [])
    if not prompts:
        raise UserError("no prompts given: pass --prompts.file FILE (one prompt per line) or --prompts.texts "
                        "'[\"a dog barks\"]'")
    return check_prompts(prompts)


def read_prompt_file(file: str | Path) -> list[str]:
    path = Path(file)
    if not path.is_file():
        raise UserError(f"prompt file {path} does not exist; give a .txt (one prompt per line) or .csv (a column "
                        f"named one of {', '.join(PROMPT_COLUMNS)})")
    try:
        if path.suffix.lower() == ".csv":
            lines = _read_csv(path)
        else:
            lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise UserError(f"prompt file {path} cannot be read ({type(error).__name__}: {error}); give a UTF-8 "
                        "text or CSV file") from None
    if not any(line.strip() for line in lines):
        raise UserError(f"prompt file {path} is empty; write one prompt per line")
    prompts = [line for line in lines if not line.lstrip().startswith("#")]
    if not any(line.strip() for line in prompts):
        raise UserError(f"prompt file {path} holds only comment lines ('#'); write one prompt per line")
    return prompts


def _read_csv(path: Path) -> list[str]:
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        fields = reader.fieldnames or []
        column = next((c for c in PROMPT_COLUMNS if c in fields), None)
        if column is None:
            raise UserError(f"{path} has columns {fields}; name the prompt column one of {', '.join(PROMPT_COLUMNS)}")
        return [row[column] or "" for row in reader]


def check_batch_size(batch_size) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise UserError(f"batch size must be an integer >= 1 (prompts explained at once); got {batch_size!r}")
    return batch_size


def check_duration_value(duration) -> float | None:
    """A duration in seconds: positive and finite (None: the model's default). The model's own limit is
    checked once it is known (`check_duration`)."""
    if duration is None:
        return None
    if isinstance(duration, bool) or not isinstance(duration, (int, float)) or not 0 < float(duration) < float("inf"):
        raise UserError(f"duration must be a positive number of seconds; got {duration!r}")
    return float(duration)


def check_duration(tag, duration: float | None) -> None:
    """`duration` within what `tag` generates in one pass."""
    if duration is None:
        return
    check_duration_value(duration)
    limit = tag.max_duration
    if limit is not None and duration > limit:
        raise UserError(f"duration {duration} s is longer than the {limit} s {tag.name} generates in one pass; "
                        f"give --model.duration <= {limit}")
    tag.num_steps(duration)  # the model's own lower limit (one frame, a MAGNeT span, a latent frame): one line


MAX_SEED = 2 ** 32 - 1  # numpy's (and Lightning's seed_everything's) range; any prompt seed derives from it


def check_seed(seed, name: str = "seed") -> int:
    """A run's seed: a whole number in [0, 2**32 - 1] (numpy's range; each prompt derives its own from it)."""
    if isinstance(seed, float) and seed.is_integer():
        seed = int(seed)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise UserError(f"{name} must be a whole number from 0 to {MAX_SEED}; got {seed!r}")
    return seed


def check_int(value, name: str, low: int | None = None, high: int | None = None) -> int:
    """`value` an int (not a bool) within [low, high]; else a one-line `UserError` naming `name`."""
    ok = not isinstance(value, bool) and isinstance(value, int)
    if not ok or (low is not None and value < low) or (high is not None and value > high):
        bounds = _bounds(low, high, "")
        raise UserError(f"{name} must be a whole number{bounds}; got {value!r}")
    return value


def check_number(value, name: str, low: float | None = None, high: float | None = None,
                 low_open: bool = False) -> float:
    """`value` a finite real number (not a bool) within [low, high] (low excluded with `low_open`)."""
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value <= high
    if not ok:
        raise UserError(f"{name} must be a finite number{_bounds(low, high, '>' if low_open else '>=')}; got {value!r}")
    return float(value)


def _bounds(low, high, low_sign: str) -> str:
    low_sign = low_sign or ">="
    if low is not None and high is not None:
        return f" {low_sign} {low} and <= {high}"
    if low is not None:
        return f" {low_sign} {low}"
    return f" <= {high}" if high is not None else ""


def check_writable(folder: str | Path) -> Path:
    """`folder` can be this run's output folder: a folder, or a path whose nearest existing parent is a writable
    folder. Nothing is created (the run creates it once every check has passed)."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise UserError(f"output folder {folder} is a file, not a folder; choose a folder with --output_dir")
    existing = next(p for p in [folder, *folder.absolute().parents] if p.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"output folder {folder} cannot be created or written in ({existing} is not a writable "
                        "folder); choose another with --output_dir or fix its permissions")
    return folder


def ensure_writable(folder: str | Path) -> Path:
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{uuid.uuid4().hex[:6]}"
        probe.write_text("ok")
        probe.unlink()
    except OSError as error:
        raise UserError(f"output folder {folder} is not writable ({error.strerror}); choose another with "
                        "--output_dir or fix its permissions") from None
    return folder


__all__ = ["MAX_SEED", "check_batch_size", "check_duration", "check_duration_value", "check_int", "check_number",
           "check_prompts", "check_seed", "check_writable", "ensure_writable", "load_prompts", "read_prompt_file"]
