"""Do the speed options change what AudioGenX finds? ToySounds ground truth with each option on and off.

    python benchmarks/performance_faithfulness.py [--prompts 24] [--options off bf16 checkpointing] [--threads 1]

Explains the first `--prompts` held-out prompts of the ground-truth benchmark (`toyworld.heldout.heldout_clips`,
seed 2024, authors' settings) once per option set (`lightning_agx.performance`), and prints per option set:
the pooled ROC AUC of sound words and modifiers vs fillers (benchmarks/toyworld_truth.py's target metric), the
"X followed by Y" timing check, the largest and mean change of the mask p against float32 with no option,
and the seconds per explanation. On a CPU only bf16 autocast and checkpointing change anything (TF32 is a
CUDA flag; compile is measured by explain_speed.py); on a GPU every option set runs unchanged.
"""
from __future__ import annotations

import sys
import time

import torch

from benchmark_output import print_table, whole, write_result  # benchmarks/benchmark_output.py, beside this script
from lightning_agx.api import explain
from lightning_agx.door import ArgumentParser, entry_point
from lightning_agx.explainer import ExplainerConfig
from lightning_agx.models import load_model
from lightning_agx.performance import Performance
from lightning_agx.toyworld.heldout import heldout_clips
from lightning_agx.toyworld.truth import truth_metrics

OPTIONS = {"off": Performance(autocast="off", tf32=False, compile="off", checkpointing=False),
           "bf16": Performance(autocast="bfloat16", tf32=False, compile="off", checkpointing=False),
           "fp16": Performance(autocast="float16", tf32=False, compile="off", checkpointing=False),
           "tf32": Performance(autocast="off", tf32=True, compile="off", checkpointing=False),
           "checkpointing": Performance(autocast="off", tf32=False, compile="off", checkpointing=True),
           "compile": Performance(autocast="off", tf32=False, compile="default", checkpointing=False),
           "cuda_defaults": Performance()}


def _main(argv: list[str]) -> None:
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=whole(1), default=24)
    parser.add_argument("--seed", type=whole(0), default=2024)
    parser.add_argument("--batch-size", type=whole(1), default=8)
    parser.add_argument("--options", nargs="+", default=["off", "bf16", "checkpointing"], choices=list(OPTIONS))
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=whole(1), default=None)
    parser.add_argument("--out", default="outputs/benchmarks/performance_faithfulness.json")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    clips = heldout_clips(args.prompts, args.seed)
    tag = load_model("toysounds", device=args.device)
    rows, reference = [], None
    for name in args.options:
        tag.performance = OPTIONS[name]
        start = time.perf_counter()
        explanations = explain(tag, [c.caption for c in clips], config=ExplainerConfig(), batch_size=args.batch_size,
                               seed=args.seed, logger=None, figures=False, save_audio=False,
                               trainer={"enable_progress_bar": False})
        seconds = (time.perf_counter() - start) / len(clips)
        masks = [e.mask for e in explanations]
        reference = reference or masks
        diffs = torch.cat([(m - r).abs().flatten() for m, r in zip(masks, reference)])
        rows.append({"options": name, **OPTIONS[name].resolve(tag.device).describe(), **truth_metrics(explanations, clips),
                     "max_abs_dp": float(diffs.max()), "mean_abs_dp": float(diffs.mean()), "seconds": seconds})
        print(f"done {name}: {seconds:.2f} s / explanation", file=sys.stderr)
    print(f"\nToySounds ground truth with each speed option ({len(clips)} held-out prompts, {args.device}, "
          f"threads={torch.get_num_threads()}; dp against '{args.options[0]}')\n")
    print_table(["options", "AUC sound vs fillers", "timing", "max |dp|", "mean |dp|", "s / explanation"],
                [[r["options"], f"{r['auc']:.3f}", f"{r['timing']:.3f} ({r['timing_judged']})", f"{r['max_abs_dp']:.3g}",
                  f"{r['mean_abs_dp']:.3g}", f"{r['seconds']:.2f}"] for r in rows])
    write_result({"device": args.device, "prompts": len(clips), "rows": rows}, args.out)


main = entry_point(_main)  # lightning_agx.door: a bad option or value is one line and exit 2

if __name__ == "__main__":
    main()
