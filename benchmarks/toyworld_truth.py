"""The embedded ToySounds world against its ground truth: model quality and AudioGenX explanations.

    python benchmarks/toyworld_truth.py [--model toysounds | toysounds-diffusion] [--prompts 48] [--epochs 50]
                                        [--beta B] [--gamma G] [--split test | val]
                                        [--lm-prompts 400] [--skip-models] [--weights DIR] [--out FILE]

Either of the world's two models: the ToySounds LM (audiocraft) or the ToySounds diffusion model (diffusers).

Models (issue targets): classifier F1 on held-out clips, codec round trip, LM prompt adherence
(lightning_agx.toyworld.evaluate). Explanations (AudioGenX, authors' hyper-parameters) on held-out prompts:
- ROC AUC of audio-level importance, sound words and sound modifiers vs filler words (the issue's target;
  connectors, which set timing, left out), pooled over all tokens of all prompts; the stricter AUC with the
  connectors counted as negatives too; and the AUC of event names vs all other tokens;
- for "X followed by / then Y", the share of prompts where X's importance is higher while X sounds than
  while Y sounds, and the opposite for Y (steps from the ground-truth activity at the codec frame rate);
  and, because the LM does not always generate X before Y, the same check against the audio it did
  generate: on the prompts whose generated audio is in order (classifier: X more likely in the first
  half, Y in the second), is X's importance higher in the first half and Y's in the second?
Unknown words: the same prompts with a word outside the world's vocabulary put in front ("suddenly a ..."),
and "a Y without no X" prompts: the mean importance of the unknown words against the known fillers of the
same prompts, and of "no" and "without" (the LM is trained with filler words dropped to <unk>).
Explanations are saved under --work and reused on a rerun of the same run identity (resume; results of
other weights or settings are replaced). Prints a table, writes JSON.
"""
from __future__ import annotations

import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from benchmark_output import existing, heldout_arguments, whole, write_result  # benchmarks/benchmark_output.py, beside this script
from lightning_agx.api import explain
from lightning_agx.door import ArgumentParser, entry_point
from lightning_agx.errors import UsageError
from lightning_agx.explainer import ExplainerConfig
from lightning_agx.explanation import prompt_folder_name
from lightning_agx.models import load_model
from lightning_agx.toyworld.evaluate import predict_halves
from lightning_agx.toyworld.heldout import heldout_clips
from lightning_agx.toyworld.synth import EVENTS
from lightning_agx.toyworld.truth import auc, roles, sequence_truth, timing_ok

SOUND_ROLES = ("sound", "modifier")
WEIGHTS_ONLY_DIFFUSION = "argument --weights: is for --model toysounds-diffusion (a diffusion build's output directory)"


def halves_ok(mask: torch.Tensor, x: int, y: int, ix: int, iy: int, frames: int, p_first, p_second) -> bool | None:
    """On audio generated in order, X's importance is higher in the first half and Y's in the second."""
    if not (p_first[x] > p_second[x] and p_second[y] > p_first[y]):
        return None  # the generated audio is not "X then Y": nothing to judge
    half = frames // 2
    first, second = mask[:half], mask[half:frames]
    return bool(first[:, ix].mean() > second[:, ix].mean() and second[:, iy].mean() > first[:, iy].mean())


def audio_order(tag, explanations, clips) -> list[bool | None]:
    """For each sequence prompt, whether its explanation follows the order of the audio actually generated."""
    from lightning_agx.toyworld.load import load_toysounds
    classifier = load_toysounds().classifier.eval()
    results = []
    for clip, e in zip(clips, explanations):
        truth = sequence_truth(clip)
        if truth is None:
            results.append(None)
            continue
        wav = tag.decode(e.codes[None].to(tag.device)).cpu()  # [1, 1, samples]
        p_first, p_second = (p[0] for p in predict_halves(classifier, wav))
        results.append(halves_ok(e.mask, truth.first_event, truth.second_event, truth.first, truth.second,
                                 e.codes.shape[-1], p_first, p_second))
    return results


def load(model: str, weights: Path | None = None):
    """The world's model by name; `weights`: another build's directory of the diffusion model (a candidate)."""
    if weights is None:
        return load_model(model)
    if model != "toysounds-diffusion":
        raise UsageError(WEIGHTS_ONLY_DIFFUSION)
    from lightning_agx.toyworld.diffusion import load_toysounds_diffusion
    return load_toysounds_diffusion(directory=weights)


