"""Where in time a token acts: the X of "a X followed by a Y" removed from the text cross-attention (post-softmax
mask 0, Eq. 2) at the first-half steps, the second-half steps or all steps, on either ToySounds model; the
classifier's probability of X in each half of the regenerated audio (the same seeds as the unedited run).

    python benchmarks/toyworld_locality.py [--models toysounds-diffusion toysounds] [--threads 1]

A model whose cross-attention acts where the sound plays loses X in the first half when X is masked there, and
nothing when X is masked in the second half. Prints one row per model and edit and writes JSON.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from benchmark_output import print_table, whole, write_result  # benchmarks/benchmark_output.py, beside this script
from lightning_agx.door import ArgumentParser, entry_point
from lightning_agx.models import CrossAttentionEdit, load_model
from lightning_agx.models.registry import check_model_name
from lightning_agx.toyworld.evaluate import predict_halves
from lightning_agx.toyworld.load import load_toysounds
from lightning_agx.toyworld.synth import EVENTS

PAIRS = (("beep", "rumble"), ("rumble", "beep"), ("hiss", "knock"), ("knock", "hiss"), ("siren", "drip"),
         ("drip", "siren"), ("whistle", "buzz"), ("buzz", "whistle"))
EDITS = ("none", "X at first-half steps", "X at second-half steps", "X at all steps")


def x_by_half(tag, classifier, prompts: list[str], xs: list[int], edit: str, seed: int) -> tuple[float, float]:
    """Mean classifier probability of each prompt's X in the first and second half of its audio under `edit`."""
    text = tag.encode_text(prompts)
    steps, width = tag.num_steps(), text.valid.shape[1]
    mask = None
    if edit != "none":
        span = {EDITS[1]: slice(0, steps // 2), EDITS[2]: slice(steps // 2, steps), EDITS[3]: slice(0, steps)}[edit]
        mask = torch.ones(len(prompts), steps, width)
        mask[:, span, 1] = 0.0  # token 1 is X in "a X followed by a Y"
    generation = tag.generate(text, seed=[seed + i for i in range(len(prompts))],
                              edit=None if mask is None else CrossAttentionEdit(post_softmax=mask))
    wav = tag.decode(generation.codes).cpu()
    first, second = (p.numpy() for p in predict_halves(classifier, wav))
    rows = np.arange(len(prompts))
    return float(first[rows, xs].mean()), float(second[rows, xs].mean())


def _main(argv: list[str]) -> None:
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=["toysounds-diffusion", "toysounds"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=whole(1), default=1)
    p.add_argument("--out", type=Path, default=Path("outputs/benchmarks/toyworld_locality.json"))
    args = p.parse_args(argv)
    for name in args.models:  # every name before the first model loads
        check_model_name(name)
    torch.set_num_threads(args.threads)
    classifier = load_toysounds().classifier.eval()
    prompts = [f"a {x} followed by a {y}" for x, y in PAIRS]
    xs = [EVENTS.index(x) for x, _ in PAIRS]
    results, rows = {}, []
    with torch.no_grad():
        for name in args.models:
            tag = load_model(name)
            results[name] = {edit: x_by_half(tag, classifier, prompts, xs, edit, args.seed) for edit in EDITS}
            rows += [[name, edit, f"{a:.2f}", f"{b:.2f}"] for edit, (a, b) in results[name].items()]
    print(f"\nP(X) per half of the audio, {len(prompts)} 'a X followed by a Y' prompts\n")
    print_table(["model", "X removed", "P(X) first half", "P(X) second half"], rows)
    write_result({"prompts": prompts, "seed": args.seed, "results": results}, args.out)


main = entry_point(_main)  # lightning_agx.door: a bad option or value is one line and exit 2

if __name__ == "__main__":
    main()
