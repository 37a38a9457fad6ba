"""The trained amortised explainer on disk: ``<name>.safetensors`` (weights) and ``<name>.json`` (what it was
trained for and how), checked against the model before use. The shipped ToySounds explainer sits with the
ToySounds weights (`default_checkpoint`). A Lightning checkpoint of the training run (``.ckpt``) loads too,
with ``torch.load(weights_only=True)``."""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ..errors import UserError
from .network import AmortizedExplainer

FORMAT = 1


class AmortizedCheckpointError(UserError):
    """A missing, unreadable or malformed amortised explainer, or one trained for another model."""


def default_checkpoint(model_name: str) -> Path:
    """The shipped explainer of a model (the embedded ToySounds LM and diffusion models have one: the catalogue's
    ``shipped_explainer``, a file stem in the world's assets)."""
    from ..models.catalogue import entry
    found = entry(model_name)
    if found is None or found.shipped_explainer is None:
        raise AmortizedCheckpointError(
            f"no shipped amortised explainer for model '{model_name}': train one with `python train.py --config "
            "configs/amortized_toysounds.yaml --model.name <model> --data.captions <captions file>` and pass its "
            "file as amortized.checkpoint")
    from ..toyworld.load import ASSETS
    return ASSETS / f"{found.shipped_explainer}.safetensors"


def weights_file(path: str | Path | None, model_name: str) -> Path:
    """The file holding an explainer's weights: ``path`` itself for a Lightning checkpoint (``.ckpt``), else its
    ``.safetensors``; None is the model's shipped explainer (an `AmortizedCheckpointError` where it has none)."""
    path = default_checkpoint(model_name) if path is None else Path(path)
    return path if path.suffix == ".ckpt" else path.with_suffix(".safetensors")


def vocabulary_hash(tag) -> str | None:
    vocabulary = tag.vocabulary
    return None if vocabulary is None else hashlib.sha256("\n".join(sorted(vocabulary)).encode()).hexdigest()[:16]


def model_identity(tag) -> dict:
    """What an amortised explainer must match: the model's name, weights, width D and vocabulary."""
    return {"model": tag.name, "weights": tag.weights_hash, "dim": tag.dim, "vocabulary": vocabulary_hash(tag)}


def save_explainer(explainer: AmortizedExplainer, path: str | Path, tag, info: dict | None = None) -> Path:
    """Weights (safetensors) and, beside them, the JSON that says what they were trained for and how."""
    path = Path(path).with_suffix(".safetensors")
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in explainer.state_dict().items()}, str(path))
    meta = {"format": FORMAT, "hidden": explainer.hidden, **model_identity(tag), **(info or {})}
    path.with_suffix(".json").write_text(json.dumps(meta, indent=1))
    return path


def load_explainer(path: str | Path | None, tag) -> tuple[AmortizedExplainer, dict]:
    """The explainer at `path` (None: the model's shipped one) on `tag`'s device, checked against `tag`:
    another model name, width or vocabulary is a one-line `AmortizedCheckpointError` naming what it was trained
    for (other weights of the same model are allowed, with the difference kept in the returned info); so is a
    file that is not an explainer (unreadable, missing or extra tensors, other shapes, a broken JSON)."""
    path = default_checkpoint(tag.name) if path is None else Path(path)
    if path.is_dir():
        raise AmortizedCheckpointError(
            f"{path} is a folder, not an amortised explainer; give the .safetensors file train.py exported (e.g. "
            f"{path / 'amortized.safetensors'}) or a .ckpt of its run (e.g. {path / 'checkpoints' / 'last.ckpt'})")
    if path.suffix == ".ckpt":
        state, meta = _from_lightning(path)
    else:
        state, meta = _from_safetensors(path, tag.name)
    expected = model_identity(tag)
    for key, what in (("model", "model"), ("dim", "width D"), ("vocabulary", "vocabulary")):
        if meta.get(key) != expected[key]:
            raise AmortizedCheckpointError(
                f"the amortised explainer {path.name} was trained for model '{meta.get('model')}' "
                f"(D={meta.get('dim')}), not for '{tag.name}' (D={tag.dim}): its {what} differs; train one for this "
                "model (configs/amortized_toysounds.yaml with --model.name) or pick its checkpoint")
    explainer = AmortizedExplainer(tag.dim, meta["hidden"], tag.latent_dim)
    _check_state(weights_file(path, tag.name), state, explainer.state_dict())
    explainer.load_state_dict(state)
    meta = {**meta, "path": str(path), "same_weights": meta.get("weights") == expected["weights"]}
    return explainer.to(tag.device).eval().requires_grad_(False), meta


FIX = ("train one with `python train.py --config configs/amortized_toysounds.yaml` (or export it again) and "
       "give its .safetensors or a .ckpt of its run as amortized.checkpoint")


def broken(path: Path, what: str, fix: str = FIX) -> AmortizedCheckpointError:
    """The one-line error of a file that is not a usable explainer: which file, what is wrong, what to do."""
    return AmortizedCheckpointError(f"{path} is not a usable amortised explainer: {what}; {fix}")


def _first_line(error: Exception) -> str:
    """An error's first sentence, short (or its type where it says nothing)."""
    text = str(error).strip().splitlines()
    return (text[0].split(". ")[0] if text else type(error).__name__)[:120]