def explanation_truth(model: str, n_prompts: int, config: ExplainerConfig, seed: int, work: Path, batch_size: int,
                      weights: Path | None = None, *, split: str) -> dict:
    clips = heldout_clips(n_prompts, seed, split)
    tag = load(model, weights)
    todo = sum(not (work / prompt_folder_name(i, c.caption) / "explanation.json").exists() for i, c in enumerate(clips))
    start = time.perf_counter()
    explanations = explain(tag, [c.caption for c in clips], output_dir=work, config=config,
                           batch_size=batch_size, seed=seed, logger=None, figures=False, save_audio=False,
                           trainer={"enable_progress_bar": False}, overwrite=True)
    seconds = time.perf_counter() - start
    scores, positive, sound, all_roles, by_role, timings = [], [], [], [], defaultdict(list), []
    for clip, e in zip(clips, explanations):
        if e.tokens != clip.words:
            raise RuntimeError(f"tokens {e.tokens} do not match the caption words {clip.words}")
        level = e.audio_level().numpy()
        token_roles = roles(e.tokens)  # the lexical roles: the same as the grammar's clip.roles on its captions
        scores += level.tolist()
        positive += [role in SOUND_ROLES for role in token_roles]
        sound += [role == "sound" for role in token_roles]
        all_roles += token_roles
        for role, value in zip(token_roles, level):
            by_role[role].append(float(value))
        timings.append(timing_ok(e.mask, clip))
    judged = [t for t in timings if t is not None]
    scores, positive, sound = np.array(scores), np.array(positive), np.array(sound)
    not_connector = np.array([role != "connector" for role in all_roles])
    ordered = [t for t in audio_order(tag, explanations, clips) if t is not None]
    return {
        "split": split, "prompts": len(clips), "epochs": config.epochs, "beta": config.beta, "gamma": config.gamma,
        "explained_now": todo, "seconds": round(seconds, 1),
        "roc_auc_sound_vs_fillers": round(auc(scores[not_connector], positive[not_connector]), 4),
        "roc_auc_sound_words": round(auc(scores, positive), 4),
        "roc_auc_event_names_only": round(auc(scores, sound), 4),
        "mean_importance_by_role": {r: round(float(np.mean(v)), 4) for r, v in sorted(by_role.items())},
        "sequence_prompts_judged": len(judged),
        "sequence_timing_correct": round(float(np.mean(judged)), 4) if judged else None,
        "ordered_audio_prompts": len(ordered),
        "ordered_audio_timing_correct": round(float(np.mean(ordered)), 4) if ordered else None,
    }


UNKNOWN_WORDS = ("suddenly", "clearly", "outside", "somewhere", "again", "here")


def unknown_word_truth(model: str, n_prompts: int, config: ExplainerConfig, seed: int, work: Path, batch_size: int,
                       weights: Path | None = None, *, split: str) -> dict:
    """Importance of words outside the vocabulary (put in front of held-out prompts) and of 'no' / 'without'
    in "a Y without no X", against the known filler words of the same prompts."""
    import itertools

    from lightning_agx.toyworld.grammar import filler_words
    clips = heldout_clips(n_prompts, seed, split)
    prompts = [f"{UNKNOWN_WORDS[i % len(UNKNOWN_WORDS)]} {c.caption}" for i, c in enumerate(clips)]
    pairs = list(itertools.permutations(EVENTS[:4], 2))[:12]
    prompts += [f"a {y} without no {x}" for y, x in pairs]
    tag = load(model, weights)
    explanations = explain(tag, prompts, output_dir=work, config=config, batch_size=batch_size,
                           seed=seed, logger=None, figures=False, save_audio=False,
                           trainer={"enable_progress_bar": False}, overwrite=True)
    vocab = tag.vocabulary
    fillers = filler_words() & vocab
    values = defaultdict(list)
    for e in explanations[:len(clips)]:
        level = e.audio_level().tolist()
        values["unknown"].append(level[0])
        values["known_fillers"] += [v for t, v in zip(e.tokens[1:], level[1:]) if t in fillers]
    for e in explanations[len(clips):]:
        level = dict(zip(e.tokens, e.audio_level().tolist()))
        values["no"].append(level["no"])
        values["without"].append(level["without"])
        values["negation_fillers"].append(level["a"])
    out = {k: round(float(np.mean(v)), 4) for k, v in values.items()}
    out.update(prompts=len(prompts), no_in_vocabulary="no" in vocab)
    return out


def model_quality(model: str, seed: int, lm_prompts: int, weights: Path | None = None) -> dict:
    from lightning_agx.toyworld.load import ASSETS, load_config, load_toysounds
    torch.manual_seed(seed)  # the LM samples: fixed, so the numbers repeat run to run
    if model == "toysounds-diffusion":  # the LM's three checks on the diffusion model's audio (seeded per prompt)
        from lightning_agx.toyworld.build.diffusion import evaluate_diffusion
        return evaluate_diffusion(load_config(), weights or ASSETS, "cpu", lm_prompts, seed)
    from lightning_agx.toyworld.evaluate import evaluate_models
    return evaluate_models(load_toysounds(), n_prompts=lm_prompts, seed=seed)


