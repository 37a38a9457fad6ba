"""Resume that is exact: a run's identity, results verified before they are reused, stale files removed.

An output folder holds the results of ONE run identity (``run.json``): the model and its weights' hash, the
method, the explainer settings, the seed, the duration and the sampling settings, and the results format.
Every explanation stores the same identity in its metadata. A rerun into the folder

- touches only what the project wrote there (`lightning_agx.ownership`: a manifest lists it); a folder of the
  run's names that somebody else made stops the run, and is never deleted or read;
- with another identity stops before any work, naming the differences (``overwrite=True`` replaces the old
  results, removing only what the project wrote; or choose another folder);
- reuses a prompt's folder only when it loads and matches: its files' content hash, the same prompt, its
  tokens, a ``[T, N]`` mask of the run's T steps and N tokens, finite values, codes of the run's shape, the
  run's identity; anything else is removed and recomputed, with a message naming the folder;
- never recomputes a finished prompt: results do not depend on the batch (`lightning_agx.seeding`), so
  only what is missing is explained, whatever chunk it was in;
- removes the ``.<name>.<hex>.tmp`` folders an interrupted save left behind.

The batch size, the device count and the output options (figures, audio) are not part of the identity.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from . import ownership
from .errors import UserError
from .explanation import JSON_NAME, Explanation, prompt_folder_name
from .ownership import RUN_FILES

RUN_FILE = "run.json"
INDEX_FILE = "index.json"
RESULTS_FORMAT = 2  # 2: per-prompt seeds and random streams, padding keys masked (1: chunk-seeded, before 0.2)

log = logging.getLogger("lightning_agx")


def run_identity(tag, method: str | None, explainer, seed: int, duration: float | None, generation: dict | None,
                 options: dict | None = None, **task) -> dict:
    """What the results of a run depend on, besides the prompts (JSON-ready): the one identity of every task.
    `options`: the method's (e.g. the amortised explainer's checkpoint and its weights' hash), recorded when there
    are any; `method` None for a task of many methods (the evaluation); `task`: what else the task's results
    depend on (the evaluation's classifier, repeats, ...). The sampling settings are the model's effective ones
    (its defaults updated by `generation`), by the model's own keys."""
    params = {**tag.generation_params, **(generation or {})}
    identity = {"results_format": RESULTS_FORMAT, "model": tag.name, "weights": tag.weights_hash, "method": method,
                "explainer": asdict(explainer), "seed": int(seed), "duration": float(duration or tag.duration),
                "generation": {k: params[k] for k in tag.sampling_keys if k in params}}  # the model's own keys
    if method is None:
        del identity["method"]
    identity.update(json.loads(json.dumps(task, default=str)))
    if options:
        identity["method_options"] = json.loads(json.dumps(options, default=str))
    numerics = _numerics(tag)
    if numerics:  # only when a speed option changes the numbers (bf16, TF32, compile): CPU identities unchanged
        identity["numerics"] = numerics
    return identity


def _numerics(tag) -> dict:
    """The speed options that change a result's numbers, as applied on the model's device (activation
    checkpointing is exact and left out)."""
    from .performance import model_performance
    resolved = model_performance(tag, tag.device)
    out = {"autocast": None if resolved.autocast is None else str(resolved.autocast).removeprefix("torch."),
           "tf32": resolved.tf32, "compile": resolved.compile}
    return {} if out == {"autocast": None, "tf32": False, "compile": "off"} else out


def differences(old: dict, new: dict, prefix: str = "") -> list[str]:
    """``key: old -> new`` for every leaf that differs (nested dicts as dotted keys)."""
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key, "<absent>"), new.get(key, "<absent>")
        if isinstance(a, dict) and isinstance(b, dict):
            out += differences(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}: {_short(a)} -> {_short(b)}")
    return out


def _short(value) -> str:
    text = json.dumps(value) if not isinstance(value, str) else value
    return text if len(text) <= 24 else text[:12] + "..."


@dataclass
class ResumePlan:
    """Which prompts of the run are done (verified), redone (a folder that failed verification) and new."""

    done: list[int] = field(default_factory=list)
    redone: list[int] = field(default_factory=list)
    new: list[int] = field(default_factory=list)

    @property
    def todo(self) -> list[int]:
        return sorted(self.redone + self.new)

    def summary(self) -> str:
        return f"{len(self.done)} prompts found done, {len(self.redone)} redone, {len(self.new)} new"


