"""The embedded ToySounds world against its ground truth: model quality and AudioGenX explanations.

    python benchmarks/toyworld_truth.py [--prompts 48] [--epochs 50] [--skip-models] [--out FILE]

Models (issue targets): classifier F1 on held-out clips, codec round trip, LM prompt adherence
(lightning_agx.toyworld.evaluate). Explanations (AudioGenX, authors' hyper-parameters) on held-out prompts:
- ROC AUC of audio-level importance vs "is a sound word or sound modifier" (fillers and connectors are
  the negatives), pooled over all tokens of all prompts; and the stricter AUC of event names vs all else;
- for "X followed by / then Y", the share of prompts where X's importance is higher while X sounds than
  while Y sounds, and the opposite for Y (steps from the ground-truth activity at the codec frame rate).
Explanations are saved under --work and reused on a rerun (resume). Prints a table, writes JSON.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from lightning_agx.api import explain
from lightning_agx.config import TrainerConfig
from lightning_agx.evaluation.auc import roc_auc
from lightning_agx.explainer import ExplainerConfig
from lightning_agx.models import load_model
from lightning_agx.toyworld.dataset import make_clip, split_rng
from lightning_agx.toyworld.synth import EVENTS

SOUND_ROLES = ("sound", "modifier")


def heldout_clips(n: int, seed: int):
    """Held-out clips: half sequences ("X followed by/then Y"), a quarter singles, a quarter overlaps."""
    rng = split_rng("test", seed)
    kinds = ["sequence", "single", "sequence", "overlap"]
    clips, seen = [], set()
    while len(clips) < n:
        clip = make_clip(rng, "test", kind=kinds[len(clips) % len(kinds)])
        if clip.caption not in seen:
            seen.add(clip.caption)
            clips.append(clip)
    return clips


def timing_ok(mask: torch.Tensor, clip) -> bool | None:
    """X more important while X sounds than while Y sounds, and Y the opposite (None if not a clean sequence)."""
    words = [i for i, role in enumerate(clip.roles) if role == "sound"]
    if clip.scene.kind != "sequence" or len(words) != 2:
        return None
    x, y = (EVENTS.index(clip.word_events[i]) for i in words)
    act = torch.as_tensor(clip.activity)  # [events, frames]
    frames = min(act.shape[1], mask.shape[0])
    only_x = (act[x, :frames] > 0) & (act[y, :frames] == 0)
    only_y = (act[y, :frames] > 0) & (act[x, :frames] == 0)
    if only_x.sum() == 0 or only_y.sum() == 0:
        return None
    m = mask[:frames]
    ix, iy = words
    return bool(m[only_x, ix].mean() > m[only_y, ix].mean() and m[only_y, iy].mean() > m[only_x, iy].mean())


def explanation_truth(n_prompts: int, epochs: int, seed: int, work: Path, batch_size: int) -> dict:
    clips = heldout_clips(n_prompts, seed)
    tag = load_model("toysounds")
    start = time.perf_counter()
    explanations = explain(tag, [c.caption for c in clips], output_dir=work, config=ExplainerConfig(epochs=epochs),
                           batch_size=batch_size, seed=seed, logger=None, figures=False, save_audio=False,
                           trainer=TrainerConfig(progress_bar=False))
    seconds = time.perf_counter() - start
    scores, positive, sound, by_role, timings = [], [], [], defaultdict(list), []
    for clip, e in zip(clips, explanations):
        if e.tokens != clip.words:
            raise RuntimeError(f"tokens {e.tokens} do not match the caption words {clip.words}")
        level = e.audio_level().numpy()
        scores += level.tolist()
        positive += [role in SOUND_ROLES for role in clip.roles]
        sound += [role == "sound" for role in clip.roles]
        for role, value in zip(clip.roles, level):
            by_role[role].append(float(value))
        timings.append(timing_ok(e.mask, clip))
    judged = [t for t in timings if t is not None]
    return {
        "prompts": len(clips), "epochs": epochs, "seconds": round(seconds, 1),
        "roc_auc_sound_words": round(roc_auc(np.array(scores), np.array(positive)), 4),
        "roc_auc_event_names_only": round(roc_auc(np.array(scores), np.array(sound)), 4),
        "mean_importance_by_role": {r: round(float(np.mean(v)), 4) for r, v in sorted(by_role.items())},
        "sequence_prompts_judged": len(judged),
        "sequence_timing_correct": round(float(np.mean(judged)), 4) if judged else None,
    }


def model_quality(seed: int) -> dict:
    from lightning_agx.toyworld.evaluate import evaluate_models
    from lightning_agx.toyworld.load import load_toysounds
    return evaluate_models(load_toysounds(), seed=seed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=48)
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--skip-models", action="store_true", help="only the explanation checks")
    parser.add_argument("--work", default="outputs/benchmarks/toyworld_truth_explanations")
    parser.add_argument("--out", default="outputs/benchmarks/toyworld_truth.json")
    args = parser.parse_args()
    result = {}
    if not args.skip_models:
        result["models"] = model_quality(args.seed)
        print(json.dumps(result["models"], indent=1), file=sys.stderr)
    result["explanations"] = truth = explanation_truth(args.prompts, args.epochs, args.seed, Path(args.work),
                                                       args.batch_size)
    print(f"\nAudioGenX on {truth['prompts']} held-out ToySounds prompts ({truth['epochs']} epochs, "
          f"{truth['seconds']} s)\n")
    print("| check | value | target |\n|---|---:|---:|")
    print(f"| ROC AUC, importance vs sound word/modifier | {truth['roc_auc_sound_words']} | >= 0.9 |")
    print(f"| ROC AUC, importance vs event name (modifiers count as negatives) | "
          f"{truth['roc_auc_event_names_only']} | |")
    print(f"| 'X followed by/then Y': X early, Y late ({truth['sequence_prompts_judged']} prompts) "
          f"| {truth['sequence_timing_correct']} | >= 0.8 |")
    for role, value in truth["mean_importance_by_role"].items():
        print(f"| mean importance of {role} words | {value} | |")
    if "models" in result:
        for key, value in _flatten(result["models"]).items():
            print(f"| model: {key} | {value} | |")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(f"\nwritten: {out}")


def _flatten(d: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in d.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        elif isinstance(value, (int, float, str)) or value is None:
            flat[f"{prefix}{key}"] = value
    return flat


if __name__ == "__main__":
    main()