def _main(argv: list[str]) -> None:
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    heldout_arguments(parser)
    parser.add_argument("--model", default="toysounds", choices=["toysounds", "toysounds-diffusion"])
    parser.add_argument("--epochs", type=whole(1), default=50)
    parser.add_argument("--beta", type=float, default=None, help="L1 weight on the mask (Eq. 6; default: the model's "
                        "recommended)")
    parser.add_argument("--gamma", type=float, default=None, help="L2 weight on the mask (Eq. 6; default: the model's "
                        "recommended)")
    parser.add_argument("--split", default="test", choices=["test", "val"],
                        help="the prompts explained: held-out (test) or validation, to tune --beta/--gamma on")
    parser.add_argument("--lm-prompts", type=whole(1), default=400, help="held-out prompts per LM check (kind)")
    parser.add_argument("--skip-models", action="store_true", help="only the explanation checks")
    parser.add_argument("--unknown-prompts", type=whole(1), default=24, help="held-out prompts for the unknown-word check")
    parser.add_argument("--weights", type=existing("folder"), default=None, help="toysounds-diffusion only: a diffusion build's "
                        "output directory instead of the shipped weights")
    parser.add_argument("--work", default=None, help="default outputs/benchmarks/toyworld_truth_explanations[_MODEL]")
    parser.add_argument("--out", default=None, help="default outputs/benchmarks/toyworld_truth[_MODEL].json")
    args = parser.parse_args(argv)
    if args.weights is not None and args.model != "toysounds-diffusion":
        raise UsageError(WEIGHTS_ONLY_DIFFUSION)
    suffix = ("" if args.model == "toysounds" else "_" + args.model.replace("-", "_")) + (
        "" if args.split == "test" else "_" + args.split)
    args.work = args.work or f"outputs/benchmarks/toyworld_truth_explanations{suffix}"
    args.out = args.out or f"outputs/benchmarks/toyworld_truth{suffix}.json"
    config = ExplainerConfig(epochs=args.epochs, beta=args.beta, gamma=args.gamma).for_model(args.model)
    result = {}
    if not args.skip_models:
        result["models"] = model_quality(args.model, args.seed, args.lm_prompts, args.weights)
        print(json.dumps(result["models"], indent=1), file=sys.stderr)
    result["explanations"] = truth = explanation_truth(args.model, args.prompts, config, args.seed, Path(args.work),
                                                       args.batch_size, args.weights, split=args.split)
    result["unknown_words"] = unknown = unknown_word_truth(args.model, args.unknown_prompts, config, args.seed,
                                                          Path(args.work + "_unknown"), args.batch_size, args.weights,
                                                          split=args.split)
    which = "held-out" if args.split == "test" else "validation"
    print(f"\nAudioGenX on {truth['prompts']} {which} ToySounds prompts, model {args.model} ({truth['epochs']} epochs; "
          f"{truth['explained_now']} explained now in {truth['seconds']} s, the rest resumed from {args.work})\n")
    print("| check | value | target |\n|---|---:|---:|")
    print(f"| ROC AUC, importance: sound words and modifiers vs fillers | {truth['roc_auc_sound_vs_fillers']} | >= 0.9 |")
    print(f"| ROC AUC, same with connectors as negatives too | {truth['roc_auc_sound_words']} | |")
    print(f"| ROC AUC, importance vs event name (modifiers count as negatives) | "
          f"{truth['roc_auc_event_names_only']} | |")
    print(f"| 'X followed by/then Y': X early, Y late ({truth['sequence_prompts_judged']} prompts) "
          f"| {truth['sequence_timing_correct']} | >= 0.8 |")
    print(f"| same, on the {truth['ordered_audio_prompts']} prompts whose generated audio is in order "
          f"(halves) | {truth['ordered_audio_timing_correct']} | |")
    for role, value in truth["mean_importance_by_role"].items():
        print(f"| mean importance of {role} words | {value} | |")
    print(f"| unknown word in front of {args.unknown_prompts} prompts: mean importance | {unknown['unknown']} | |")
    print(f"| known filler words of the same prompts | {unknown['known_fillers']} | |")
    print(f"| 'no' / 'without' / 'a' in 'a Y without no X' ('no' in the vocabulary: {unknown['no_in_vocabulary']}) | "
          f"{unknown['no']} / {unknown['without']} / {unknown['negation_fillers']} | |")
    if "models" in result:
        models = result["models"]
        for key, target in models.get("targets", {}).items():
            se = f" ± {models[key + '_se']:.3f}" if key + "_se" in models else ""
            print(f"| model: {key} | {round(models[key], 4)}{se} | >= {target} |")
        if "codec_agreement_clip" in models:
            print(f"| model: codec agreement, whole clip | {round(models['codec_agreement_clip'], 4)} | |")
    write_result(result, args.out)


main = entry_point(_main)  # lightning_agx.door: a bad option or value is one line and exit 2

if __name__ == "__main__":
    main()
