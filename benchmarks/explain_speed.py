"""Cost of an AudioGenX explanation: seconds and peak memory, split into generation, optimisation and decoding.

    # the embedded model, batched (the README's throughput table)
    python benchmarks/explain_speed.py --model toysounds --batch-sizes 1 8 16 32 --threads 1
    # the paper's Table 2 setting, side by side with AtMan, Grad-CAM-a and Chefer (on a GPU: unchanged)
    python benchmarks/explain_speed.py --model arch:audiogen-medium --duration 5 --batch-sizes 1
    # how cost grows with clip length and batch size
    python benchmarks/explain_speed.py --model arch:musicgen-small --scaling --epochs 2

Per configuration (batch size B, clip duration) it generates B distinct prompts (seeded), prepares the
optimisation (the unmasked target pass, the explainer's initialisation), runs `--epochs` AudioGenX optimisation
steps on them (`lightning_agx.explainer.MaskOptimization`, the step the main job runs)
and decodes the audio, timing each phase (CUDA synchronised), and reads the peak memory of the whole
explanation (`PeakMemory`: ``torch.cuda.max_memory_allocated`` on a GPU, the peak RSS increase on a CPU, above
the level before, so the model's own weights are not counted). With fewer than 50 epochs, the optimisation
at the authors' 50 steps is extrapolated: preparation + 50 x the measured per-step time (printed as such). The baselines (`--baselines`)
explain the same generation of the first configuration. The speed options (`--autocast`, `--tf32`,
`--compile`, `--checkpointing`; `lightning_agx.performance`) default to lightning_agx's defaults for the
device: all off on a CPU, bf16 autocast + TF32 (+ checkpointing of long passes) on CUDA.
``--ablation`` reruns the first configuration with each option flipped alone (on a GPU: with and without
bf16 autocast, TF32, torch.compile, checkpointing). ``--scaling`` measures every clip length of `--durations` at batch 1 and every batch size of
`--scaling-batch-sizes` at `--scaling-duration` (``--full-grid``: every pair); a configuration whose
explainer state alone (B per-step MLPs, their gradients and Adam moments) would exceed `--max-gb` is listed
as skipped. Prints Markdown tables and writes JSON (`--out`).
"""
from __future__ import annotations

import argparse
import platform
import sys
import time
import warnings
from dataclasses import replace

import torch

from benchmark_output import print_table, whole, write_result  # benchmarks/benchmark_output.py, beside this script
from lightning_agx.door import ArgumentParser, entry_point
from lightning_agx.evaluation.memory import PeakMemory
from lightning_agx.explainer import ExplainerConfig, MaskOptimization, make_optimizer
from lightning_agx.methods import run_method
from lightning_agx.models import load_model
from lightning_agx.performance import Performance
from lightning_agx.seeding import prompt_seed

WORDS = ["beep", "buzz", "chirp", "click", "hiss", "rumble", "whistle", "knock", "siren", "drip"]
AUTHORS_EPOCHS = 50


def prompts_for(count: int) -> list[str]:
    """`count` distinct prompts in the ToySounds vocabulary (any model tokenises them)."""
    pairs = [f"a {a} followed by a {b}" for a in WORDS for b in WORDS if a != b]
    return ([f"a loud {w}" for w in WORDS] + pairs)[:count]


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Timer:
    """Seconds of a block, CUDA work included."""

    def __init__(self, device: torch.device):
        self.device, self.seconds = device, 0.0

    def __enter__(self):
        synchronize(self.device)
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        synchronize(self.device)
        self.seconds = time.perf_counter() - self._start


def explainer_state_gb(tag, batch: int, duration: float, hidden: int = 512) -> float:
    """Memory of B per-step MLPs (first layer D x T*H dominates) with gradients and two Adam moments, float32."""
    return batch * tag.dim * tag.num_steps(duration) * hidden * 4 * 4 / 2**30


