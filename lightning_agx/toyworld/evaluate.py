"""Quality numbers of the ToySounds models, all on held-out ("test" split) clips and prompts.

  classifier  per-event F1 (threshold 0.5) on held-out clips                      target >= 0.95 each
  codec       classifier decisions on decoded audio vs on clean audio              target >= 0.90 agreement
  lm single   classifier top-1 on audio generated for held-out single-event prompts  target >= 0.80
  lm pair     both events in classifier top-3 for held-out two-event prompts       target >= 0.70
  lm sequence "X followed by|then Y": X scores higher in the first half than the second, Y the opposite
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from lightning_agx.toyworld.dataset import make_clip, split_rng, stack_audio
from lightning_agx.toyworld.grammar import sample_scene
from lightning_agx.toyworld.synth import EVENTS

TARGETS = {"classifier_min_f1": 0.95, "codec_agreement": 0.90, "lm_single_top1": 0.80, "lm_pair_top3": 0.70,
           "lm_sequence_order": 0.70}


@torch.no_grad()
def predict(clf, wav: torch.Tensor, batch: int = 50) -> torch.Tensor:
    """Sigmoid probabilities [B, E]."""
    dev = next(clf.parameters()).device
    return torch.cat([torch.sigmoid(clf(wav[i:i + batch].to(dev))).cpu() for i in range(0, len(wav), batch)])


def predict_halves(clf, wav: torch.Tensor, batch: int = 50) -> tuple[torch.Tensor, torch.Tensor]:
    """Sigmoid probabilities ``[B, E]`` of the first and of the second half of each clip (the order checks)."""
    half = wav.shape[-1] // 2
    return predict(clf, wav[..., :half], batch), predict(clf, wav[..., half:2 * half], batch)


def top3(row: np.ndarray) -> list[str]:
    """The events of the classifier's three highest probabilities in `row` ``[E]``, highest first."""
    return [EVENTS[i] for i in np.argsort(-row)[:3]]


def both_in_top3(probs: np.ndarray, scenes) -> list[bool]:
    """Per clip, whether every event of its scene is among the classifier's top 3 (the two-event check)."""
    return [{sp.event for sp in s.specs} <= set(top3(row)) for row, s in zip(probs, scenes)]


def f1_per_event(probs: np.ndarray, labels: np.ndarray, thr: float = 0.5) -> dict[str, float]:
    pred = probs >= thr
    out = {}
    for e, name in enumerate(EVENTS):
        tp = np.sum(pred[:, e] & (labels[:, e] > 0))
        fp = np.sum(pred[:, e] & (labels[:, e] == 0))
        fn = np.sum(~pred[:, e] & (labels[:, e] > 0))
        out[name] = float(2 * tp / max(1, 2 * tp + fp + fn))
    return out


@torch.no_grad()
def generate(genmodel, captions: list[str], batch: int = 50) -> torch.Tensor:
    """Audio of `captions`, with padding keys masked in the cross-attention as everywhere in lightning_agx."""
    from lightning_agx.models.attention import edit_cross_attention
    with edit_cross_attention(genmodel.lm):
        return torch.cat([genmodel.generate(captions[i:i + batch]).cpu() for i in range(0, len(captions), batch)])


def generate_tag(tag, captions: list[str], seeds: list[int], batch: int = 50, **params) -> torch.Tensor:
    """Audio ``[B, 1, samples]`` of `captions` through a `TAGModel` adapter (the diffusion toy), prompt i sampled
    from ``seeds[i]``, `batch` prompts per call; `params`: generation overrides (e.g. ``guidance_scale``)."""
    wavs = []
    for i in range(0, len(captions), batch):
        generation = tag.generate(captions[i:i + batch], seed=seeds[i:i + batch], **params)
        wavs.append(tag.decode(generation.codes).cpu())
    return torch.cat(wavs)


