"""Cost of explaining a text-to-audio model: seconds and peak memory of every registered method, per prompt and
as a multiple of one generation of the same clip, with AudioGenX split into generation, optimisation, decoding.

    # the embedded model, batched (the README's throughput table)
    python benchmarks/explain_speed.py --model toysounds --batch-sizes 1 8 16 32 --threads 1
    # the paper's Table 2 setting: AudioGenX per prompt and amortised, and the baselines, on one generation
    python benchmarks/explain_speed.py --model arch:audiogen-medium --duration 5 --batch-sizes 1
    # chosen methods (any registered names, with a method's options as JSON)
    python benchmarks/explain_speed.py --model debug --methods audiogenx atman --method-options '{"atman": {}}'
    # how cost grows with clip length and batch size
    python benchmarks/explain_speed.py --model arch:musicgen-small --scaling --epochs 2

Everything goes through two interfaces: the model's (`lightning_agx.models.TAGModel`: `generate`, `decode`,
`num_steps`, `dim`, `latent_dim`, ``parameters()``; and `load_model`'s ``tag.performance`` for the speed options)
and the methods' (`lightning_agx.methods.make_method(name, options).prepare(tag).run(tag, generation, seeds)`).
No family internals are read, so any model `load_model` gives and any registered method is measured the same way.

Per configuration (batch size B, clip duration) it generates B distinct prompts (seeded), decodes them, and, when
a per-prompt optimised method (``Method.per_chunk_optimisation``: AudioGenX and its variants) is among
`--methods`, times its phases: preparation (the unmasked target pass, the explainer's initialisation), `--epochs`
optimisation steps and the final keep probabilities, with `lightning_agx.explainer.MaskOptimization` at the
method's own `explainer_config(tag)` (the very step the Lightning module and `optimize_masks` run; `Method.run`
has no per-step hook, so the steps cannot be timed through it). With fewer steps than the method's `epochs` (the
authors' 50), the optimisation is extrapolated: preparation + epochs x the measured per-step time + the final
pass (printed "extrapolated"). Every other method of `--methods` then runs once through `Method.run` on the first
configuration's generation (``prepare`` timed apart: it runs once per run, not per prompt).
``audiogenx_amortized`` without a shipped explainer for the model (and no ``checkpoint`` option) reads an
UNTRAINED `AmortizedExplainer` built for the model and saved in a temporary folder: its cost is a trained one's,
its explanations mean nothing (the table says so). Seconds are CUDA synchronised; the peak memory
(`PeakMemory`: ``torch.cuda.max_memory_allocated`` on a GPU, the peak RSS increase on a CPU) is above the level
before, so the model's own weights are not counted. The speed options (`--autocast`, `--tf32`, `--compile`,
`--checkpointing`; `lightning_agx.performance`) default to lightning_agx's defaults for the device: all off on a
CPU, bf16 autocast + TF32 (+ checkpointing of long passes) on CUDA.
``--ablation`` reruns the first configuration with each option flipped alone (on a GPU: with and without
bf16 autocast, TF32, torch.compile, checkpointing). ``--scaling`` measures every clip length of `--durations` at
batch 1 and every batch size of `--scaling-batch-sizes` at `--scaling-duration` (``--full-grid``: every pair;
the methods' table is not made); a configuration whose explainer state alone (B per-step MLPs, their gradients
and Adam moments) would exceed `--max-gb` is listed as skipped. Prints Markdown tables and writes JSON (`--out`).
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
import warnings
from dataclasses import replace
from pathlib import Path

import torch

from benchmark_output import print_table, whole, write_result  # benchmarks/benchmark_output.py, beside this script
from lightning_agx.door import ArgumentParser, entry_point
from lightning_agx.errors import UserError
from lightning_agx.evaluation.memory import PeakMemory
from lightning_agx.explainer import MaskOptimization, make_optimizer
from lightning_agx.methods import METHODS, available_methods, get_method, make_method
from lightning_agx.models import load_model
from lightning_agx.performance import Performance
from lightning_agx.seeding import prompt_seed

WORDS = ["beep", "buzz", "chirp", "click", "hiss", "rumble", "whistle", "knock", "siren", "drip"]
BASELINES = [name for name in available_methods() if not METHODS[name].reads_explainer]  # no explainer config
DEFAULT_METHODS = ["audiogenx", "audiogenx_amortized", *BASELINES]
UNTRAINED_HIDDEN = 128  # AmortizedExplainer's default width


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


# ---------------------------------------------------------------------- methods through their interface
def build_methods(names: list[str], options: dict[str, dict]):
    """The `Method` objects of `names` with their options (unknown names and options: one-line `UserError`)."""
    return {name: make_method(name, options.get(name)) for name in names}


def per_chunk(methods: dict) -> list[str]:
    return [name for name, method in methods.items() if method.per_chunk_optimisation]


def explainer_state_gb(tag, method, batch: int, duration: float) -> float:
    """Memory of B per-step MLPs (first layer D x T*H dominates) with gradients and two Adam moments, float32."""
    config = method.explainer_config(tag)
    mlps = tag.num_steps(duration) if config.per_step else 1
    return batch * tag.dim * mlps * config.hidden * 4 * 4 / 2**30


def untrained_amortized(tag, folder: Path) -> Path:
    """An untrained `AmortizedExplainer` for `tag` saved in `folder` (seeded, the global random state kept):
    what `audiogenx_amortized` reads, at a trained explainer's cost."""
    from lightning_agx.amortized.network import AmortizedExplainer
    from lightning_agx.amortized.store import save_explainer
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        explainer = AmortizedExplainer(tag.dim, UNTRAINED_HIDDEN, tag.latent_dim)
    return save_explainer(explainer, folder / "untrained_amortized.safetensors", tag,
                          {"note": "untrained, written by benchmarks/explain_speed.py to measure cost"})