def measure_audiogenx(tag, batch: int, duration: float, epochs: int, seed: int = 0) -> tuple[dict, object]:
    """One AudioGenX explanation of `batch` prompts: phases timed, peak memory; returns (row, generation)."""
    device = tag.device
    prompts = prompts_for(batch)
    seeds = [prompt_seed(seed, i) for i in range(batch)]
    config = ExplainerConfig(epochs=epochs)
    with PeakMemory(device) as peak:
        with Timer(device) as generation_time, torch.no_grad():
            generation = tag.generate(prompts, duration=duration, seed=seeds)
        with Timer(device) as setup_time:  # the unmasked target pass and the explainer's initialisation
            run = MaskOptimization(tag, generation, config, seeds)
            optimizer = make_optimizer(run.explainer, config)
        with Timer(device) as steps_time:
            for _ in range(epochs):
                run.step(optimizer)
            run.keep_probabilities()
        with Timer(device) as decoding_time:
            tag.decode(generation.codes)
        del run, optimizer
    per_step = steps_time.seconds / epochs
    optimisation_50 = setup_time.seconds + (steps_time.seconds if epochs == AUTHORS_EPOCHS else per_step * AUTHORS_EPOCHS)
    total = generation_time.seconds + optimisation_50 + decoding_time.seconds
    row = {"batch": batch, "duration": duration, "steps": generation.num_steps, "epochs_run": epochs,
           "generation_s": generation_time.seconds / batch, "optimisation_setup_s": setup_time.seconds / batch,
           "optimisation_s_per_step": per_step / batch,
           "optimisation_s_50": optimisation_50 / batch, "decoding_s": decoding_time.seconds / batch,
           "total_s_50": total / batch, "prompts_per_s": batch / total, "peak_mb": peak.megabytes,
           "mb_per_explanation": peak.megabytes / batch}
    return row, generation


def measure_method(tag, generation, method: str) -> dict:
    """Seconds and peak memory per explanation of `method` on an existing generation (as Table 2)."""
    batch = len(generation.text)
    with PeakMemory(tag.device) as peak, Timer(tag.device) as timer:
        run_method(method, tag, generation, seed=generation.seeds)
    return {"method": method, "mask_s": timer.seconds / batch, "peak_mb": peak.megabytes,
            "mb_per_explanation": peak.megabytes / batch}


def warm_up(tag, duration: float, batch: int, performance: Performance) -> None:
    """One-time costs (tokenizer, allocator, kernels) out of the measurements: one step on a short clip, or, when
    compiling, on the measured shape itself (compilation takes tens of seconds per new shape)."""
    compiling = performance.resolve(tag.device).compile != "off"
    # compiling: two steps, as the first masked pass after the unmasked one recompiles (requires_grad changes)
    measure_audiogenx(tag, batch if compiling else 1, duration if compiling else min(duration, 0.5), 2 if compiling else 1)


def run_configurations(tag, configurations, epochs: int, max_gb: float) -> tuple[list[dict], object]:
    """The measured rows, and the first configuration's generation (the baselines explain it)."""
    rows, first = [], None
    for batch, duration in configurations:
        need = explainer_state_gb(tag, batch, duration)
        if need > max_gb:
            rows.append({"batch": batch, "duration": duration, "skipped": f"explainer state {need:.0f} GB > {max_gb:g}"})
            print(f"skip batch {batch} x {duration} s: explainer state alone {need:.1f} GB", file=sys.stderr)
            continue
        row, generation = measure_audiogenx(tag, batch, duration, epochs)
        first = generation if first is None else first
        rows.append(row)
        print(f"done batch {batch} x {duration} s: {row['total_s_50'] * batch:.1f} s", file=sys.stderr)
    return rows, first


def print_audiogenx(rows: list[dict], epochs: int) -> None:
    extrapolated = "" if epochs == AUTHORS_EPOCHS else f" (extrapolated from {epochs} steps)"
    header = ["prompts at once", "duration s", "T", "generation s", f"optimisation s, 50 steps{extrapolated}",
              "s / step", "decoding s", "total s", "prompts / s", "peak MB", "MB / explanation"]
    table = []
    for r in rows:
        if "skipped" in r:
            table.append([r["batch"], r["duration"], "", "skipped: " + r["skipped"]] + [""] * 7)
            continue
        table.append([r["batch"], r["duration"], r["steps"], f"{r['generation_s']:.3g}", f"{r['optimisation_s_50']:.3g}",
                      f"{r['optimisation_s_per_step']:.3g}", f"{r['decoding_s']:.3g}", f"{r['total_s_50']:.3g}",
                      f"{r['prompts_per_s']:.3g}", f"{r['peak_mb']:,.0f}", f"{r['mb_per_explanation']:,.0f}"])
    print("(seconds are per explanation)")
    print_table(header, table)


