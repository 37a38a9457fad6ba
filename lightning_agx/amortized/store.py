"""The trained amortised explainer on disk: ``<name>.safetensors`` (weights) and ``<name>.json`` (what it was
trained for and how), checked against the model before use. The shipped ToySounds explainer sits with the
ToySounds weights (`default_checkpoint`). A Lightning checkpoint of the training run (``.ckpt``) loads too,
with ``torch.load(weights_only=True)``."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ..errors import UserError
from .network import AmortizedExplainer

FORMAT = 1


class AmortizedCheckpointError(UserError):
    """A missing amortised explainer, or one trained for another model."""


SHIPPED = {"toysounds": "amortized", "toysounds-diffusion": "amortized_diffusion"}  # model -> file in the assets


def default_checkpoint(model_name: str) -> Path:
    """The shipped explainer of a model (the embedded ToySounds LM and diffusion models have one)."""
    if model_name not in SHIPPED:
        raise AmortizedCheckpointError(
            f"no shipped amortised explainer for model '{model_name}': train one with `python train.py --config "
            "configs/amortized_toysounds.yaml --model.name <model> --data.captions <captions file>` and pass its "
            "file as amortized.checkpoint")
    from ..toyworld.load import ASSETS
    return ASSETS / f"{SHIPPED[model_name]}.safetensors"


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
    for (other weights of the same model are allowed, with the difference kept in the returned info)."""
    path = default_checkpoint(tag.name) if path is None else Path(path)
    if path.suffix == ".ckpt":
        state, meta = _from_lightning(path)
    else:
        weights, meta_path = weights_file(path, tag.name), path.with_suffix(".json")
        if not weights.is_file() or not meta_path.is_file():
            raise AmortizedCheckpointError(
                f"no amortised explainer at {weights} (+ {meta_path.name}); train one with `python train.py "
                "--config configs/amortized_toysounds.yaml` or give amortized.checkpoint")
        state, meta = load_file(str(weights)), json.loads(meta_path.read_text())
    expected = model_identity(tag)
    for key, what in (("model", "model"), ("dim", "width D"), ("vocabulary", "vocabulary")):
        if meta.get(key) != expected[key]:
            raise AmortizedCheckpointError(
                f"the amortised explainer {path.name} was trained for model '{meta.get('model')}' (D={meta.get('dim')}), "
                f"not for '{tag.name}' (D={tag.dim}): its {what} differs; train one for this model "
                "(configs/amortized_toysounds.yaml with --model.name) or pick its checkpoint")
    latent_dim = int(state["step.0.weight"].shape[0])  # the width of h_t it reads (its first LayerNorm's)
    explainer = AmortizedExplainer(int(meta["dim"]), int(meta["hidden"]), latent_dim)
    explainer.load_state_dict(state)
    meta = {**meta, "path": str(path), "same_weights": meta.get("weights") == expected["weights"]}
    return explainer.to(tag.device).eval().requires_grad_(False), meta


def _from_lightning(path: Path) -> tuple[dict, dict]:
    if not path.is_file():
        raise AmortizedCheckpointError(f"no checkpoint at {path}")
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    prefix = "explainer."
    state = {k[len(prefix):]: v for k, v in checkpoint["state_dict"].items() if k.startswith(prefix)}
    meta = dict(checkpoint.get("hyper_parameters", {}).get("identity", {}))
    meta["hidden"] = checkpoint["hyper_parameters"]["hidden"]
    return state, meta


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