def needs_untrained(tag, method) -> bool:
    """An amortised method with no checkpoint given, for a model with no shipped explainer."""
    if not isinstance(getattr(method, "options", None), get_method("audiogenx_amortized").Options):
        return False
    if method.options.checkpoint is not None:
        return False
    from lightning_agx.amortized.store import AmortizedCheckpointError, default_checkpoint
    try:
        return not default_checkpoint(tag.name).is_file()
    except AmortizedCheckpointError:
        return True


def measure_generation(tag, batch: int, duration: float, seed: int = 0):
    """B prompts generated (seeded) and decoded, timed: (generation, generation s, decoding s)."""
    seeds = [prompt_seed(seed, i) for i in range(batch)]
    with Timer(tag.device) as generation_time, torch.no_grad():
        generation = tag.generate(prompts_for(batch), duration=duration, seed=seeds)
    with Timer(tag.device) as decoding_time, torch.no_grad():
        tag.decode(generation.codes)
    return generation, generation_time.seconds, decoding_time.seconds


def measure_optimisation(tag, method, generation, steps: int) -> dict:
    """A per-chunk optimised method's phases on `generation` (`MaskOptimization` at the method's explainer config):
    preparation, `steps` steps, the final keep probabilities; its full `epochs` extrapolated from them."""
    batch = len(generation.text)
    config = method.explainer_config(tag)
    seeds = list(generation.seeds)
    with PeakMemory(tag.device) as peak:
        with Timer(tag.device) as setup_time:  # the unmasked target pass and the explainer's initialisation
            run = MaskOptimization(tag, generation, config, seeds)
            optimizer = make_optimizer(run.explainer, config)
        with Timer(tag.device) as steps_time:
            for _ in range(steps):
                run.step(optimizer)
        with Timer(tag.device) as final_time:
            p = run.keep_probabilities()
        shape = tuple(p.shape)
        del run, optimizer, p
    expected = (batch, generation.num_steps, generation.text.valid.shape[1])
    if shape != expected:
        raise RuntimeError(f"method '{method.name}' gave keep probabilities {shape}, expected {expected}")
    per_step = steps_time.seconds / steps
    full = setup_time.seconds + (steps_time.seconds if steps == config.epochs else per_step * config.epochs) \
        + final_time.seconds
    return {"epochs": config.epochs, "epochs_run": steps, "extrapolated": steps != config.epochs,
            "setup_s": setup_time.seconds / batch, "s_per_step": per_step / batch, "final_s": final_time.seconds / batch,
            "method_s": full / batch, "peak_mb": peak.megabytes, "mb_per_prompt": peak.megabytes / batch}


def measure_one_pass(tag, method, generation) -> dict:
    """A method's `prepare` (once) and `run` on `generation` (all its prompts at once), timed."""
    batch = len(generation.text)
    with Timer(tag.device) as prepare_time:
        method.prepare(tag)
    with PeakMemory(tag.device) as peak, Timer(tag.device) as timer:
        method.run(tag, generation, list(generation.seeds))
    return {"prepare_s": prepare_time.seconds, "method_s": timer.seconds / batch, "peak_mb": peak.megabytes,
            "mb_per_prompt": peak.megabytes / batch}


