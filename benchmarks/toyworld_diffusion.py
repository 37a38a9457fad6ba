"""The ToySounds diffusion model's checks (single-event top-1, two-event top-3, "X followed by Y" order) for
several classifier-free guidance scales, on the validation prompts (to choose one) or the test prompts.

    python benchmarks/toyworld_diffusion.py [--weights DIR] [--split val] [--guidance 3 5 7] [--n-prompts 60]

Prints one row per guidance scale and writes JSON.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from benchmark_output import existing, print_table, whole, write_result  # benchmarks/benchmark_output.py, beside this script
from lightning_agx.door import ArgumentParser, entry_point
from lightning_agx.toyworld.build.diffusion import evaluate_diffusion
from lightning_agx.toyworld.load import ASSETS, load_config

KEYS = ("diffusion_single_top1", "diffusion_pair_top3", "diffusion_sequence_order")


def _main(argv: list[str]) -> None:
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", type=existing("folder"), default=ASSETS)
    p.add_argument("--split", default="val", choices=["val", "test"])
    p.add_argument("--guidance", type=float, nargs="+", default=[3.0, 5.0, 7.0])
    p.add_argument("--n-prompts", type=whole(1), default=60)
    p.add_argument("--seed", type=int, default=1000)
    p.add_argument("--threads", type=whole(1), default=1)
    p.add_argument("--out", type=Path, default=Path("outputs/benchmarks/toyworld_diffusion.json"))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = [evaluate_diffusion(load_config(args.weights), args.weights, "cpu", args.n_prompts, args.seed,
                               split=args.split, guidance=g) for g in args.guidance]
    print(f"\nToySounds diffusion model, {args.n_prompts} {args.split} prompts per check\n")
    print_table(["guidance", "single top-1", "pair top-3", "X then Y order"],
                [[r["guidance"], *(f"{r[k]:.3f} ± {r[k + '_se']:.3f}" for k in KEYS)] for r in rows])
    write_result({"split": args.split, "n_prompts": args.n_prompts, "rows": rows}, args.out)


main = entry_point(_main)  # lightning_agx.door: a bad option or value is one line and exit 2

if __name__ == "__main__":
    main()