def prepare_output(output_dir: Path, identity: dict, prompts: list[str], tokens: list[list[str]],
                   num_steps: int, codes_shape: tuple[int, int], overwrite: bool = False) -> ResumePlan:
    """Check `output_dir` against the run's identity, clean it, verify what it holds: the plan of the run."""
    names = [prompt_folder_name(i, prompt) for i, prompt in enumerate(prompts)]
    claim_folder(output_dir, identity, overwrite, names=names + ["wandb_logs"])
    plan = ResumePlan()
    for i, prompt in enumerate(prompts):
        folder = output_dir / names[i]
        if not folder.exists():
            plan.new.append(i)
            continue
        problem = verify(folder, prompt, tokens[i], num_steps, codes_shape, identity)
        if problem is None:
            plan.done.append(i)
        else:
            log.warning(f"recomputing prompt {i}: {folder} {problem}")
            shutil.rmtree(folder)  # ours (claimed); replaced anyway, and an interrupted run does not list it done
            plan.redone.append(i)
    return plan


def claim_folder(output_dir: Path, identity: dict, overwrite: bool = False, names: list[str] = ()) -> None:
    """Make `output_dir` this run's (`lightning_agx.ownership`): `names` (the folders and files the run will
    write, besides `RUN_FILES`) must not exist there unless the project wrote them; results of another identity
    stop the run unless `overwrite`, which removes only what the project wrote there. Then the manifest records
    the names, stale temporary folders are removed and ``run.json`` is written. Nothing is changed before every
    check has passed."""
    output_dir = Path(output_dir)
    previous = read_identity(output_dir)
    mine = ownership.check_claim(output_dir, [*RUN_FILES, *names], legacy_identity=previous)
    if previous is not None and previous != identity:
        if not overwrite:
            raise UserError(f"output folder {output_dir} holds results of another run ("
                            + "; ".join(differences(previous, identity)) + "); rerun with --overwrite true to "
                            "replace them (only what lightning_agx wrote there is removed), or choose another "
                            "--output_dir")
        removed = ownership.remove(output_dir, mine)
        log.info(f"overwrite: removed {removed} entries lightning_agx wrote for another run in {output_dir}")
        mine = set()
    ownership.record(output_dir, mine | set(RUN_FILES) | set(names))
    stale = ownership.remove_stale_tmp(output_dir)
    if stale:
        log.info(f"removed {stale} unfinished temporary folder(s) from {output_dir}")
    write_json(output_dir / RUN_FILE, identity)


def verify(folder: Path, prompt: str, tokens: list[str], num_steps: int, codes_shape: tuple[int, int],
           identity: dict) -> str | None:
    """None when `folder` holds a sound result of this run for `prompt`, else what is wrong with it."""
    if not Explanation.is_complete(folder):
        return "is incomplete"
    try:
        explanation = Explanation.load(folder)
    except Exception as error:  # truncated safetensors, broken JSON, ...
        return f"is corrupt ({type(error).__name__}: {str(error)[:120]})"
    if explanation.metadata.get("run") != identity:
        return "was made by another run"
    if explanation.prompt != prompt or explanation.tokens != list(tokens):
        return "holds another prompt"
    if tuple(explanation.mask.shape) != (num_steps, len(tokens)):
        return f"has a mask of shape {tuple(explanation.mask.shape)}, not {(num_steps, len(tokens))}"
    if not bool(torch.isfinite(explanation.mask).all()):
        return "has non-finite mask values"
    if explanation.codes is None or tuple(explanation.codes.shape) != tuple(codes_shape):
        shape = None if explanation.codes is None else tuple(explanation.codes.shape)
        return f"has audio tokens of shape {shape}, not {tuple(codes_shape)}"
    return None


def read_identity(output_dir: Path) -> dict | None:
    """The identity in ``run.json`` of `output_dir`, when the project wrote it (its manifest says so, or a
    folder of a version before the manifest); None otherwise."""
    path = Path(output_dir) / RUN_FILE
    if not path.is_file():
        return None
    if (Path(output_dir) / ownership.MANIFEST).is_file() and RUN_FILE not in ownership.owned(Path(output_dir)):
        return None
    try:
        return json.loads(path.read_text())
    except ValueError:
        return {"unreadable": str(path)}


def write_index(output_dir: Path, prompts: list[str]) -> list[dict]:
    """``index.json``: exactly this run's prompts, in order; those not finished have ``"status": "todo"``.

    A finished prompt's entry is its ``explanation.json`` (the explanation's summary, written last on save),
    so the index reads no tensors."""
    index = []
    for i, prompt in enumerate(prompts):
        name = prompt_folder_name(i, prompt)
        folder = output_dir / name
        entry = {"index": i, "folder": name, "prompt": prompt, "status": "todo"}
        if Explanation.is_complete(folder):
            try:
                summary = json.loads((folder / JSON_NAME).read_text())
            except ValueError:
                summary = None
            if summary is not None:
                entry.update(status="done", **{k: v for k, v in summary.items() if k != "prompt"})
        index.append(entry)
    write_json(output_dir / INDEX_FILE, index)
    return index


def write_json(path: Path, value) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    tmp.write_text(json.dumps(value, indent=1, allow_nan=False))
    os.replace(tmp, path)


__all__ = ["RUN_FILES", "ResumePlan", "claim_folder", "differences", "prepare_output", "run_identity", "verify", "write_index"]
