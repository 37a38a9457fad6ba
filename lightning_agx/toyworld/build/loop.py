"""The one training loop every training stage of the build runs, with its learning-rate schedule, time budget,
checkpoints and logging.

A stage builds its model and optimizer, then hands :func:`train` a ``make_step(start)`` that sets up its data
streams for a run starting at step ``start`` (they are seeded with it, so a resumed run does not replay the
batches already seen) and returns the per-step loss function.
"""
from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from safetensors.torch import save_file

LOG_EVERY = 100  # steps between a log line and (resumable stages) a checkpoint

StepLoss = Callable[[], "tuple[torch.Tensor, tuple[torch.Tensor, ...]]"]  # () -> (loss, logged values)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def lr_at(step: int, total: int, peak: float, warmup: int = 100, floor: float = 0.05) -> float:
    """Linear warm-up to ``peak`` over ``warmup`` steps, then a cosine down to ``floor * peak`` at ``total``."""
    if step < warmup:
        return peak * (step + 1) / warmup
    frac = min(1.0, (step - warmup) / max(1, total - warmup))
    return peak * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * frac)))


class Budget:
    """How many steps a stage runs: at most ``steps``, and only what fits in ``budget_s`` seconds.

    Every ``probe`` steps of this run the planned total is re-planned to what the measured pace allows (never
    above ``steps``), so a stage stopped by its time budget still completes its learning-rate schedule (cosine
    down to the floor) instead of stopping half-way at a high learning rate, and a slow stretch (another job
    on the cores) shortens the plan only while it lasts."""

    def __init__(self, steps: int, budget_s: float, start: int, probe: int = 50):
        self.total, self.budget_s, self.start, self.probe = steps, budget_s, start, probe
        self.requested = steps
        self.t0 = time.time()
        self._last = 0.0  # elapsed seconds at the previous re-plan

    def running(self, step: int) -> bool:
        elapsed = time.time() - self.t0
        done = step - self.start
        if done and done % self.probe == 0 and step < self.requested:
            # re-plan from the slower of the average pace and the pace over the last `probe` steps
            pace = max(elapsed / done, (elapsed - self._last) / self.probe)
            self._last = elapsed
            self.total = min(self.requested, step + max(0, int((self.budget_s - elapsed) / pace)))
        return step < self.total and elapsed < self.budget_s


def ckpt_path(out: Path, stage: str) -> Path:
    """Where a resumable stage keeps its checkpoint: ``DIR/_build/ckpt_<stage>.pt``."""
    return out / "_build" / f"ckpt_{stage}.pt"


class EMA:
    """An exponential moving average of a model's floating-point state (parameters and buffers), the weights a
    diffusion model is usually sampled from: ``decay`` per step, warmed up as ``min(decay, (1 + step) / (10 +
    step))`` so the early, random weights fade fast. Other entries (integer buffers) are copied as they are."""

    def __init__(self, model: torch.nn.Module, decay: float):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"an EMA decay is in (0, 1), e.g. 0.999, not {decay}")
        self.decay = decay
        self.restart(model)

    def restart(self, model: torch.nn.Module) -> None:
        """Start the average over from `model`'s current state."""
        self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}

    def update(self, model: torch.nn.Module, step: int) -> None:
        keep = min(self.decay, (1 + step) / (10 + step))
        with torch.no_grad():
            for k, v in model.state_dict().items():
                if v.is_floating_point():
                    self.state[k].lerp_(v.detach(), 1.0 - keep)
                else:
                    self.state[k].copy_(v)


def save_ckpt(path: Path, step: int, model, opt, extra: dict | None = None):
    tmp = path.with_suffix(".tmp")
    torch.save({"step": step, "model": model.state_dict(), "opt": opt.state_dict(), **(extra or {})}, tmp)
    os.replace(tmp, path)


