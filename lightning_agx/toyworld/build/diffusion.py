"""Stages ``diffusion`` and ``diffusion_eval``: the ToySounds diffusion model (`lightning_agx.toyworld.diffusion`)
trained on the clips the ``codes`` stage encoded (the LM's training set, as quantised codec latents), then the
same model checks as the LM's on held-out prompts."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch

from lightning_agx.toyworld.build.loop import ckpt_path, log, train
from lightning_agx.toyworld.diffusion import CONFIG, WEIGHTS, DiffusionConfig, ToyDiffusion, build_scheduler
from lightning_agx.toyworld.models import ToyConfig, build_codec


@torch.no_grad()
def training_latents(cfg: ToyConfig, out: Path, device: str) -> tuple[torch.Tensor, list[str]]:
    """The encoded training clips as the codec's quantised latents ``[n, 64, 75]`` (float16) and captions."""
    from lightning_agx.toyworld.load import load_state
    data = torch.load(out / "_build" / "codes_train.pt", weights_only=True)
    codec = build_codec(cfg).to(device)
    load_state(codec, out / "codec.safetensors")
    codec.eval()
    codes = data["codes"].long()
    latents = torch.cat([codec.decode_latent(codes[i:i + 512].to(device)).cpu().half()
                         for i in range(0, len(codes), 512)])
    return latents, list(data["captions"])


def filler_masks(model: ToyDiffusion, prompts: list[str | None], p: float, rng: np.random.Generator):
    """A block in which `model`'s text cross-attention is edited as AudioGenX edits it (post-softmax, Eq. 2 and
    4, `lightning_agx.models.diffusers.attention`): each filler token of each prompt (the world's filler words,
    whether or not word dropout made them <unk>) is, with probability `p`, scaled by a uniform draw in [0, 1]
    at every frame; other tokens and the unconditional rows keep weight 1."""
    from lightning_agx.models.attention import CrossAttentionEdit
    from lightning_agx.models.diffusers.attention import AttentionState, edited_attention
    from lightning_agx.toyworld.grammar import filler_words
    width = model.tokenizer.max_length
    words = filler_words()
    is_filler = torch.zeros(len(prompts), width, dtype=torch.bool)
    for i, prompt in enumerate(prompts):
        if prompt is not None:
            for j, w in enumerate(model.tokenizer.words(prompt)[:width]):
                is_filler[i, j] = w in words
    draw = torch.from_numpy(rng.random((len(prompts), width)) < p)
    scale = torch.from_numpy(rng.random((len(prompts), width))).float()
    mask = torch.where(is_filler & draw, scale, torch.ones_like(scale))
    frames = model.cfg.frames
    mask = mask[:, None, :].expand(-1, frames, -1).to(model.text.embed.weight.device)
    dit = model.dit()
    state = AttentionState(CrossAttentionEdit(post_softmax=mask), torch.arange(len(prompts)), frames,
                           text_keys=width, query_offset=dit.query_offset)
    return edited_attention(dit.attention_model, state, dit.cross_names)


def draw_clips(rng: np.random.Generator, n_clips: int, batch: int, sequences: np.ndarray, n_seq: int) -> np.ndarray:
    """A batch's clip indices: uniform over the `n_clips`, the first `n_seq` drawn from `sequences` instead."""
    idx = rng.integers(0, n_clips, batch)
    if n_seq:
        idx[:n_seq] = sequences[rng.integers(0, len(sequences), n_seq)]
    return idx


def draw_timesteps(rng: np.random.Generator, timesteps: int, batch: int, n_pure: int) -> np.ndarray:
    """A batch's training timesteps: uniform over ``[0, timesteps)``, the last `n_pure` at ``timesteps - 1``."""
    t = rng.integers(0, timesteps, batch)
    t[batch - n_pure:] = timesteps - 1
    return t


