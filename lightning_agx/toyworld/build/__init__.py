"""Train the ToySounds models from scratch: ``python -m lightning_agx.toyworld.build [--out DIR]``.

Stages (fixed seeds, each resumable): classifier -> codec -> codes (encode training clips) -> lm ->
decoder (fine-tune the codec's decoder only; codes unchanged, so it may also run beside lm) ->
robust (fine-tune the classifier on clean + codec-decoded clips) -> eval. The diffusion model (a second model
family on the same world and codec): ``--stages codes,diffusion,diffusion_eval --minutes-budget 60``.
A stage whose finished weights exist in ``--out`` is skipped; a stage interrupted midway resumes from its
last checkpoint (``DIR/_build/ckpt_<stage>.pt``). Every training stage fits its share of
``--minutes-budget`` (of the time left, so what an earlier stage did not use goes to the later ones): as it
runs it measures its pace and shortens its planned steps (and so its cosine learning-rate schedule) to
what fits, so it ends annealed; the report gives requested and planned steps. Writes ``config.json``,
``{codec,lm,classifier}.safetensors`` and ``build_report.json`` (quality numbers and timings).
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from lightning_agx.door import ArgumentParser, entry_point, whole
from lightning_agx.errors import UsageError
from lightning_agx.toyworld.build.classifier import train_classifier
from lightning_agx.toyworld.build.codec import train_codec
from lightning_agx.toyworld.build.codes import encode_codes
from lightning_agx.toyworld.build.decoder import finetune_decoder
from lightning_agx.toyworld.build.diffusion import evaluate_diffusion, train_diffusion
from lightning_agx.toyworld.build.evaluation import evaluate
from lightning_agx.toyworld.build.lm import train_lm
from lightning_agx.toyworld.build.loop import log
from lightning_agx.toyworld.build.report import update_report
from lightning_agx.toyworld.build.robust import robust_classifier
from lightning_agx.toyworld.load import ASSETS
from lightning_agx.toyworld.models import ToyConfig

DEFAULT_OUT = ASSETS


@dataclass(frozen=True)
class Stage:
    """One stage of the build: ``run(args, cfg, out, budget_s) -> result``; ``done``: the file in ``--out``
    whose existence means the stage finished (it is then skipped; None: it always runs); ``share``: its share
    of the time budget; ``quality``: its result is the report's quality numbers (else the stage's entry)."""
    share: float
    done: str | None
    run: Callable[[argparse.Namespace, ToyConfig, Path, float], dict]
    quality: bool = False


STAGES: dict[str, Stage] = {  # in the order of a full build
    "classifier": Stage(0.08, "classifier.safetensors", lambda a, cfg, out, b: train_classifier(
        cfg, out, a.device, a.classifier_steps, b, a.seed)),
    "codec": Stage(0.30, "codec.safetensors", lambda a, cfg, out, b: train_codec(
        cfg, out, a.device, a.codec_steps, b, a.seed)),
    "codes": Stage(0.05, "_build/codes_train.pt", lambda a, cfg, out, b: encode_codes(
        cfg, out, a.device, a.lm_clips, a.seed, a.lm_overlap_clips)),
    "lm": Stage(0.35, "lm.safetensors", lambda a, cfg, out, b: train_lm(
        cfg, out, a.device, a.lm_steps, b, a.seed, init=a.lm_init, word_dropout=a.lm_word_dropout, lr=a.lm_lr,
        warmup=a.lm_warmup)),
    "decoder": Stage(0.12, "_build/decoder.done", lambda a, cfg, out, b: finetune_decoder(
        cfg, out, a.device, a.decoder_steps, b, a.seed)),
    "robust": Stage(0.05, "_build/robust.done", lambda a, cfg, out, b: robust_classifier(
        cfg, out, a.device, a.robust_steps, b, a.seed)),
    "eval": Stage(0.05, None, lambda a, cfg, out, b: evaluate(out, a.device, a.eval_clips, a.seed + 1000),
                  quality=True),
    # the diffusion family (lightning_agx.toyworld.diffusion), on the codec above and the codes stage's clips
    "diffusion": Stage(0.85, "diffusion.safetensors", lambda a, cfg, out, b: train_diffusion(
        cfg, out, a.device, a.diffusion_steps, b, a.seed, batch=a.diffusion_batch, lr=a.diffusion_lr,
        text_layers=a.diffusion_text_layers, position_channels=a.diffusion_position_channels,
        filler_mask=a.diffusion_filler_mask, pure_noise=a.diffusion_pure_noise,
        sequence_share=a.diffusion_sequence_share, layers=a.diffusion_layers, heads=a.diffusion_heads,
        ema=a.diffusion_ema)),
    "diffusion_eval": Stage(0.10, None, lambda a, cfg, out, b: evaluate_diffusion(
        cfg, out, a.device, a.diffusion_eval_prompts, a.seed + 1000)),
}
LM_STAGES = ("classifier", "codec", "codes", "lm", "decoder", "robust", "eval")  # the default build
STAGE_SHARE = {name: stage.share for name, stage in STAGES.items()}


def stage_budget(stage: str, pending: list[str], seconds_left: float) -> float:
    """Seconds for ``stage``: its share of the time left among the stages still to run (``pending``, itself
    included), so time an earlier stage did not need goes to the later ones."""
    return seconds_left * STAGE_SHARE[stage] / sum(STAGE_SHARE[s] for s in pending)


def positive_minutes(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of minutes; got {text!r}")
    return value


def _main(argv: list[str]) -> None:
    p = ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--minutes-budget", type=positive_minutes, default=55.0,
                   help="total wall-time budget, split over stages")
    p.add_argument("--threads", type=whole(1), default=1, help="torch CPU threads")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--stages", default=",".join(LM_STAGES), help="comma-separated, in order; the diffusion model: "
                   "codes,diffusion,diffusion_eval (on the built codec)")
    p.add_argument("--classifier-steps", type=int, default=1500)
    p.add_argument("--codec-steps", type=int, default=3000)
    p.add_argument("--lm-steps", type=int, default=8000)
    p.add_argument("--decoder-steps", type=int, default=6000)
    p.add_argument("--robust-steps", type=int, default=600)
    p.add_argument("--lm-clips", type=int, default=10000)
    p.add_argument("--lm-overlap-clips", type=int, default=4000, help="extra two-event overlap clips for the LM")
    p.add_argument("--lm-init", type=Path, default=None, help="start the LM from these lm.safetensors (fine-tune)")
    p.add_argument("--lm-word-dropout", type=float, default=0.2, help="probability a filler word becomes <unk>")
    p.add_argument("--lm-lr", type=float, default=1e-3, help="peak learning rate of the LM")
    p.add_argument("--lm-warmup", type=int, default=200, help="warm-up steps of the LM")
    p.add_argument("--eval-clips", type=int, default=500)
    p.add_argument("--diffusion-steps", type=int, default=20000)
    p.add_argument("--diffusion-batch", type=int, default=32)
    p.add_argument("--diffusion-lr", type=float, default=1e-3)
    p.add_argument("--diffusion-eval-prompts", type=int, default=150)
    p.add_argument("--diffusion-text-layers", type=int, default=2, help="transformer layers of the text encoder "
                   "(0: a lookup table with word positions, as the LM's text: each token carries only its word)")
    p.add_argument("--diffusion-filler-mask", type=float, default=0.0, help="probability a filler token's "
                   "cross-attention weights are scaled by a uniform draw while the diffusion model trains")
    # the diffusion defaults are the shipped model's recipe (README); 0 turns each option off
    p.add_argument("--diffusion-position-channels", type=int, default=16, help="frame-position channels appended "
                   "to the denoiser's input (0: Stable Audio's DiT as it is)")
    p.add_argument("--diffusion-pure-noise", type=float, default=0.25, help="share of each diffusion batch "
                   "trained at the last timestep (pure noise, where sampling starts)")
    p.add_argument("--diffusion-sequence-share", type=float, default=0.25, help="share of each diffusion batch "
                   "drawn from the 'X followed by|then Y' clips")
    p.add_argument("--diffusion-layers", type=int, default=6, help="transformer blocks of the diffusion DiT")
    p.add_argument("--diffusion-heads", type=int, default=4, help="attention heads of the diffusion DiT (width: "
                   "heads x 32)")
    p.add_argument("--diffusion-ema", type=float, default=0.0, help="decay of the exponential moving average of "
                   "the diffusion weights that is saved (0: the last step's weights)")
    args = p.parse_args(argv)
    stages = args.stages.split(",")
    unknown = [s for s in stages if s not in STAGES]
    if unknown:  # before anything is written to --out
        raise UsageError(f"argument --stages: unknown stage(s) {unknown}; available: {', '.join(STAGES)}")
    if args.out.exists() and not args.out.is_dir():
        raise UsageError(f"argument --out: {args.out} is a file, not a folder")
    torch.set_num_threads(args.threads)
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    (out / "_build").mkdir(exist_ok=True)  # checkpoints and encoded codes (not shipped)
    cfg = ToyConfig()
    (out / "config.json").write_text(json.dumps(cfg.to_dict(), indent=1))
    report_path = out / "build_report.json"
    cmd = f"{PROG} " + " ".join(argv)
    budget = args.minutes_budget * 60
    t_all = time.time()
    done = {s for s in stages if STAGES[s].done is not None and (out / STAGES[s].done).exists()}
    pending = [s for s in stages if s not in done]
    for name in stages:
        if name in done:
            log(f"stage {name}: finished weights found, skipped")
            continue
        stage = STAGES[name]
        b = stage_budget(name, pending, budget - (time.time() - t_all))
        pending.remove(name)
        log(f"stage {name}: start (budget {b / 60:.1f} min)")
        res = stage.run(args, cfg, out, b)
        entry = {"seconds": res["seconds"]} if stage.quality else {k: v for k, v in res.items() if k != "targets"}
        entry["command"] = cmd
        log(f"stage {name}: done {json.dumps(entry)}")
        update_report(report_path, name, entry, res if stage.quality else None)
    log(f"build finished in {(time.time() - t_all) / 60:.1f} min -> {out}")


PROG = "python -m lightning_agx.toyworld.build"
main = entry_point(_main, prog=PROG)  # behind lightning_agx.door: a bad option or value is one line and exit 2
