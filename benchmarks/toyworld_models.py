"""Quality of the shipped ToySounds models on held-out clips and prompts (never run by the test suite).

    python benchmarks/toyworld_models.py [--weights DIR] [--out outputs/benchmarks/toyworld_models.json]

Prints one row per number with its target and writes everything (per-event F1 included) as JSON.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from benchmark_output import existing, whole, write_result  # benchmarks/benchmark_output.py, beside this script
from lightning_agx.door import ArgumentParser, entry_point
from lightning_agx.toyworld.evaluate import TARGETS, evaluate_all
from lightning_agx.toyworld.load import ASSETS


def _main(argv: list[str]) -> None:
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", type=existing("folder"), default=ASSETS)
    p.add_argument("--out", type=Path, default=Path("outputs/benchmarks/toyworld_models.json"))
    p.add_argument("--device", default="cpu")
    p.add_argument("--n-clips", type=whole(1), default=500, help="held-out clips for the classifier and the codec")
    p.add_argument("--n-prompts", type=whole(1), default=150, help="held-out prompts per LM check")
    p.add_argument("--seed", type=int, default=1000)
    p.add_argument("--threads", type=whole(1), default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    t0 = time.time()
    res = evaluate_all(args.weights, args.device, n_clips=args.n_clips, n_prompts=args.n_prompts, seed=args.seed)
    res["seconds"] = time.time() - t0
    print(f"{'metric':<28}{'value':>8}{'target':>9}  pass")
    for name, target in TARGETS.items():
        print(f"{name:<28}{res[name]:>8.3f}{target:>9.2f}  {'yes' if res['passed'][name] else 'NO'}")
    print(f"{'classifier_exact_set':<28}{res['classifier_exact_set']:>8.3f}")
    print(f"{'codec_agreement_clip':<28}{res['codec_agreement_clip']:>8.3f}")
    print("classifier F1 per event: " + ", ".join(f"{k} {v:.3f}" for k, v in res["classifier_f1"].items()))
    print("F1 on codec-decoded audio: " + ", ".join(f"{k} {v:.3f}" for k, v in res["codec_f1_decoded"].items()))
    print(f"sequence: X prob (1st half, 2nd half) {res['lm_sequence_x_prob_first_second_half']}, "
          f"Y prob {res['lm_sequence_y_prob_first_second_half']}")
    write_result(res, args.out)
    print(f"({res['seconds']:.0f} s)")


main = entry_point(_main)  # lightning_agx.door: a bad option or value is one line and exit 2

if __name__ == "__main__":
    main()
