"""Time and peak memory per AudioGenX explanation for 1, 8 and 32 prompts explained at once.

    python benchmarks/explain_speed.py [--model toysounds] [--sizes 1 8 32] [--epochs 50] [--out FILE]

Each size runs the whole `explain()` pipeline (generation, `epochs` optimisation steps, decoding; no figures,
no logger) on that many distinct prompts in one batch. Prints a Markdown table and writes JSON.
"""
from __future__ import annotations

import argparse
import platform
import sys
import time

import torch

from benchmark_output import print_table, write_result  # benchmarks/benchmark_output.py, beside this script
from lightning_agx.api import explain
from lightning_agx.evaluation.memory import PeakMemory
from lightning_agx.explainer import ExplainerConfig
from lightning_agx.models import load_model

WORDS = ["beep", "buzz", "chirp", "click", "hiss", "rumble", "whistle", "knock", "siren", "drip"]


def prompts_for(model: str, count: int) -> list[str]:
    pairs = [f"a {a} followed by a {b}" for a in WORDS for b in WORDS if a != b]
    return [f"a loud {w}" for w in WORDS][:count] + pairs[:max(0, count - len(WORDS))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="toysounds")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--out", default="outputs/benchmarks/explain_speed.json")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    tag = load_model(args.model, device=args.device)
    config = ExplainerConfig(epochs=args.epochs)
    explain(tag, prompts_for(args.model, 1), config=ExplainerConfig(epochs=1), logger=None,
            figures=False, save_audio=False, trainer={"enable_progress_bar": False})  # warm-up
    rows = []
    for size in args.sizes:
        prompts = prompts_for(args.model, size)
        with PeakMemory(args.device) as memory:
            start = time.perf_counter()
            explain(tag, prompts, config=config, batch_size=size, logger=None, figures=False, save_audio=False,
                    trainer={"enable_progress_bar": False})
            seconds = time.perf_counter() - start
        rows.append({"prompts": size, "seconds": round(seconds, 2), "seconds_per_explanation": round(seconds / size, 3),
                     "prompts_per_second": round(size / seconds, 4), "peak_mb": round(memory.megabytes, 1)})
        print(f"done {size} prompts: {seconds:.1f} s", file=sys.stderr)
    info = {"model": args.model, "device": args.device, "epochs": args.epochs, "steps": tag.num_steps(),
            "threads": torch.get_num_threads(), "torch": torch.__version__, "machine": platform.processor() or platform.machine(),
            "memory": "cuda max_memory_allocated" if args.device.startswith("cuda") else "cpu peak RSS increase",
            "rows": rows}
    print(f"\nAudioGenX explanation speed: model={args.model} device={args.device} epochs={args.epochs} "
          f"T={info['steps']} threads={info['threads']}\n")
    keys = ("prompts", "seconds", "seconds_per_explanation", "prompts_per_second", "peak_mb")
    print_table(["prompts at once", "total s", "s / explanation", "prompts / s", "peak memory MB"],
                [[r[k] for k in keys] for r in rows])
    write_result(info, args.out)


if __name__ == "__main__":
    main()
