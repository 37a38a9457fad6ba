"""Where on its sampling trajectory the ToySounds diffusion model loses the weaker event of a pair.

    python benchmarks/toyworld_denoise_pairs.py [--model-dir DIR] [--split val | test] [--clips 200]
                                                [--starts 99 299 499 699 832 932 999] [--threads 1]

Real "X and/with/while Y" clips of `--split` go through the codec to the latent the model is trained on, are
noised to timestep t (the scheduler's forward process) and denoised from there with the model's own sampler
(DDIM, its guidance, the sampling steps of its trailing schedule that lie at or below t) with their caption;
t = 999 is pure noise, i.e. plain generation. Then: are both events in the classifier's top 3 of the decoded
audio? Also the one-shot prediction of the clean latent at t, decoded. Rows: the clean clips, their codec
round trip (the ceiling), then each t with its SNR. A model that renders pairs only when given much of the
clean latent loses the event while it decides the sound's structure (high noise), not while it refines it.
Prints a table, writes JSON.
"""
from __future__ import annotations

import copy
import time

import numpy as np
import torch

from benchmark_output import existing, whole, write_result  # benchmarks/benchmark_output.py, beside this script
from lightning_agx.door import ArgumentParser, entry_point
from lightning_agx.models.diffusers.denoiser import Conditions
from lightning_agx.toyworld.dataset import render_scene
from lightning_agx.toyworld.diffusion import load_toysounds_diffusion
from lightning_agx.toyworld.evaluate import both_in_top3, predict
from lightning_agx.toyworld.grammar import sample_scene
from lightning_agx.toyworld.load import load_toysounds


def rate(ok: list[bool]) -> dict:
    m = float(np.mean(ok))
    return {"value": round(m, 4), "se": round(float(np.sqrt(m * (1 - m) / len(ok))), 4)}


@torch.no_grad()
def denoise_from(tag, captions: list[str], x0: torch.Tensor, start: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """`x0` ``[B, C, L]`` (normalised latents) noised to timestep `start`, then (a) sampled back to a clean latent
    with the model's sampler over its schedule's steps at or below `start`, (b) predicted clean in one shot."""
    params = tag.generation_params
    steps, guidance = int(params["num_inference_steps"]), float(params["guidance_scale"])
    sched = copy.deepcopy(tag.scheduler)
    sched.set_timesteps(steps)
    timesteps = [t for t in sched.timesteps if int(t) <= start]
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(seed))
    t0 = torch.full((len(x0),), start, dtype=torch.long)
    latents = sched.add_noise(x0, noise, t0)
    text = tag.encode_text(captions)
    cond = tag.denoiser_conditions(text, 1, x0.shape[-1])
    both = Conditions.cat([tag.denoiser.unconditional(cond), cond])

    def guided(x, t):
        out = tag.denoiser(torch.cat([x, x]), torch.full((2 * len(x),), int(t)), both)
        uncond, conditional = out.chunk(2)
        return uncond + guidance * (conditional - uncond)

    alpha = sched.alphas_cumprod[start]
    v = guided(latents, start)
    one_shot = alpha.sqrt() * latents - (1 - alpha).sqrt() * v  # v-prediction -> x0
    for t in timesteps:
        latents = sched.step(guided(latents, t), t, latents).prev_sample
    return latents, one_shot


def _main(argv: list[str]) -> None:
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=existing("folder"), default=None, help="a build's --out folder (default: the shipped weights)")
    parser.add_argument("--split", default="val", choices=["val", "test"])
    parser.add_argument("--clips", type=whole(1), default=200)
    parser.add_argument("--starts", type=int, nargs="+", default=[99, 299, 499, 699, 832, 932, 999])
    parser.add_argument("--batch", type=whole(1), default=50)
    parser.add_argument("--threads", type=whole(1), default=1)
    parser.add_argument("--out", default=None, help="default outputs/benchmarks/toyworld_denoise_pairs[_test].json")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    t_all = time.time()
    toy = load_toysounds("cpu", args.model_dir) if args.model_dir else load_toysounds("cpu")
    tag = load_toysounds_diffusion("cpu", args.model_dir)
    model = tag.decoder.model  # ToyLatentDecoder: the diffusion model's latent statistics
    codec = toy.genmodel.compression_model
    prng, rng = np.random.default_rng([5, 99]), np.random.default_rng(7)
    scenes = [sample_scene(prng, args.split, kind="overlap") for _ in range(args.clips)]
    captions = [s.caption for s in scenes]
    wav = torch.from_numpy(np.stack([render_scene(rng, s)[None] for s in scenes])).float()
    samples = wav.shape[-1]

    def score(audio: torch.Tensor) -> dict:
        return rate(both_in_top3(predict(toy.classifier, audio[..., :samples]).numpy(), scenes))

    rows = [{"start": "clean", **score(wav)}]
    x0, decoded = [], []
    with torch.no_grad():
        for i in range(0, len(wav), args.batch):
            codes, scale = codec.encode(wav[i:i + args.batch])
            decoded.append(codec.decode(codes, scale))
            x0.append(model.normalise(codec.decode_latent(codes)))
    rows.append({"start": "codec round trip", **score(torch.cat(decoded))})
    x0 = torch.cat(x0)
    alphas = tag.scheduler.alphas_cumprod
    for start in args.starts:
        sampled, one_shot = [], []
        for i in range(0, len(x0), args.batch):
            s, o = denoise_from(tag, captions[i:i + args.batch], x0[i:i + args.batch], start, seed=start * 1000 + i)
            sampled.append(tag.decode(s))
            one_shot.append(tag.decode(o))
        snr = float(alphas[start] / (1 - alphas[start]))
        rows.append({"start": start, "snr": float(f"{snr:.3g}"), **score(torch.cat(sampled)),
                     "one_shot": score(torch.cat(one_shot))})
        print(f"t={start}: {rows[-1]}", flush=True)
    print(f"\n| start | SNR | both in top 3, denoised from there | one-shot clean prediction |\n|---|---:|---:|---:|")
    for r in rows:
        snr = f"{r['snr']:.3g}" if "snr" in r else "–"
        one = f"{r['one_shot']['value']:.3f}" if "one_shot" in r else "–"
        print(f"| {r['start']} | {snr} | {r['value']:.3f} ± {r['se']:.3f} | {one} |")
    result = {"split": args.split, "clips": args.clips, "model_dir": args.model_dir or "shipped", "rows": rows,
              "seconds": round(time.time() - t_all, 1), "threads": args.threads}
    suffix = "" if args.split == "val" else "_test"
    write_result(result, args.out or f"outputs/benchmarks/toyworld_denoise_pairs{suffix}.json")


main = entry_point(_main)  # lightning_agx.door: a bad option or value is one line and exit 2

if __name__ == "__main__":
    main()