def train_diffusion(cfg: ToyConfig, out: Path, device: str, steps: int, budget_s: float, seed: int,
                    batch: int = 32, lr: float = 1e-3, warmup: int = 300, word_dropout: float = 0.2,
                    text_layers: int = 2, position_channels: int = 0, filler_mask: float = 0.0,
                    pure_noise: float = 0.0, sequence_share: float = 0.0, layers: int = 4, heads: int = 4,
                    ema: float = 0.0) -> dict:
    """v-prediction training (MSE, uniform timesteps), classifier-free guidance dropout (text -> zeros), word
    dropout of fillers as the LM's, and `filler_mask`: the probability that a filler token's cross-attention
    weights are scaled, after the softmax and in every layer, by a uniform draw in [0, 1] (the explainer's own
    intervention, `filler_masks`), with the same target: fillers carry no sound in the world.
    `pure_noise`: the share of each batch trained at the last timestep (pure noise, where sampling starts and
    where only the text can say which sound goes where: uniform timesteps put 6% of a batch below SNR 0.01).
    `sequence_share`: the share of each batch drawn from the "X followed by|then Y" clips (19% of the codes
    stage's clips) rather than from all of them. `layers` and `heads` size the DiT (width: heads x 32).
    `ema`: the decay of an exponential moving average of the weights, which are then what is saved (0: the last
    step's). Writes ``diffusion.json`` (with the latent statistics) and ``diffusion.safetensors``."""
    from lightning_agx.toyworld.grammar import caption_kind, filler_words
    for name, share in (("pure_noise", pure_noise), ("sequence_share", sequence_share)):
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"{name} is a share of each batch: give a number in [0, 1], not {share}")
    if ema and not 0.0 < ema < 1.0:
        raise ValueError(f"ema is the decay of a moving average of the weights: give a number in (0, 1) such as "
                         f"0.999, or 0 for none, not {ema}")
    t0 = time.time()
    torch.manual_seed(seed)
    latents, captions = training_latents(cfg, out, device)
    sequences = np.array([i for i, c in enumerate(captions) if caption_kind(c) == "sequence"])
    n_seq, n_pure = round(batch * sequence_share), round(batch * pure_noise)
    if n_seq and not len(sequences):
        raise ValueError("sequence_share > 0 but the training clips hold no \"X followed by|then Y\" caption; "
                         "set sequence_share to 0")
    flat = latents.float().transpose(0, 1).reshape(latents.shape[1], -1)
    dcfg = DiffusionConfig(vocab=list(cfg.vocab), latent_dim=latents.shape[1], frames=latents.shape[2],
                           text_layers=text_layers, position_channels=position_channels, layers=layers, heads=heads,
                           latent_mean=flat.mean(1).tolist(), latent_std=flat.std(1).clamp_min(1e-3).tolist())
    (out / CONFIG).write_text(json.dumps(dcfg.to_dict(), indent=1))
    log(f"diffusion: {len(captions)} training latents {tuple(latents.shape[1:])}")
    model = ToyDiffusion(dcfg).to(device).train()
    model.tokenizer.word_dropout, model.tokenizer.dropout_words = word_dropout, filler_words()
    model.tokenizer.generator = torch.Generator().manual_seed(seed + 3)
    scheduler = build_scheduler(dcfg)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.99), weight_decay=0.01)

    def make_step(start: int):
        rng = np.random.default_rng([seed, 5, start])
        noise_stream = torch.Generator().manual_seed(int(rng.integers(2 ** 62)))

        def step_loss():
            idx = draw_clips(rng, len(captions), batch, sequences, n_seq)
            x0 = model.normalise(latents[torch.from_numpy(idx)].float()).to(device)
            prompts = [None if drop else captions[i] for i, drop in zip(idx, rng.random(batch) < dcfg.cfg_dropout)]
            t = torch.from_numpy(draw_timesteps(rng, dcfg.train_timesteps, batch, n_pure)).long()
            noise = torch.randn(x0.shape, generator=noise_stream).to(device)
            xt = scheduler.add_noise(x0, noise, t.to(device))
            target = scheduler.get_velocity(x0, noise, t.to(device))
            text = model.encode_text(prompts)
            if filler_mask > 0:
                with filler_masks(model, prompts, filler_mask, rng):
                    pred = model.predict(xt, t.to(device), text)
            else:
                pred = model.predict(xt, t.to(device), text)
            loss = (pred - target).pow(2).mean()
            return loss, (loss,)
        return step_loss

    result = train("diffusion", model, opt, make_step, metrics=("mse",), steps=steps, budget_s=budget_s,
                   peak_lr=lr, warmup=warmup, weights=out / WEIGHTS, ckpt=ckpt_path(out, "diffusion"), clip=1.0,
                   t0=t0, ema=ema)
    return {**result, "clips": len(captions), "batch": batch, "ema": ema, "layers": layers, "heads": heads,
            "parameters": sum(p.numel() for p in model.parameters()),
            "megabytes": round((out / WEIGHTS).stat().st_size / 2 ** 20, 2)}


@torch.no_grad()
def evaluate_diffusion(cfg: ToyConfig, out: Path, device: str, n_prompts: int, seed: int, batch: int = 50,
                       split: str = "test", guidance: float | None = None) -> dict:
    """The LM's three model checks (`lightning_agx.toyworld.evaluate.evaluate_lm`: single-event top-1, two-event
    top-3, "X followed by Y" order) on audio the diffusion model generates for held-out prompts, through its
    adapter (`load_toysounds_diffusion`). `split` "val" and `guidance` (classifier-free guidance; None: the
    model's) tune sampling without looking at the test prompts (`benchmarks/toyworld_diffusion.py`)."""
    from lightning_agx.toyworld.diffusion import load_toysounds_diffusion
    from lightning_agx.toyworld.evaluate import TARGETS, evaluate_lm, generate_tag
    from lightning_agx.toyworld.load import load_state
    from lightning_agx.toyworld.models import build_classifier
    t0 = time.time()
    classifier = build_classifier(cfg).to(device).eval()
    load_state(classifier, out / "classifier.safetensors")
    tag = load_toysounds_diffusion(device, out)  # generated as every user of the model generates
    counter = iter(range(10 ** 9))
    overrides = {} if guidance is None else {"guidance_scale": float(guidance)}

    def generate_fn(captions: list[str]) -> torch.Tensor:
        seeds = [seed * 100_003 + next(counter) for _ in captions]
        return generate_tag(tag, captions, seeds, batch, **overrides)[..., :int(cfg.duration * cfg.sample_rate)]

    res = evaluate_lm(None, classifier, n_prompts=n_prompts, seed=seed, split=split, generate_fn=generate_fn)
    keys = ("lm_single_top1", "lm_pair_top3", "lm_sequence_order")
    res = {k.replace("lm_", "diffusion_"): v for k, v in res.items()}
    res["targets"] = {k.replace("lm_", "diffusion_"): TARGETS[k] for k in keys}
    res["passed"] = {k: bool(res[k] >= v) for k, v in res["targets"].items()}
    res["n_prompts"], res["split"], res["seconds"] = n_prompts, split, time.time() - t0
    res["guidance"] = tag.generation_params["guidance_scale"] if guidance is None else float(guidance)
    log(f"diffusion checks: " + ", ".join(f"{k} {res[k]:.3f}" for k in res["targets"]))
    return res