def load_ckpt(path: Path, model, opt, ema: EMA | None = None) -> int:
    """Restore ``model``, ``opt`` (and ``ema``) from ``path`` if it exists; the step to continue from (0 without
    one). A checkpoint saved without an average starts ``ema`` from the restored weights."""
    if not path.exists():
        return 0
    state = torch.load(path, weights_only=True)
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["opt"])
    if ema is not None and "ema" in state:
        ema.state = state["ema"]
    elif ema is not None:
        ema.restart(model)
    log(f"resuming {path.name} at step {state['step']}")
    return state["step"]


def save_weights(model, path: Path):
    save_state(model.state_dict(), path)


def save_state(state: dict[str, torch.Tensor], path: Path):
    state = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    tmp = path.with_name(path.name + ".tmp")
    save_file(state, str(tmp))
    os.replace(tmp, path)


def raw_weights(weights: Path) -> Path:
    """Where a stage trained with an EMA keeps its last step's weights: ``DIR/diffusion.safetensors`` ->
    ``DIR/_build/diffusion.raw.safetensors`` (not shipped; to compare the average with them)."""
    return weights.parent / "_build" / f"{weights.stem}.raw{weights.suffix}"


def recent_mean(values: list, width: int = 1) -> list[float]:
    """Mean of the last 100 logged values (rows of ``width`` numbers); NaN when nothing was logged."""
    return np.mean(values[-100:], axis=0).reshape(-1).tolist() if values else [float("nan")] * width


def train(stage: str, model: torch.nn.Module, opt: torch.optim.Optimizer, make_step: Callable[[int], StepLoss], *,
          metrics: tuple[str, ...], steps: int, budget_s: float, peak_lr: float, warmup: int, weights: Path,
          ckpt: Path | None = None, clip: float | None = None, t0: float | None = None,
          ema: float = 0.0) -> dict:
    """Train ``model`` for ``steps`` steps or what fits in ``budget_s`` seconds, then save it (eval mode) to
    ``weights``; returns the stage's report entry (steps run, planned and requested, seconds, final losses).

    ``make_step(start)`` -> ``step_loss()`` -> ``(loss, logged)``: ``loss`` is back-propagated, ``logged`` are
    the values named by ``metrics`` (logged as their mean over the last 100 steps; reported as ``final_<name>``).
    With ``ckpt`` the stage resumes from that checkpoint if it exists and saves one every ``LOG_EVERY`` steps.
    ``clip``: the gradient norm over the optimizer's parameters is clipped to it. ``t0``: when the stage began,
    if it did work of its own before training (counted in the reported seconds). ``ema``: a decay (0: none);
    ``weights`` then holds the exponential moving average of the weights (`EMA`, kept in the checkpoint, so a
    resumed run averages exactly as a straight one) and `raw_weights` the last step's."""
    average = EMA(model, ema) if ema else None
    start = load_ckpt(ckpt, model, opt, average) if ckpt is not None else 0
    step_loss = make_step(start)
    t0 = time.time() if t0 is None else t0
    params = [prm for group in opt.param_groups for prm in group["params"]]
    step, hist = start, []
    budget = Budget(steps, budget_s, start)
    while budget.running(step):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, budget.total, peak_lr, warmup=warmup)
        loss, logged = step_loss()
        opt.zero_grad()
        loss.backward()
        if clip is not None:
            torch.nn.utils.clip_grad_norm_(params, clip)
        opt.step()
        if average is not None:
            average.update(model, step)
        hist.append([v.item() for v in logged])
        step += 1
        if step % LOG_EVERY == 0:
            means = recent_mean(hist, len(metrics))
            log(f"{stage} step {step}/{budget.total} " + " ".join(f"{n} {m:.4f}" for n, m in zip(metrics, means)))
            if ckpt is not None:
                save_ckpt(ckpt, step, model, opt, None if average is None else {"ema": average.state})
    model.eval()
    if average is None:
        save_weights(model, weights)
    else:
        save_weights(model, raw_weights(weights))
        save_state(average.state, weights)
    finals = recent_mean(hist, len(metrics))
    return {"steps": step, "planned_steps": budget.total, "requested_steps": steps, "seconds": time.time() - t0,
            **{f"final_{n}": m for n, m in zip(metrics, finals)}}