def _from_safetensors(path: Path, model_name: str) -> tuple[dict, dict]:
    weights, meta_path = weights_file(path, model_name), path.with_suffix(".json")
    if not weights.is_file():
        raise AmortizedCheckpointError(
            f"no amortised explainer at {weights} (+ {meta_path.name}); train one with `python train.py "
            "--config configs/amortized_toysounds.yaml` or give amortized.checkpoint")
    if not meta_path.is_file():
        raise broken(weights, f"{meta_path.name}, which says what it was trained for, is missing beside it")
    try:
        state = load_file(str(weights))
    except Exception as error:  # safetensors' own error, or an OSError: the file is the cause either way
        raise broken(weights, f"not a safetensors file ({_first_line(error)})") from None
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError) as error:
        raise broken(weights, f"{meta_path.name} beside it is not readable JSON ({_first_line(error)})") from None
    return state, _check_meta(weights, meta, meta_path.name)


def _check_meta(path: Path, meta, source: str) -> dict:
    """`meta` (the JSON, or a checkpoint's hyper-parameters) with the fields a network is built from."""
    if not isinstance(meta, dict):
        raise broken(path, f"{source} is not a JSON object")
    missing = [k for k in ("model", "dim", "hidden") if k not in meta]
    if missing:
        raise broken(path, f"no {', '.join(missing)} in {source}")
    for key in ("dim", "hidden"):
        if isinstance(meta[key], bool) or not isinstance(meta[key], int) or meta[key] < 1:
            raise broken(path, f"{source} gives {key} {meta[key]!r}, not a whole number >= 1")
    if meta.get("format", FORMAT) != FORMAT:
        raise broken(path, f"{source} is format {meta['format']!r}; this lightning_agx reads format {FORMAT}")
    return meta


def _check_state(path: Path, state: dict, expected: dict) -> None:
    """Exactly the network's tensors, of its shapes, finite."""
    missing, extra = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing:
        raise broken(path, f"tensor {_names(missing)} missing")
    if extra:
        raise broken(path, f"tensor {_names(extra)} not in the network")
    for key, want in expected.items():
        got = state[key]
        if not isinstance(got, torch.Tensor) or tuple(got.shape) != tuple(want.shape):
            shape = list(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
            raise broken(path, f"tensor {key} is {shape}, not {list(want.shape)}")
        if not got.is_floating_point() or not torch.isfinite(got).all():
            raise broken(path, f"tensor {key} is not finite floating point")


def _names(keys: list[str]) -> str:
    return keys[0] + (f" (and {len(keys) - 1} more)" if len(keys) > 1 else "")


def read_lightning_checkpoint(path: str | Path, fix: str = FIX) -> dict:
    """A training run's Lightning checkpoint as plain data: ``torch.load(weights_only=True)``, so nothing in
    the file runs (a pickled object other than tensors and containers is refused), with its ``state_dict`` and
    ``hyper_parameters``; anything else is a one-line `AmortizedCheckpointError` ending with `fix`."""
    path = Path(path)
    if not path.is_file():
        raise AmortizedCheckpointError(f"no checkpoint at {path}; {fix}")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch's reader fails in many ways (RuntimeError, EOFError, ...): the file's fault
        raise broken(path, _unreadable(error), fix) from None
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("state_dict"), dict):
        raise broken(path, "it has no state_dict: not a Lightning checkpoint", fix)
    if not isinstance(checkpoint.get("hyper_parameters"), dict):
        raise broken(path, "it has no hyper_parameters: not a checkpoint of `train.py --task train_amortized`", fix)
    return checkpoint


def _unreadable(error: Exception) -> str:
    """What `torch.load(weights_only=True)`'s many-line error says, in a few words."""
    text = str(error)
    refused = re.search(r"Unsupported global: GLOBAL (\S+)", text)
    if refused:  # a pickled object other than tensors and containers (a class, a function): never run
        return f"it pickles {refused.group(1)}, not only weights (refused unrun: torch.load weights_only=True)"
    detail = re.search(r"WeightsUnpickler error:\s*(.+)", text)
    return f"not a PyTorch checkpoint ({detail.group(1).strip()[:120] if detail else _first_line(error)})"


def _from_lightning(path: Path) -> tuple[dict, dict]:
    checkpoint = read_lightning_checkpoint(path)
    prefix = "explainer."
    state = {k[len(prefix):]: v for k, v in checkpoint["state_dict"].items() if k.startswith(prefix)}
    hyper = checkpoint["hyper_parameters"]
    meta = dict(hyper["identity"]) if isinstance(hyper.get("identity"), dict) else {}
    if "hidden" in hyper:
        meta["hidden"] = hyper["hidden"]
    return state, _check_meta(path, meta, "its hyper_parameters")


def record_in_build_report(path: str | Path, info: dict) -> Path | None:
    """When the explainer is exported beside a model's ``build_report.json`` (the ToySounds assets), record its
    training there too, as the other ToySounds weights are (a stage named after the file, e.g. ``amortized`` or
    ``amortized_diffusion``: command, seed, seconds)."""
    report = Path(path).with_suffix(".safetensors").parent / "build_report.json"
    if not report.is_file():
        return None
    data = json.loads(report.read_text())
    data.setdefault("stages", {})[Path(path).with_suffix("").name] = {
        "command": info.get("command"), "seed": info.get("seed"), "seconds": info.get("fit_seconds"),
        "epochs": info.get("epochs"), "steps": info.get("steps"), "train_prompts": info.get("train_prompts"),
        "val_prompts": info.get("val_prompts"), "best_val_loss": info.get("best_val_loss"),
        "last_val": info.get("last_val"), "file": Path(path).with_suffix(".safetensors").name}
    report.write_text(json.dumps(data, indent=1))
    return report
