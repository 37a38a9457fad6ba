"""Train the ToySounds models from scratch: ``python -m lightning_agx.toyworld.build [--out DIR]``.

Stages (fixed seeds, each resumable): classifier -> codec -> codes (encode training clips) -> lm ->
decoder (fine-tune the codec's decoder only; codes unchanged, so it may also run beside lm) ->
robust (fine-tune the classifier on clean + codec-decoded clips) -> eval.
A stage whose finished weights exist in ``--out`` is skipped; a stage interrupted midway resumes from its
last checkpoint (``DIR/_build/ckpt_<stage>.pt``). Every training stage fits its share of
``--minutes-budget`` (of the time left, so what an earlier stage did not use goes to the later ones): as it
runs it measures its pace and shortens its planned steps (and so its cosine learning-rate schedule) to
what fits, so it ends annealed; the report gives requested and planned steps. Writes ``config.json``,
``{codec,lm,classifier}.safetensors`` and ``build_report.json`` (quality numbers and timings).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from lightning_agx.toyworld.dataset import N_SAMPLES, make_clip, split_rng, stack_audio
from lightning_agx.toyworld.grammar import KIND_PROBS, KINDS
from lightning_agx.toyworld.synth import EVENTS
from lightning_agx.toyworld.models import ToyConfig, build_classifier, build_codec, build_lm

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "assets" / "toysounds"
STAGE_SHARE = {"classifier": 0.08, "codec": 0.30, "codes": 0.05, "lm": 0.35, "decoder": 0.12, "robust": 0.05,
               "eval": 0.05}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def lr_at(step: int, total: int, peak: float, warmup: int = 100, floor: float = 0.05) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    frac = min(1.0, (step - warmup) / max(1, total - warmup))
    return peak * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * frac)))


class Budget:
    """How many steps a stage runs: at most ``steps``, and only what fits in ``budget_s`` seconds.

    Every ``probe`` steps of this run the planned total shrinks to what the measured pace allows, so
    a stage stopped by its time budget still completes its learning-rate schedule (cosine down to the
    floor) instead of stopping half-way at a high learning rate."""

    def __init__(self, steps: int, budget_s: float, start: int, probe: int = 50):
        self.total, self.budget_s, self.start, self.probe = steps, budget_s, start, probe
        self.t0 = time.time()
        self._last = 0.0  # elapsed seconds at the previous re-plan

    def running(self, step: int) -> bool:
        elapsed = time.time() - self.t0
        done = step - self.start
        if done and done % self.probe == 0 and step < self.total:
            # re-plan from the slower of the average pace and the pace over the last `probe` steps
            pace = max(elapsed / done, (elapsed - self._last) / self.probe)
            self._last = elapsed
            self.total = min(self.total, step + max(0, int((self.budget_s - elapsed) / pace)))
        return step < self.total and elapsed < self.budget_s


def stage_budget(stage: str, pending: list[str], seconds_left: float) -> float:
    """Seconds for ``stage``: its share of the time left among the stages still to run (``pending``, itself
    included), so time an earlier stage did not need goes to the later ones."""
    return seconds_left * STAGE_SHARE[stage] / sum(STAGE_SHARE[s] for s in pending)


class Pool:
    """A pool of training clips, refreshed every ``refresh`` draws (clip synthesis stays off the hot path).

    ``any_pairs``: draw the events of two-event scenes from all pairs, held-out ones included (the classifier
    is the world's evaluator, like PaSST: it must know every combination; only the LM's captions are split).
    """

    def __init__(self, rng: np.random.Generator, size: int, refresh: int, split: str = "train",
                 any_pairs: bool = False):
        self.rng, self.size, self.refresh, self.split, self.any_pairs = rng, size, refresh, split, any_pairs
        self.draws = 0
        self._fill()

    def _fill(self):
        self.clips = [self._clip() for _ in range(self.size)]
        self.audio = torch.from_numpy(stack_audio(self.clips))  # [P, 1, N]
        self.labels = torch.from_numpy(np.stack([c.labels for c in self.clips]))  # [P, E]

    def _clip(self):
        if not self.any_pairs:
            return make_clip(self.rng, self.split)
        kind = str(self.rng.choice(KINDS, p=KIND_PROBS))
        n = 1 if kind == "single" else 2
        events = tuple(str(e) for e in self.rng.choice(EVENTS, n, replace=False))
        return make_clip(self.rng, self.split, kind=kind, events=events)

    def batch(self, bs: int):
        if self.draws and self.draws % self.refresh == 0:
            self._fill()
        self.draws += 1
        idx = torch.from_numpy(self.rng.integers(0, self.size, bs))
        return self.audio[idx], self.labels[idx]


def _recent_mean(values: list, width: int = 1) -> list[float]:
    """Mean of the last 100 logged values (rows of ``width`` numbers); NaN when nothing was logged."""
    return np.mean(values[-100:], axis=0).reshape(-1).tolist() if values else [float("nan")] * width


def _stage_result(step: int, budget: Budget, steps: int, t0: float, **finals: float) -> dict:
    """What a training stage reports: steps run, planned and requested, wall seconds, final losses."""
    return {"steps": step, "planned_steps": budget.total, "requested_steps": steps, "seconds": time.time() - t0,
            **finals}


def _mel_loss(cfg: ToyConfig, device: str):
    """Multi-scale mel loss of the codec stages: scales 128..1024, measured to learn faster per CPU second than
    64..1024 at lr 3e-3 (lr 1e-3 stalled)."""
    from audiocraft.losses import MultiScaleMelSpectrogramLoss
    return MultiScaleMelSpectrogramLoss(cfg.sample_rate, range_start=7, range_end=11, n_mels=64).to(device)


def _crop_batch(pool: Pool, rng: np.random.Generator, crop: int, device: str) -> torch.Tensor:
    """16 pool clips cut to one random window of ``crop`` samples (the codec stages train on 0.5 s crops)."""
    wav, _ = pool.batch(16)
    off = int(rng.integers(0, N_SAMPLES - crop + 1))
    return wav[:, :, off:off + crop].to(device)


def _save_ckpt(path: Path, step: int, model, opt, extra: dict | None = None):
    tmp = path.with_suffix(".tmp")
    torch.save({"step": step, "model": model.state_dict(), "opt": opt.state_dict(), **(extra or {})}, tmp)
    os.replace(tmp, path)


def _load_ckpt(path: Path, model, opt) -> int:
    if not path.exists():
        return 0
    state = torch.load(path, weights_only=True)
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["opt"])
    log(f"resuming {path.name} at step {state['step']}")
    return state["step"]


def _save_weights(model, path: Path):
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tmp = path.with_name(path.name + ".tmp")
    save_file(state, str(tmp))
    os.replace(tmp, path)


def train_classifier(cfg: ToyConfig, out: Path, device: str, steps: int, budget_s: float, seed: int) -> dict:
    torch.manual_seed(seed)
    model = build_classifier(cfg).to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    ckpt = out / "_build" / "ckpt_classifier.pt"
    start = _load_ckpt(ckpt, model, opt)
    pool = Pool(np.random.default_rng([seed, start]), size=1000, refresh=150, any_pairs=True)
    t0, step, losses = time.time(), start, []
    budget = Budget(steps, budget_s, start)
    while budget.running(step):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, budget.total, 2e-3)
        wav, y = pool.batch(32)
        gain = 10 ** (torch.empty(wav.shape[0], 1, 1).uniform_(-3, 3) / 20)  # +-3 dB level jitter
        loss = F.binary_cross_entropy_with_logits(model((wav * gain).to(device)), y.to(device))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        step += 1
        if step % 100 == 0:
            log(f"classifier step {step}/{budget.total} bce {np.mean(losses[-100:]):.4f}")
            _save_ckpt(ckpt, step, model, opt)
    _save_weights(model.eval(), out / "classifier.safetensors")
    return _stage_result(step, budget, steps, t0, final_bce=_recent_mean(losses)[0])


def train_codec(cfg: ToyConfig, out: Path, device: str, steps: int, budget_s: float, seed: int) -> dict:
    torch.manual_seed(seed)
    model = build_codec(cfg).to(device).train()
    mel_loss = _mel_loss(cfg, device)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3, betas=(0.8, 0.99))
    ckpt = out / "_build" / "ckpt_codec.pt"
    start = _load_ckpt(ckpt, model, opt)
    rng = np.random.default_rng([seed, 1, start])
    pool = Pool(rng, size=600, refresh=200)
    crop = cfg.sample_rate // 2  # 0.5 s crops
    t0, step, hist = time.time(), start, []
    budget = Budget(steps, budget_s, start)
    while budget.running(step):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, budget.total, 3e-3, warmup=30)
        x = _crop_batch(pool, rng, crop, device)
        q = model(x)
        l1 = (q.x - x).abs().mean()
        msmel = mel_loss(q.x, x) / mel_loss.total
        loss = l1 + msmel + q.penalty
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        opt.step()
        hist.append([l1.item(), msmel.item(), q.penalty.item()])
        step += 1
        if step % 100 == 0:
            m = _recent_mean(hist, 3)
            log(f"codec step {step}/{budget.total} l1 {m[0]:.4f} mel {m[1]:.4f} commit {m[2]:.4f}")
            _save_ckpt(ckpt, step, model, opt)
    _save_weights(model.eval(), out / "codec.safetensors")
    l1, mel, commit = _recent_mean(hist, 3)
    return _stage_result(step, budget, steps, t0, final_l1=l1, final_mel=mel, final_commit=commit)


def finetune_decoder(cfg: ToyConfig, out: Path, device: str, steps: int, budget_s: float, seed: int) -> dict:
    """Train only the codec's decoder further (encoder and quantizer frozen, so the codes the LM learned stay
    valid): better audio from the same codes. Rewrites ``codec.safetensors``."""
    from lightning_agx.toyworld.load import load_state
    torch.manual_seed(seed)
    model = build_codec(cfg).to(device)
    load_state(model, out / "codec.safetensors")
    model.eval()  # frozen encoder + quantizer (no codebook EMA updates)
    model.decoder.train()
    for prm in list(model.encoder.parameters()) + list(model.quantizer.parameters()):
        prm.requires_grad_(False)
    mel_loss = _mel_loss(cfg, device)
    opt = torch.optim.Adam(model.decoder.parameters(), lr=2e-3, betas=(0.8, 0.99))
    ckpt = out / "_build" / "ckpt_decoder.pt"
    start = _load_ckpt(ckpt, model, opt)
    rng = np.random.default_rng([seed, 3, start])
    pool = Pool(rng, size=600, refresh=200)
    crop = cfg.sample_rate // 2
    t0, step, hist = time.time(), start, []
    budget = Budget(steps, budget_s, start)
    while budget.running(step):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, budget.total, 2e-3, warmup=20)
        x = _crop_batch(pool, rng, crop, device)
        with torch.no_grad():
            codes, scale = model.encode(x)
        y = model.decode(codes, scale)[..., :crop]
        l1 = (y - x).abs().mean()
        msmel = mel_loss(y, x) / mel_loss.total
        loss = l1 + msmel
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.decoder.parameters(), 10.0)
        opt.step()
        hist.append([l1.item(), msmel.item()])
        step += 1
        if step % 100 == 0:
            m = _recent_mean(hist, 2)
            log(f"decoder step {step}/{budget.total} l1 {m[0]:.4f} mel {m[1]:.4f}")
            _save_ckpt(ckpt, step, model, opt)
    _save_weights(model.eval(), out / "codec.safetensors")
    (out / "_build" / "decoder.done").write_text(str(step))
    l1, mel = _recent_mean(hist, 2)
    return _stage_result(step, budget, steps, t0, final_l1=l1, final_mel=mel)


def robust_classifier(cfg: ToyConfig, out: Path, device: str, steps: int, budget_s: float, seed: int) -> dict:
    """Fine-tune the classifier on clean clips mixed half and half with the same kind of clips passed through
    the trained codec (true labels), so that it judges decoded/generated audio by its events, not by codec
    artefacts (PaSST, the real evaluator, was trained on varied audio too). Rewrites ``classifier.safetensors``."""
    from lightning_agx.toyworld.load import load_state
    torch.manual_seed(seed)
    clf = build_classifier(cfg).to(device)
    load_state(clf, out / "classifier.safetensors")
    codec = build_codec(cfg).to(device)
    load_state(codec, out / "codec.safetensors")
    codec.eval()
    t0 = time.time()
    rng = np.random.default_rng([seed, 4])
    clean = Pool(rng, size=600, refresh=100, any_pairs=True)
    coded = Pool(rng, size=800, refresh=10 ** 9, any_pairs=True)
    with torch.no_grad():  # decode the second pool once
        for i in range(0, coded.size, 50):
            x = coded.audio[i:i + 50].to(device)
            codes, scale = codec.encode(x)
            coded.audio[i:i + 50] = codec.decode(codes, scale)[..., :x.shape[-1]].cpu()
    log(f"robust: decoded {coded.size} clips in {time.time() - t0:.0f} s")
    clf.train()
    opt = torch.optim.AdamW(clf.parameters(), lr=5e-4, weight_decay=1e-4)
    step, losses = 0, []
    budget = Budget(steps, budget_s - (time.time() - t0), 0)
    while budget.running(step):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, budget.total, 5e-4, warmup=20)
        (a, ya), (b, yb) = clean.batch(16), coded.batch(16)
        loss = F.binary_cross_entropy_with_logits(clf(torch.cat([a, b]).to(device)), torch.cat([ya, yb]).to(device))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        step += 1
        if step % 100 == 0:
            log(f"robust step {step}/{budget.total} bce {np.mean(losses[-100:]):.4f}")
    _save_weights(clf.eval(), out / "classifier.safetensors")
    (out / "_build" / "robust.done").write_text(str(step))
    return _stage_result(step, budget, steps, t0, final_bce=_recent_mean(losses)[0])


def _encode_clips(codec, rng: np.random.Generator, n: int, device: str, kind: str | None = None):
    """``n`` training clips (of ``kind``, or the world's mix) -> (int16 codes [n, K, T], captions)."""
    captions, codes = [], []
    with torch.no_grad():
        for i in range(0, n, 64):
            clips = [make_clip(rng, "train", kind=kind) for _ in range(min(64, n - i))]
            c, _ = codec.encode(torch.from_numpy(stack_audio(clips)).to(device))
            codes.append(c.cpu().to(torch.int16))
            captions += [cl.caption for cl in clips]
            if (i // 64) % 20 == 0:
                log(f"codes {kind or 'mix'} {i + len(clips)}/{n}")
    return torch.cat(codes), captions


def encode_codes(cfg: ToyConfig, out: Path, device: str, n_clips: int, seed: int, n_overlap: int = 0) -> dict:
    """Encode the LM's training set with the trained codec -> ``codes_train.pt`` (codes + captions):
    ``n_clips`` clips of the world's mix, then ``n_overlap`` extra "X and/with/while Y" clips (training pairs
    only). The extra overlap clips were measured to raise the LM's two-event adherence on held-out pairs
    where simply training longer on the mix did not (both events in the classifier's top 3, 600 prompts,
    ``benchmarks/toyworld_pairs.py``: 0.61 after 8,000 steps on the mix alone, 0.73 with them)."""
    from lightning_agx.toyworld.load import load_state
    codec = build_codec(cfg).to(device)
    load_state(codec, out / "codec.safetensors")
    codec.eval()
    t0 = time.time()
    codes, captions = _encode_clips(codec, split_rng("train", seed + 7), n_clips, device)
    if n_overlap:
        extra, extra_captions = _encode_clips(codec, split_rng("train", seed + 11), n_overlap, device, "overlap")
        codes, captions = torch.cat([codes, extra]), captions + extra_captions
    torch.save({"codes": codes, "captions": captions}, out / "_build" / "codes_train.pt")
    return {"clips": n_clips, "overlap_clips": n_overlap, "seconds": time.time() - t0}


def init_lm_from(lm, path: Path) -> None:
    """Start the LM from the weights in `path` (an earlier LM): text-table rows of words it did not have
    (appended at the end of the vocabulary) start as its <unk> row."""
    from safetensors.torch import load_file
    state = load_file(str(path))
    key = next(k for k in state if k.endswith("embed.weight") and "condition_provider" in k)
    old, new = state[key], lm.state_dict()[key]
    if old.shape[0] < new.shape[0]:
        grown = old[1:2].repeat(new.shape[0], 1)
        grown[:old.shape[0]] = old
        state[key] = grown
    lm.load_state_dict(state, strict=True)
    log(f"lm initialised from {path} ({old.shape[0]} -> {new.shape[0]} text rows)")


def train_lm(cfg: ToyConfig, out: Path, device: str, steps: int, budget_s: float, seed: int,
             init: Path | None = None, word_dropout: float = 0.2, lr: float = 1e-3, warmup: int = 200) -> dict:
    """Next-token training on the encoded clips, with lightning_agx's cross-attention (padding keys masked,
    as in every use of the model) and word dropout: each filler word becomes <unk> with probability
    `word_dropout`, so that words outside the vocabulary read as fillers. `init` starts from earlier weights."""
    from audiocraft.modules.conditioners import ConditioningAttributes

    from lightning_agx.models.attention import edit_cross_attention
    from lightning_agx.toyworld.grammar import filler_words
    from lightning_agx.toyworld.tokenizer import VocabTokenizer
    torch.manual_seed(seed)
    data = torch.load(out / "_build" / "codes_train.pt", weights_only=True)
    codes_all, captions = data["codes"].long(), data["captions"]
    tokenizer = VocabTokenizer(cfg.vocab)
    tokenizer.word_dropout, tokenizer.dropout_words = word_dropout, filler_words()
    tokenizer.generator = torch.Generator().manual_seed(seed + 3)
    lm = build_lm(cfg, tokenizer).to(device).train()
    if init is not None:
        init_lm_from(lm, init)
    opt = torch.optim.AdamW(lm.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=0.05)
    ckpt = out / "_build" / "ckpt_lm.pt"
    start = _load_ckpt(ckpt, lm, opt)
    rng = np.random.default_rng([seed, 2, start])
    t0, step, losses = time.time(), start, []
    budget = Budget(steps, budget_s, start)
    while budget.running(step):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, budget.total, lr, warmup=warmup)
        idx = rng.integers(0, len(captions), 32)
        codes = codes_all[torch.from_numpy(idx)].to(device)  # [B, K, T]
        conds = [ConditioningAttributes(text={"description": captions[i]}) for i in idx]
        with edit_cross_attention(lm):
            pred = lm.compute_predictions(codes, conds)
        valid = pred.mask  # [B, K, T]
        loss = F.cross_entropy(pred.logits[valid], codes[valid])
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(lm.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
        step += 1
        if step % 100 == 0:
            log(f"lm step {step}/{budget.total} ce {np.mean(losses[-100:]):.4f}")
            _save_ckpt(ckpt, step, lm, opt)
    _save_weights(lm.eval(), out / "lm.safetensors")
    return _stage_result(step, budget, steps, t0, final_ce=_recent_mean(losses)[0])


def _update_report(path: Path, stage: str, entry: dict, quality: dict | None) -> dict:
    """Re-read the report and set one stage (two builds of different stages may share ``--out``)."""
    report = json.loads(path.read_text()) if path.exists() else {}
    report.setdefault("stages", {})[stage] = entry
    if quality is not None:
        report["quality"] = quality
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(report, indent=1))
    os.replace(tmp, path)
    return report


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--minutes-budget", type=float, default=55.0, help="total wall-time budget, split over stages")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--stages", default="classifier,codec,codes,lm,decoder,robust,eval")
    p.add_argument("--classifier-steps", type=int, default=1500)
    p.add_argument("--codec-steps", type=int, default=3000)
    p.add_argument("--lm-steps", type=int, default=8000)
    p.add_argument("--decoder-steps", type=int, default=6000)
    p.add_argument("--robust-steps", type=int, default=600)
    p.add_argument("--lm-clips", type=int, default=10000)
    p.add_argument("--lm-overlap-clips", type=int, default=4000, help="extra two-event overlap clips for the LM")
    p.add_argument("--lm-init", type=Path, default=None, help="start the LM from these lm.safetensors (fine-tune)")
    p.add_argument("--lm-word-dropout", type=float, default=0.2, help="probability a filler word becomes <unk>")
    p.add_argument("--lm-lr", type=float, default=1e-3, help="peak learning rate of the LM")
    p.add_argument("--lm-warmup", type=int, default=200, help="warm-up steps of the LM")
    p.add_argument("--eval-clips", type=int, default=500)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    (out / "_build").mkdir(exist_ok=True)  # checkpoints and encoded codes (not shipped)
    cfg = ToyConfig()
    (out / "config.json").write_text(json.dumps(cfg.to_dict(), indent=1))
    report_path = out / "build_report.json"
    report = json.loads(report_path.read_text()) if report_path.exists() else {}
    report.setdefault("stages", {})
    cmd = "python -m lightning_agx.toyworld.build " + " ".join(argv if argv is not None else sys.argv[1:])
    budget = args.minutes_budget * 60
    stages = args.stages.split(",")
    unknown = [s for s in stages if s not in STAGE_SHARE]
    if unknown:
        raise SystemExit(f"unknown stage(s) {unknown}; available: {', '.join(STAGE_SHARE)}")
    t_all = time.time()
    done = {
        "classifier": (out / "classifier.safetensors").exists(),
        "codec": (out / "codec.safetensors").exists(),
        "codes": (out / "_build" / "codes_train.pt").exists(),
        "lm": (out / "lm.safetensors").exists(),
        "decoder": (out / "_build" / "decoder.done").exists(),
        "robust": (out / "_build" / "robust.done").exists(),
    }
    pending = [s for s in stages if not done.get(s)]
    for stage in stages:
        if done.get(stage):
            log(f"stage {stage}: finished weights found, skipped")
            continue
        b = stage_budget(stage, pending, budget - (time.time() - t_all))
        pending.remove(stage)
        log(f"stage {stage}: start (budget {b / 60:.1f} min)")
        if stage == "classifier":
            res = train_classifier(cfg, out, args.device, args.classifier_steps, b, args.seed)
        elif stage == "codec":
            res = train_codec(cfg, out, args.device, args.codec_steps, b, args.seed)
        elif stage == "codes":
            res = encode_codes(cfg, out, args.device, args.lm_clips, args.seed, args.lm_overlap_clips)
        elif stage == "decoder":
            res = finetune_decoder(cfg, out, args.device, args.decoder_steps, b, args.seed)
        elif stage == "robust":
            res = robust_classifier(cfg, out, args.device, args.robust_steps, b, args.seed)
        elif stage == "lm":
            res = train_lm(cfg, out, args.device, args.lm_steps, b, args.seed, init=args.lm_init,
                           word_dropout=args.lm_word_dropout, lr=args.lm_lr, warmup=args.lm_warmup)
        elif stage == "eval":
            from lightning_agx.toyworld.evaluate import evaluate_all
            t0 = time.time()
            res = evaluate_all(out, device=args.device, n_clips=args.eval_clips, seed=args.seed + 1000)
            res["seconds"] = time.time() - t0
            report["quality"] = res
        entry = {k: v for k, v in res.items() if k != "targets"} if stage != "eval" else {"seconds": res["seconds"]}
        entry["command"] = cmd
        log(f"stage {stage}: done {json.dumps(entry)}")
        report = _update_report(report_path, stage, entry, report.get("quality") if stage == "eval" else None)
    log(f"build finished in {(time.time() - t_all) / 60:.1f} min -> {out}")


if __name__ == "__main__":
    main()