@torch.no_grad()
def evaluate_models(toy, n_clips: int = 500, n_prompts: int = 150, seed: int = 1000) -> dict:
    clf, gen = toy.classifier, toy.genmodel
    codec = gen.compression_model
    res: dict = {"n_clips": n_clips, "n_prompts": n_prompts, "seed": seed}
    # classifier on held-out clips
    rng = split_rng("test", seed)
    clips = [make_clip(rng, "test") for _ in range(n_clips)]
    wav = torch.from_numpy(stack_audio(clips))
    labels = np.stack([c.labels for c in clips])
    p_clean = predict(clf, wav).numpy()
    f1 = f1_per_event(p_clean, labels)
    res["classifier_f1"] = f1
    res["classifier_min_f1"] = min(f1.values())
    res["classifier_exact_set"] = float(np.mean(np.all((p_clean >= 0.5) == (labels > 0), axis=1)))
    # codec round trip
    dev = next(codec.parameters()).device
    decoded = []
    for i in range(0, n_clips, 50):
        codes, scale = codec.encode(wav[i:i + 50].to(dev))
        decoded.append(codec.decode(codes, scale)[..., :wav.shape[-1]].cpu())
    p_dec = predict(clf, torch.cat(decoded)).numpy()
    res["codec_agreement"] = float(np.mean((p_dec >= 0.5) == (p_clean >= 0.5)))  # per (clip, event) decision
    res["codec_agreement_clip"] = float(np.mean(np.all((p_dec >= 0.5) == (p_clean >= 0.5), axis=1)))
    res["codec_f1_decoded"] = f1_per_event(p_dec, labels)
    res.update(evaluate_lm(gen, clf, n_prompts=n_prompts, seed=seed))
    res["targets"] = TARGETS
    res["passed"] = {k: bool(res[k] >= v) for k, v in TARGETS.items()}
    return res


@torch.no_grad()
def evaluate_lm(gen, clf, n_prompts: int = 150, seed: int = 1000, split: str = "test", generate_fn=None) -> dict:
    """The three LM checks on ``n_prompts`` prompts of each kind (``split="val"`` to tune generation settings).
    `generate_fn(captions) -> wav [B, 1, samples]` generates with another model (the diffusion toy); default:
    the LM `gen`."""
    if generate_fn is None:
        def generate_fn(captions):
            return generate(gen, captions)
    res: dict = {}
    prng = np.random.default_rng([seed, 99])
    singles = [sample_scene(prng, split, kind="single") for _ in range(n_prompts)]
    p = predict(clf, generate_fn([s.caption for s in singles])).numpy()
    top1 = [EVENTS[i] for i in p.argmax(1)]
    res["lm_single_top1"] = float(np.mean([t == s.specs[0].event for t, s in zip(top1, singles)]))
    pairs = [sample_scene(prng, split, kind="overlap") for _ in range(n_prompts)]
    p = predict(clf, generate_fn([s.caption for s in pairs])).numpy()
    res["lm_pair_top3"] = float(np.mean(both_in_top3(p, pairs)))
    seqs = [sample_scene(prng, split, kind="sequence") for _ in range(n_prompts)]
    audio = generate_fn([s.caption for s in seqs])
    p1, p2 = (p.numpy() for p in predict_halves(clf, audio))
    ok, x_first, y_second = [], [], []
    for i, s in enumerate(seqs):
        x, y = EVENTS.index(s.specs[0].event), EVENTS.index(s.specs[1].event)
        ok.append(p1[i, x] > p2[i, x] and p2[i, y] > p1[i, y])
        x_first.append([p1[i, x], p2[i, x]])
        y_second.append([p1[i, y], p2[i, y]])
    res["lm_sequence_order"] = float(np.mean(ok))
    for key in ("lm_single_top1", "lm_pair_top3", "lm_sequence_order"):  # binomial standard errors
        res[key + "_se"] = float(np.sqrt(res[key] * (1 - res[key]) / n_prompts))
    res["lm_sequence_x_prob_first_second_half"] = np.mean(x_first, axis=0).round(3).tolist()
    res["lm_sequence_y_prob_first_second_half"] = np.mean(y_second, axis=0).round(3).tolist()
    return res


def evaluate_all(directory: str | Path, device: str = "cpu", n_clips: int = 500, n_prompts: int = 150,
                 seed: int = 1000) -> dict:
    from lightning_agx.toyworld.load import load_toysounds
    torch.manual_seed(seed)
    return evaluate_models(load_toysounds(device, directory), n_clips=n_clips, n_prompts=n_prompts, seed=seed)
