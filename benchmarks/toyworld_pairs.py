"""The two-event check of a ToySounds build, measured tightly, and the ceiling the codec sets on it.

    python benchmarks/toyworld_pairs.py [--model-dir DIR] [--prompts 200] [--seeds 1 2 3] [--ceiling-clips 300]

LM: for ``--prompts`` held-out "X and/with/while Y" prompts per seed, are both events in the classifier's top 3
of the generated audio? (the issue's >= 0.70 target; the build's eval uses 150 prompts, too few to tell 0.68
from 0.73). Ceiling: the same check on *real* held-out and val pair clips passed through the codec, per pair.
Prints a table, writes JSON.
"""
from __future__ import annotations

import argparse
from collections import defaultdict

import numpy as np
import torch

from benchmark_output import write_result  # benchmarks/benchmark_output.py, beside this script
from lightning_agx.toyworld.dataset import render_scene
from lightning_agx.toyworld.evaluate import generate, predict
from lightning_agx.toyworld.grammar import sample_scene
from lightning_agx.toyworld.load import load_toysounds
from lightning_agx.toyworld.synth import EVENTS


def both_in_top3(probs: np.ndarray, scenes) -> list[bool]:
    return [{sp.event for sp in s.specs} <= {EVENTS[i] for i in np.argsort(-row)[:3]} for row, s in zip(probs, scenes)]


def with_se(ok: list[bool]) -> dict:
    m = float(np.mean(ok))
    return {"n": len(ok), "value": round(m, 4), "se": round(float(np.sqrt(m * (1 - m) / len(ok))), 4)}


def lm_pairs(toy, prompts: int, seeds: list[int]) -> dict:
    per_seed, everything = {}, []
    for seed in seeds:
        torch.manual_seed(seed)
        prng = np.random.default_rng([seed, 77])
        scenes = [sample_scene(prng, "test", kind="overlap") for _ in range(prompts)]
        ok = both_in_top3(predict(toy.classifier, generate(toy.genmodel, [s.caption for s in scenes])).numpy(), scenes)
        per_seed[seed] = with_se(ok)
        everything += ok
    return {"all": with_se(everything), "per_seed": per_seed}


@torch.no_grad()
def codec_ceiling(toy, clips: int, split: str) -> dict:
    codec = toy.genmodel.compression_model
    prng, rng = np.random.default_rng([5, 99]), np.random.default_rng(7)
    scenes = [sample_scene(prng, split, kind="overlap") for _ in range(clips)]
    wav = torch.from_numpy(np.stack([render_scene(rng, s)[None] for s in scenes])).float()
    codes, scale = codec.encode(wav)
    decoded = codec.decode(codes, scale)[..., :wav.shape[-1]]
    out = {}
    for name, audio in (("clean", wav), ("codec", decoded)):
        ok = both_in_top3(predict(toy.classifier, audio).numpy(), scenes)
        by_pair = defaultdict(list)
        for o, s in zip(ok, scenes):
            by_pair["+".join(sorted(sp.event for sp in s.specs))].append(o)
        rates = {k: round(float(np.mean(v)), 3) for k, v in sorted(by_pair.items())}
        out[name] = {"all": with_se(ok), "by_pair": rates}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", default=None, help="a build's --out folder (default: the shipped weights)")
    parser.add_argument("--prompts", type=int, default=200, help="held-out pair prompts per seed")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--ceiling-clips", type=int, default=300, help="real pair clips per split for the ceiling")
    parser.add_argument("--out", default="outputs/benchmarks/toyworld_pairs.json")
    args = parser.parse_args()
    toy = load_toysounds("cpu", args.model_dir) if args.model_dir else load_toysounds("cpu")
    result = {"model_dir": args.model_dir or "shipped", "lm": lm_pairs(toy, args.prompts, args.seeds),
              "codec_ceiling": {split: codec_ceiling(toy, args.ceiling_clips, split) for split in ("test", "val")}}
    lm = result["lm"]["all"]
    print("\n| check | value |\n|---|---:|")
    print(f"| LM, both events in top 3 ({lm['n']} held-out prompts) | {lm['value']} ± {lm['se']} |")
    for split, res in result["codec_ceiling"].items():
        for name in ("clean", "codec"):
            worst = min(res[name]["by_pair"].items(), key=lambda kv: kv[1])
            print(f"| real {split} pair clips, {name}: both in top 3 | {res[name]['all']['value']} "
                  f"(lowest {worst[0]} {worst[1]}) |")
    write_result(result, args.out)


if __name__ == "__main__":
    main()
