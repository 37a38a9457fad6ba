"""Amortised against per-prompt AudioGenX on the README's held-out ToySounds prompts, from ONE evaluation run
(the same generations, classifier and masked-regeneration seeds for every row; never run by the tests).

    python benchmarks/amortized.py [--model toysounds-diffusion] [--prompts 48] [--seed 2024] [--work DIR]

Rows: per-prompt AudioGenX (authors' settings), the shipped amortised explainer, amortised + 5 and + 10
refinement steps, and the best baselines (attention: fidelity; Grad-CAM-e: AUC). Columns: seconds per
explanation for the mask alone and with the generation, the ground-truth AUC (audio-level importance of sound
words and modifiers against fillers, all tokens pooled, as benchmarks/toyworld_truth.py), the "X followed by
Y" timing check, and the paper's FidF, FidCF, KLF, KLCF and Size (mean ± standard error over prompts), and
FidF-Ori / KLF-Ori (paired by prompt against 5 unmasked regenerations). Then the issue's targets, checked.
Either embedded model (`--model`); the explainer settings are the model's recommended ones (`TAGModel.recommended_explainer`).
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import torch

from benchmark_output import existing, heldout_arguments, print_table, whole, write_result  # benchmarks/benchmark_output.py, beside this script
from lightning_agx.classifiers import load_classifier
from lightning_agx.explainer import ExplainerConfig
from lightning_agx.door import ArgumentParser, entry_point
from lightning_agx.evaluation import evaluate
from lightning_agx.evaluation.run import ORIGINAL_JSON
from lightning_agx.evaluation.tables import ORI, mean_se, paired_with_ori
from lightning_agx.explanation import Explanation, prompt_folder_name
from lightning_agx.models import load_model
from lightning_agx.toyworld.heldout import heldout_clips
from lightning_agx.toyworld.truth import truth_metrics

ROWS = {  # label -> method options (method: the method it runs)
    "audiogenx": {},
    "audiogenx_amortized": {},
    "amortized_refine5": {"method": "audiogenx_amortized", "refine_steps": 5},
    "amortized_refine10": {"method": "audiogenx_amortized", "refine_steps": 10},
    "attention": {},
    "gradcam_e": {},
}
COLUMNS = ("fid_f", "fid_cf", "kl_f", "kl_cf", "size", "fid_f_minus_ori", "kl_f_minus_ori")
MODELS = ("toysounds", "toysounds-diffusion")


def row_values(label: str, clips, folders) -> dict:
    explanations = [Explanation.load(f / label) for f in folders]
    for e, f in zip(explanations, folders):  # paired by prompt against its own Ori regenerations
        e.metadata = paired_with_ori(e.metadata, json.loads((f / ORIGINAL_JSON).read_text())[ORI])
    values = {"seconds_mask": float(np.mean([e.metadata["seconds_mask"] for e in explanations])),
              "seconds_with_generation": float(np.mean([e.metadata["seconds_mask"] + e.metadata["seconds_generation"]
                                                        for e in explanations])),
              **truth_metrics(explanations, clips)}
    for key in COLUMNS:
        mean, se, _ = mean_se(e.metadata[key] for e in explanations)
        values[key], values[f"{key}_se"] = mean, se
    return values


def _main(argv: list[str]) -> None:
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    heldout_arguments(parser)
    parser.add_argument("--model", default="toysounds", choices=MODELS)
    parser.add_argument("--threads", type=whole(1), default=1)
    parser.add_argument("--checkpoint", type=existing("file"), default=None, help="amortised explainer (default: the shipped one)")
    parser.add_argument("--work", default=None, help="evaluation folder (default outputs/benchmarks/amortized[_MODEL])")
    parser.add_argument("--out", default=None, help="result JSON (default outputs/benchmarks/amortized[_MODEL].json)")
    args = parser.parse_args(argv)
    suffix = "" if args.model == "toysounds" else "_" + args.model.replace("toysounds-", "")
    args.work = args.work or f"outputs/benchmarks/amortized{suffix}"
    args.out = args.out or f"outputs/benchmarks/amortized{suffix}.json"
    torch.set_num_threads(args.threads)
    explainer = ExplainerConfig().for_model(args.model)  # the model's recommended settings (beta: 1e-3 / 1e-2)
    clips = heldout_clips(args.prompts, args.seed)
    prompts = [c.caption for c in clips]
    tag = load_model(args.model)
    options = {label: {**o, **({"checkpoint": args.checkpoint} if "amortized" in label and args.checkpoint else {})}
               for label, o in ROWS.items()}
    result = evaluate(tag, prompts, load_classifier("toysounds"), args.work, methods=list(ROWS), method_options=options,
                      explainer=explainer, batch_size=args.batch_size, seed=args.seed,
                      repeats=3, ori_repeats=5)
    folders = [Path(args.work) / "prompts" / prompt_folder_name(i, p) for i, p in enumerate(prompts)]
    rows = {label: row_values(label, clips, folders) for label in ROWS}
    print(f"\nAmortised vs per-prompt AudioGenX on {args.model} (beta {explainer.beta:g}): {len(prompts)} held-out "
          f"prompts, one evaluation run ({args.threads} thread(s); the same generations for every row; mean ± "
          "standard error)\n")

    def cell(v, key):
        se = v.get(f"{key}_se")
        return f"{v[key]:.3g}" if se is None or math.isnan(se) else f"{v[key]:.3g} ± {se:.2g}"
    print_table(["method", "s / explanation (mask only)", "s / explanation (with generation)", "AUC", "timing",
                 "FidF ↓", "FidCF ↑", "KLF ↓", "KLCF ↑", "Size", "FidF-Ori ↓", "KLF-Ori ↓"],
                [[label, f"{v['seconds_mask']:.4g}", f"{v['seconds_with_generation']:.4g}", f"{v['auc']:.3f}",
                  f"{v['timing']:.3f}", *(cell(v, k) for k in COLUMNS)] for label, v in rows.items()])
    per, amo, r10 = rows["audiogenx"], rows["audiogenx_amortized"], rows["amortized_refine10"]
    targets = {
        "amortised >= 100x faster (mask only)": per["seconds_mask"] / amo["seconds_mask"] >= 100,
        "amortised AUC within 0.02": abs(amo["auc"] - per["auc"]) <= 0.02,
        "amortised timing >= 0.90": amo["timing"] >= 0.90,
        "amortised FidCF >= 90 %": amo["fid_cf"] >= 0.9 * per["fid_cf"],
        "amortised KLCF >= 90 %": amo["kl_cf"] >= 0.9 * per["kl_cf"],
        "amortised FidF within one SE": amo["fid_f"] <= per["fid_f"] + per["fid_f_se"],
        "amortised KLF within one SE": amo["kl_f"] <= per["kl_f"] + per["kl_f_se"],
        "refine 10 at least as faithful on every column": all(
            (r10[k] <= per[k]) if k in ("fid_f", "kl_f") else (r10[k] >= per[k]) for k in ("fid_f", "fid_cf", "kl_f", "kl_cf")),
    }
    speedup = per["seconds_mask"] / amo["seconds_mask"]
    print(f"\nspeed-up of the mask, amortised vs per prompt: {speedup:.0f}x\n")
    print_table(["target", "met"], [[k, "yes" if v else "NO"] for k, v in targets.items()])
    write_result({"model": args.model, "beta": explainer.beta, "prompts": len(prompts), "seed": args.seed,
                  "threads": args.threads, "rows": rows,
                  "speedup_mask": speedup, "targets": targets, "computed": result.computed}, args.out)
    print(json.dumps(result.computed), file=sys.stderr)


main = entry_point(_main)  # lightning_agx.door: a bad option or value is one line and exit 2

if __name__ == "__main__":
    main()