def print_methods(audiogenx: dict, rows: list[dict]) -> None:
    """The paper's Table 2 side by side: mask time per explanation (the generation is shared)."""
    first = [["audiogenx (50 steps)", f"{audiogenx['optimisation_s_50']:.3g}",
              f"{audiogenx['optimisation_s_50'] + audiogenx['generation_s']:.3g}",
              f"{audiogenx['mb_per_explanation']:,.0f}", "1"]]
    table = first + [[r["method"], f"{r['mask_s']:.3g}", f"{r['mask_s'] + audiogenx['generation_s']:.3g}",
                      f"{r['mb_per_explanation']:,.0f}", f"{audiogenx['optimisation_s_50'] / max(r['mask_s'], 1e-9):.3g}"]
                     for r in rows]
    print_table(["method", "s / explanation (mask)", "s / explanation (with generation)", "peak MB / explanation",
                 "AudioGenX / method"], table)


def ablation_variants(base: Performance, device: torch.device) -> list[tuple[str, Performance]]:
    """`base` (the defaults or the options given), then each option flipped alone against what it resolves to."""
    on = base.resolve(device)
    return [("as given", base),
            ("autocast " + ("off" if on.autocast else "bfloat16"), replace(base, autocast="off" if on.autocast else "bfloat16")),
            ("tf32 " + ("off" if on.tf32 else "on"), replace(base, tf32=not on.tf32)),
            ("compile " + ("off" if on.compile != "off" else "default"),
             replace(base, compile="off" if on.compile != "off" else "default")),
            ("checkpointing " + ("off" if on.checkpoint_tokens is not None else "on"),
             replace(base, checkpointing=on.checkpoint_tokens is None))]


def run_ablation(tag, base: Performance, batch: int, duration: float, epochs: int) -> list[dict]:
    """The first configuration with every option on and off (each flipped alone against `base`)."""
    rows = []
    for label, performance in ablation_variants(base, tag.device):
        tag.performance = performance
        warm_up(tag, duration, batch, performance)  # compilation and first passes out of the measurement
        row, _ = measure_audiogenx(tag, batch, duration, epochs)
        rows.append({"options": label, **performance.resolve(tag.device).describe(), **row})
        print(f"done ablation {label}: {row['total_s_50'] * batch:.1f} s", file=sys.stderr)
    tag.performance = base
    return rows


def print_ablation(rows: list[dict]) -> None:
    print_table(["options", "autocast", "tf32", "compile", "checkpointing", "s / step", "total s (50 steps)",
                 "peak MB / explanation"],
                [[r["options"], r["autocast"], r["tf32"], r["compile"], r["checkpointing"],
                  f"{r['optimisation_s_per_step']:.3g}", f"{r['total_s_50']:.3g}", f"{r['mb_per_explanation']:,.0f}"]
                 for r in rows])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="toysounds", help="toysounds, debug, arch:audiogen-medium, ...")
    parser.add_argument("--duration", type=float, default=None, help="seconds of audio (default: the model's)")
    parser.add_argument("--batch-sizes", "--sizes", type=whole(1), nargs="+", default=[1, 8, 32])
    parser.add_argument("--epochs", type=whole(1), default=AUTHORS_EPOCHS, help="optimisation steps actually run")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=whole(1), default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--autocast", choices=["bfloat16", "float16", "off"], default=None,
                        help="frozen LM's dtype (default: bf16 on CUDA, off on CPU)")
    parser.add_argument("--tf32", choices=["on", "off"], default=None)
    parser.add_argument("--compile", choices=["off", "default", "reduce-overhead", "max-autotune"], default=None)
    parser.add_argument("--checkpointing", choices=["on", "off"], default=None)
    parser.add_argument("--baselines", nargs="*", default=["atman", "gradcam_a", "chefer"],
                        help="methods explained on the first configuration's generation")
    parser.add_argument("--scaling", action="store_true", help="clip length x batch size instead of --batch-sizes")
    parser.add_argument("--durations", type=float, nargs="+", default=[1.0, 2.5, 5.0, 10.0])
    parser.add_argument("--scaling-batch-sizes", type=whole(1), nargs="+", default=[1, 4, 16])
    parser.add_argument("--scaling-duration", type=float, default=1.0, help="clip length of the batch-size sweep")
    parser.add_argument("--full-grid", action="store_true", help="--scaling: every (duration, batch size) pair")
    parser.add_argument("--ablation", action="store_true",
                        help="also run the first configuration with each speed option flipped alone")
    parser.add_argument("--max-gb", type=float, default=None,
                        help="skip configurations whose explainer state exceeds this (default: 60%% of the memory)")
    parser.add_argument("--seed", type=int, default=0, help="the random weights of an arch: model")
    parser.add_argument("--out", default=None, help="JSON file (default outputs/benchmarks/explain_speed_<model>.json)")
    return parser.parse_args(argv)