def measure_configuration(tag, method, batch: int, duration: float, steps: int) -> tuple[dict, object]:
    """Generation, decoding and (with a per-chunk `method`) its optimisation for `batch` prompts of `duration` s."""
    generation, generation_s, decoding_s = measure_generation(tag, batch, duration)
    row = {"batch": batch, "duration": duration, "steps": generation.num_steps,
           "generation_s": generation_s / batch, "decoding_s": decoding_s / batch}
    if method is not None:
        optimisation = measure_optimisation(tag, method, generation, steps)
        total = row["generation_s"] + optimisation["method_s"] + row["decoding_s"]
        row.update({"method": method.name, **optimisation, "total_s": total, "prompts_per_s": 1 / total})
    return row, generation


def warm_up(tag, method, duration: float, batch: int, performance: Performance) -> None:
    """One-time costs (tokenizer, allocator, kernels) out of the measurements: one step on a short clip, or, when
    compiling, on the measured shape itself (compilation takes tens of seconds per new shape)."""
    compiling = performance.resolve(tag.device).compile != "off"
    # compiling: two steps, as the first masked pass after the unmasked one recompiles (requires_grad changes)
    generation, _, _ = measure_generation(tag, batch if compiling else 1, duration if compiling else min(duration, 0.5))
    if method is not None:
        measure_optimisation(tag, method, generation, 2 if compiling else 1)


def run_configurations(tag, method, configurations, steps: int, max_gb: float) -> tuple[list[dict], object]:
    """The measured rows, and the first configuration's generation (the other methods explain it)."""
    rows, first = [], None
    for batch, duration in configurations:
        need = explainer_state_gb(tag, method, batch, duration) if method is not None else 0.0
        if need > max_gb:
            rows.append({"batch": batch, "duration": duration, "skipped": f"explainer state {need:.0f} GB > {max_gb:g}"})
            print(f"skip batch {batch} x {duration} s: explainer state alone {need:.1f} GB", file=sys.stderr)
            continue
        row, generation = measure_configuration(tag, method, batch, duration, steps)
        first = generation if first is None else first
        rows.append(row)
        print(f"done batch {batch} x {duration} s: {row.get('total_s', row['generation_s']) * batch:.1f} s",
              file=sys.stderr)
    return rows, first


def run_methods(tag, methods: dict, first_row: dict, generation, steps: int) -> list[dict]:
    """Every method on the first configuration's generation (the per-chunk one measured there reused)."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="explain_speed_") as folder:
        for name, method in methods.items():
            note = []
            if method.per_chunk_optimisation:
                measured = {k: first_row[k] for k in ("epochs", "epochs_run", "extrapolated", "setup_s", "s_per_step",
                                                      "final_s", "method_s", "peak_mb", "mb_per_prompt")} \
                    if first_row.get("method") == name else measure_optimisation(tag, method, generation, steps)
                measured["prepare_s"] = 0.0
                if measured["extrapolated"]:
                    note.append(f"extrapolated to {measured['epochs']} steps from {measured['epochs_run']}: "
                                f"{measured['setup_s']:.3g} s + {measured['epochs']} x {measured['s_per_step']:.3g} s")
                else:
                    note.append(f"{measured['epochs']} steps run")
            else:
                if needs_untrained(tag, method):
                    path = untrained_amortized(tag, Path(folder))
                    method = make_method(name, {**vars(method.options), "checkpoint": str(path),
                                                "config": method.config})
                    note.append(f"UNTRAINED explainer (D={tag.dim}, H={UNTRAINED_HIDDEN}) built in a temp folder: "
                                "no shipped one for this model; cost only")
                elif isinstance(method.options, get_method("audiogenx_amortized").Options):
                    note.append("shipped explainer" if method.options.checkpoint is None else
                                f"explainer {Path(method.options.checkpoint).name}")
                measured = measure_one_pass(tag, method, generation)
                if measured["prepare_s"] >= 0.01:
                    note.append(f"prepare once {measured['prepare_s']:.3g} s")
            rows.append({"method": name, **measured, "multiple": measured["method_s"] / first_row["generation_s"],
                         "note": "; ".join(note)})
            print(f"done {name}: {measured['method_s'] * len(generation.text):.1f} s", file=sys.stderr)
    return rows


# ---------------------------------------------------------------------- tables
def print_configurations(rows: list[dict]) -> None:
    timed = [r for r in rows if "method" in r]
    name = timed[0]["method"] if timed else None
    if name is None:
        header = ["prompts at once", "duration s", "T", "generation s", "decoding s"]
        table = [[r["batch"], r["duration"], r.get("steps", ""),
                  f"{r['generation_s']:.3g}" if "generation_s" in r else r.get("skipped", ""),
                  f"{r['decoding_s']:.3g}" if "decoding_s" in r else ""] for r in rows]
        print("(seconds per prompt)")
        print_table(header, table)
        return
    epochs = timed[0]["epochs"]
    extrapolated = f" (extrapolated from {timed[0]['epochs_run']} steps)" if timed[0]["extrapolated"] else ""
    header = ["prompts at once", "duration s", "T", "generation s", f"{name} s, {epochs} steps{extrapolated}",
              "setup s", "s / step", "decoding s", "total s", "x generation", "prompts / s", "peak MB",
              "MB / prompt"]
    table = []
    for r in rows:
        if "skipped" in r:
            table.append([r["batch"], r["duration"], "", "skipped: " + r["skipped"]] + [""] * 9)
            continue
        table.append([r["batch"], r["duration"], r["steps"], f"{r['generation_s']:.3g}", f"{r['method_s']:.3g}",
                      f"{r['setup_s']:.3g}", f"{r['s_per_step']:.3g}", f"{r['decoding_s']:.3g}", f"{r['total_s']:.3g}",
                      f"{r['method_s'] / r['generation_s']:.3g}", f"{r['prompts_per_s']:.3g}", f"{r['peak_mb']:,.0f}",
                      f"{r['mb_per_prompt']:,.0f}"])
    print("(seconds are per prompt; x generation: the method's seconds over one generation of the same clip)")
    print_table(header, table)


def print_methods(first_row: dict, rows: list[dict]) -> None:
    """Every method on the same generation: seconds per prompt and the multiple of one generation."""
    table = [["(one generation)", f"{first_row['generation_s']:.3g}", "1", "", ""]]
    table += [[r["method"], f"{r['method_s']:.3g}", f"{r['multiple']:.3g}", f"{r['mb_per_prompt']:,.0f}", r["note"]]
              for r in rows]
    print_table(["method", "s / prompt", "x one generation", "peak MB / prompt", "how"], table)


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


def run_ablation(tag, method, base: Performance, batch: int, duration: float, steps: int) -> list[dict]:
    """The first configuration with every option on and off (each flipped alone against `base`), through
    ``tag.performance`` (`load_model`'s speed options, changeable at any time)."""
    rows = []
    for label, performance in ablation_variants(base, tag.device):
        tag.performance = performance
        warm_up(tag, method, duration, batch, performance)  # compilation and first passes out of the measurement
        row, _ = measure_configuration(tag, method, batch, duration, steps)
        rows.append({"options": label, **performance.resolve(tag.device).describe(), **row})
        print(f"done ablation {label}: {row['total_s'] * batch:.1f} s", file=sys.stderr)
    tag.performance = base
    return rows


def print_ablation(rows: list[dict]) -> None:
    print_table(["options", "autocast", "tf32", "compile", "checkpointing", "s / step",
                 f"total s ({rows[0]['epochs']} steps)", "peak MB / prompt"],
                [[r["options"], r["autocast"], r["tf32"], r["compile"], r["checkpointing"],
                  f"{r['s_per_step']:.3g}", f"{r['total_s']:.3g}", f"{r['mb_per_prompt']:,.0f}"] for r in rows])


# ---------------------------------------------------------------------- command line
def method_name(text: str) -> str:
    """An argparse ``type``: a registered method name."""
    try:
        get_method(text)
    except UserError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


method_name.__name__ = "method name"


def method_options(text: str) -> dict:
    """An argparse ``type``: JSON mapping method names to their options."""
    try:
        value = json.loads(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"not JSON ({error})") from None
    if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
        raise argparse.ArgumentTypeError('give a JSON object of method name -> options, e.g. \'{"atman": {}}\'')
    return value


method_options.__name__ = "JSON options"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="toysounds", help="toysounds, debug, arch:audiogen-medium, ...")
    parser.add_argument("--duration", type=float, default=None, help="seconds of audio (default: the model's)")
    parser.add_argument("--batch-sizes", "--sizes", type=whole(1), nargs="+", default=[1, 8, 32])
    parser.add_argument("--methods", type=method_name, nargs="+", default=DEFAULT_METHODS,
                        help=f"registered methods, each timed on the same generation (default: "
                             f"{' '.join(DEFAULT_METHODS)}); available: {' '.join(available_methods())}")
    parser.add_argument("--method-options", type=method_options, default={},
                        help="JSON: method name -> its options (e.g. '{\"audiogenx_amortized\": {\"checkpoint\": "
                             "\"x.safetensors\"}}')")
    parser.add_argument("--epochs", type=whole(1), default=None,
                        help="optimisation steps actually run of a per-prompt optimised method (default: its own "
                             "epochs, the authors' 50); fewer are extrapolated to its epochs")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=whole(1), default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--autocast", choices=["bfloat16", "float16", "off"], default=None,
                        help="frozen LM's dtype (default: bf16 on CUDA, off on CPU)")
    parser.add_argument("--tf32", choices=["on", "off"], default=None)
    parser.add_argument("--compile", choices=["off", "default", "reduce-overhead", "max-autotune"], default=None)
    parser.add_argument("--checkpointing", choices=["on", "off"], default=None)
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
    args = parser.parse_args(argv)
    args.methods = list(dict.fromkeys(args.methods))
    unknown = sorted(set(args.method_options) - set(args.methods))
    if unknown:
        parser.error(f"argument --method-options: {', '.join(unknown)} not among --methods")
    return args