def default_max_gb(device: torch.device) -> float:
    if device.type == "cuda":
        return 0.6 * torch.cuda.get_device_properties(device).total_memory / 2**30
    import os
    return 0.6 * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30


def _main(argv: list[str]) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    on = {"on": True, "off": False, None: None}
    performance = Performance(autocast=args.autocast, tf32=on[args.tf32], compile=args.compile,
                              checkpointing=on[args.checkpointing])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the arch: random-weights warning is in the printed header instead
        tag = load_model(args.model, device=args.device, seed=args.seed, performance=performance)
    device = tag.device
    duration = args.duration or tag.duration
    resolved = performance.resolve(device)
    params = sum(p.numel() for p in tag.lm.parameters()) if hasattr(tag, "lm") else None
    max_gb = args.max_gb or default_max_gb(device)
    warm_up(tag, duration, args.batch_sizes[0], performance)
    if args.scaling:
        configurations = ([(b, d) for d in args.durations for b in args.scaling_batch_sizes] if args.full_grid else
                          [(1, d) for d in args.durations] + [(b, args.scaling_duration) for b in args.scaling_batch_sizes
                                                              if b != 1 or args.scaling_duration not in args.durations])
    else:
        configurations = [(b, duration) for b in args.batch_sizes]
    rows, generation = run_configurations(tag, configurations, args.epochs, max_gb)
    methods = []
    measured = [r for r in rows if "skipped" not in r]
    if args.baselines and measured and not args.scaling:  # on the first configuration's generation
        methods = [measure_method(tag, generation, m) for m in args.baselines]
    ablation = run_ablation(tag, performance, measured[0]["batch"], measured[0]["duration"], args.epochs) \
        if args.ablation and measured else []
    memory = "cuda max_memory_allocated" if device.type == "cuda" else "CPU peak RSS increase"
    machine = torch.cuda.get_device_name(device) if device.type == "cuda" else (platform.processor() or platform.machine())
    info = {"model": args.model, "random_weights": bool(getattr(tag, "random_weights", False)),
            "lm_parameters": params, "dim": tag.dim, "frame_rate": tag.frame_rate, "device": str(device),
            "machine": machine, "threads": torch.get_num_threads(), "torch": torch.__version__,
            "performance": resolved.describe(), "epochs": args.epochs, "memory": memory, "rows": rows,
            "methods": methods, "ablation": ablation, "command": " ".join(sys.argv)}
    weights = " (RANDOM weights: cost only)" if info["random_weights"] else ""
    print(f"\nAudioGenX cost: model={args.model}{weights} LM params={params / 1e6 if params else float('nan'):.4g} M "
          f"D={tag.dim} device={device} ({machine}) threads={info['threads']} performance={info['performance']} "
          f"memory={memory}\n")
    print_audiogenx(rows, args.epochs)
    if methods:
        print(f"\nSide by side (Table 2), batch {measured[0]['batch']}, {measured[0]['duration']} s:\n")
        print_methods(measured[0], methods)
    if ablation:
        print(f"\nEach speed option flipped alone (batch {measured[0]['batch']}, {measured[0]['duration']} s, "
              f"per explanation):\n")
        print_ablation(ablation)
    write_result(info, args.out or f"outputs/benchmarks/explain_speed_{args.model.replace(':', '_').replace('/', '_')}.json")


main = entry_point(_main)  # lightning_agx.door: a bad option or value is one line and exit 2

if __name__ == "__main__":
    main()