def default_max_gb(device: torch.device) -> float:
    if device.type == "cuda":
        return 0.6 * torch.cuda.get_device_properties(device).total_memory / 2**30
    import os
    return 0.6 * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30


def _main(argv: list[str]) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    methods = build_methods(args.methods, args.method_options)  # bad options: one line, before the model loads
    on = {"on": True, "off": False, None: None}
    performance = Performance(autocast=args.autocast, tf32=on[args.tf32], compile=args.compile,
                              checkpointing=on[args.checkpointing])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the arch: random-weights warning is in the printed header instead
        tag = load_model(args.model, device=args.device, seed=args.seed, performance=performance)
    if args.ablation and not hasattr(tag, "performance"):
        raise UserError(f"--ablation: model {args.model} has no speed options (tag.performance)")
    device = tag.device
    duration = args.duration or tag.duration
    resolved = performance.resolve(device)
    params = sum(p.numel() for p in tag.parameters())
    chunked = per_chunk(methods)
    timed = methods[chunked[0]] if chunked else None  # the per-chunk method timed at every configuration
    steps = args.epochs or (timed.explainer_config(tag).epochs if timed is not None else 1)
    max_gb = args.max_gb or default_max_gb(device)
    warm_up(tag, timed, duration, args.batch_sizes[0], performance)
    if args.scaling:
        configurations = ([(b, d) for d in args.durations for b in args.scaling_batch_sizes] if args.full_grid else
                          [(1, d) for d in args.durations] + [(b, args.scaling_duration) for b in args.scaling_batch_sizes
                                                              if b != 1 or args.scaling_duration not in args.durations])
    else:
        configurations = [(b, duration) for b in args.batch_sizes]
    rows, generation = run_configurations(tag, timed, configurations, steps, max_gb)
    measured = [r for r in rows if "skipped" not in r]
    method_rows = run_methods(tag, methods, measured[0], generation, steps) if measured and not args.scaling else []
    ablation = run_ablation(tag, timed, performance, measured[0]["batch"], measured[0]["duration"], steps) \
        if args.ablation and measured and timed is not None else []
    memory = "cuda max_memory_allocated" if device.type == "cuda" else "CPU peak RSS increase"
    machine = torch.cuda.get_device_name(device) if device.type == "cuda" else (platform.processor() or platform.machine())
    random_weights = bool(getattr(tag, "random_weights", False))  # load_model's flag for the arch: models
    info = {"model": args.model, "random_weights": random_weights, "parameters": params, "dim": tag.dim,
            "latent_dim": tag.latent_dim, "frame_rate": tag.frame_rate, "device": str(device), "machine": machine,
            "threads": torch.get_num_threads(), "torch": torch.__version__, "performance": resolved.describe(),
            "methods_requested": args.methods, "method_options": args.method_options, "steps_run": steps,
            "memory": memory, "rows": rows, "methods": method_rows, "ablation": ablation,
            "command": " ".join(sys.argv)}
    weights = " (RANDOM weights: cost only)" if random_weights else ""
    print(f"\nExplanation cost: model={args.model}{weights} params={params / 1e6:.4g} M D={tag.dim} device={device} "
          f"({machine}) threads={info['threads']} performance={info['performance']} memory={memory}\n")
    print_configurations(rows)
    if method_rows:
        print(f"\nEvery method on the same generation, batch {measured[0]['batch']}, {measured[0]['duration']} s "
              f"(T {measured[0]['steps']}), per prompt:\n")
        print_methods(measured[0], method_rows)
    if ablation:
        print(f"\nEach speed option flipped alone (batch {measured[0]['batch']}, {measured[0]['duration']} s, "
              f"per prompt):\n")
        print_ablation(ablation)
    write_result(info, args.out or f"outputs/benchmarks/explain_speed_{args.model.replace(':', '_').replace('/', '_')}.json")


main = entry_point(_main)  # lightning_agx.door: a bad option or value is one line and exit 2

if __name__ == "__main__":
    main()
