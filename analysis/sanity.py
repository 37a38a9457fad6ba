"""Model-randomisation sanity check (Adebayo et al. 2018), cascading from the top of the LM down.

The LM is deep-copied; step k re-initialises the top k transformer layers (layer L-1 first), and a last
step also re-initialises the embeddings, output heads and the text conditioner. After every step each
method re-explains the SAME generated audio (the original codes; the prompt re-encoded by the randomised
model), with the same seed. The explanation is compared with the trained model's one:

- Spearman rank correlation of the [T, N] maps (valid tokens) and of the audio-level token vectors;
- SSIM of the [T, N] maps, each min-max scaled to [0, 1] (3x3 windows, or smaller for short prompts).

A faithful method's explanation must change as the model it explains is destroyed. A method whose map
still correlates above ``fail_above`` (Spearman) with the trained-model explanation once the whole LM is
random FAILS the check. Re-initialisation (``reinit``): ``init`` uses each module's own initialiser
(``reset_parameters``: Linear, LayerNorm, Embedding; xavier-uniform for attention in-projections, zero
biases); ``normal`` draws N(0, s^2) with s the parameter's own standard deviation.

    python -m analysis.sanity --config configs/analysis_sanity.yaml
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from analysis.common import (analysis_prompts, BASELINES, Common, check_choice, check_prompt_fields,  # noqa: E402
                             explanations_or_explain, generation_of, load_tag, log, command, save_figure, method_of,
                             run_method,
                             saved_explanations, setup, write_summary, write_table)
from lightning_agx.errors import UserError  # noqa: E402
from lightning_agx.inputs import check_number  # noqa: E402

REINITS = ("init", "normal")


@dataclass
class SanityConfig(Common):
    """Cascading randomisation of the LM; how much each method's explanation changes."""

    output_dir: str = "outputs/analysis/sanity"
    methods: list[str] = field(default_factory=lambda: ["audiogenx", "audiogenx_amortized", *BASELINES])
    prompts_file: str | None = None
    prompts: list[str] = field(default_factory=list)
    num_prompts: int = 4  # embedded world: test-split captions when no prompts are given
    reinit: str = "init"  # init | normal
    fail_above: float = 0.5  # Spearman (T x N) with the trained explanation, fully randomised, above which a method fails

    def __post_init__(self) -> None:
        from lightning_agx.methods import check_methods
        super().__post_init__()
        for method in check_methods(self.methods):
            method_of(method, self)  # each method's options, from its section
        check_prompt_fields(self)
        check_choice(self.reinit, "reinit", REINITS)
        check_number(self.fail_above, "fail_above")


# ---------------------------------------------------------------------------------------------- re-initialisation
@torch.no_grad()
def reinitialize(module: nn.Module, how: str = "init", generator: torch.Generator | None = None) -> None:
    """Re-draw every parameter of `module` (see the module doc for ``init`` and ``normal``)."""
    if how not in REINITS:
        raise UserError(f"unknown reinit '{how}'; available: {', '.join(REINITS)}")
    if how == "normal":
        for p in module.parameters():
            std = float(p.float().std()) if p.numel() > 1 else 0.0
            std = std if std > 0 else 0.02
            p.copy_(torch.randn(p.shape, generator=generator) * std)
        return
    done = set()
    for sub in module.modules():
        if isinstance(sub, (nn.Linear, nn.LayerNorm, nn.Embedding, nn.Conv1d)) and hasattr(sub, "reset_parameters"):
            sub.reset_parameters()
            done.update(id(p) for p in sub.parameters(recurse=False))
    for name, p in module.named_parameters():
        if id(p) in done:
            continue
        if p.dim() >= 2:
            nn.init.xavier_uniform_(p)
        elif name.endswith("bias"):
            p.zero_()
        else:
            p.copy_(torch.randn(p.shape, generator=generator) * (float(p.std()) if p.numel() > 1 else 0.02))


# ---------------------------------------------------------------------------------------------- similarity
def spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    """Spearman rank correlation of two equally shaped tensors (average ranks for ties); 0 if one is constant."""
    from scipy.stats import spearmanr
    x, y = a.flatten().double().numpy(), b.flatten().double().numpy()
    if x.std() == 0 or y.std() == 0:
        return 0.0
    return float(spearmanr(x, y).statistic)


def ssim(a: torch.Tensor, b: torch.Tensor, window: int = 3) -> float:
    """Mean SSIM of two ``[T, N]`` maps, each min-max scaled to [0, 1], over (<= window) x (<= window) patches."""
    def scale(x):
        x = x.double()
        lo, hi = x.min(), x.max()
        return (x - lo) / (hi - lo) if hi > lo else torch.zeros_like(x)
    x, y = scale(a)[None, None], scale(b)[None, None]
    k = (min(window, a.shape[0]), min(window, a.shape[1]))
    pool = lambda t: F.avg_pool2d(t, k, stride=1)  # noqa: E731
    mx, my = pool(x), pool(y)
    vx, vy, cxy = pool(x * x) - mx ** 2, pool(y * y) - my ** 2, pool(x * y) - mx * my
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    value = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2))
    return float(value.mean())


def compare(original: torch.Tensor, current: torch.Tensor, valid: torch.Tensor) -> dict:
    """Mean similarity over prompts of masks ``[B, T, N]`` (valid tokens only)."""
    s, st, ss, spread = [], [], [], []
    for b in range(original.shape[0]):
        n = int(valid[b].sum())
        o, c = original[b, :, :n].float(), current[b, :, :n].float()
        s.append(spearman(o, c))
        st.append(spearman(o.mean(0), c.mean(0)))
        ss.append(ssim(o, c))
        spread.append(float(c.mean(0).std()) if n > 1 else 0.0)
    return {"spearman": float(np.mean(s)), "spearman_tokens": float(np.mean(st)), "ssim": float(np.mean(ss)),
            "token_std": float(np.mean(spread))}


# ---------------------------------------------------------------------------------------------- run
def run(config: SanityConfig) -> dict:
    prompts, saved = analysis_prompts(config), saved_explanations(config)  # read before the model loads
    tag = load_tag(config.model)
    out = setup(config)
    base = explanations_or_explain(tag, prompts, config, saved)  # fixes the audio: codes are re-explained at every step
    generation = generation_of(tag, base)
    methods, skipped = [], {}
    originals = {}
    for method in config.methods:
        try:
            originals[method] = run_method(method, tag, generation, config, config.seed).float().cpu()
            methods.append(method)
        except Exception as error:  # a baseline that does not apply to this model is reported, not fatal
            skipped[method] = f"{type(error).__name__}: {str(error)[:160]}"
            log(f"sanity: skipping {method} ({skipped[method]})")
    valid = generation.text.valid.cpu()
    # noise floor: the same method on the trained model with another seed (AudioGenX's Gumbel noise and init)
    floors = {m: compare(originals[m], run_method(m, tag, generation, config, config.seed + 1).float().cpu(),
                         valid) for m in methods}
    rows = [{"step": 0, "randomised": "none", "method": m, **compare(originals[m], originals[m], valid)} for m in methods]
    model = copy.deepcopy(tag)  # the trained model stays intact
    generator = torch.Generator().manual_seed(config.seed)
    for k, (name, modules) in enumerate(model.randomization_cascade(), start=1):
        for module in modules:
            reinitialize(module, config.reinit, generator)
        gen_k = generation_of(model, base)  # same codes; text re-encoded by the randomised conditioner
        for method in methods:
            mask = run_method(method, model, gen_k, config, config.seed).float().cpu()
            rows.append({"step": k, "randomised": f"up to {name}", "method": method, **compare(originals[method], mask, valid)})
        log(f"sanity: step {k} ({name}) done")
    last = max(r["step"] for r in rows)
    verdicts = []
    for method in methods:
        final = next(r for r in rows if r["method"] == method and r["step"] == last)
        fails = not (final["spearman"] <= config.fail_above)
        verdicts.append({"method": method, "other_seed_spearman": floors[method]["spearman"],
                         "final_spearman": final["spearman"], "final_ssim": final["ssim"],
                         "verdict": "FAILS (explanation barely changes when the model is random)" if fails else "passes"})
    curve(rows, methods, out / "sanity_curves.png")
    md_rows = write_table(rows, out, "sanity_steps")
    md_verdict = write_table(verdicts, out, "sanity_verdicts")
    text = [f"# Sanity check: cascading randomisation ({len(base)} prompts, reinit={config.reinit})\n",
            f"Step k re-initialises the top k transformer layers; the last step also the embeddings, heads and text "
            f"conditioner. A method fails when its Spearman correlation with the trained-model explanation stays "
            f"above {config.fail_above} once everything is random. `other_seed_spearman`: the same method on the trained "
            f"model with another seed (its own run-to-run agreement, the ceiling for the curves).\n", "## Verdicts\n", md_verdict,
            "\n![curves](sanity_curves.png)\n", "\n## Every step\n", md_rows]
    if skipped:
        text += ["\n## Skipped methods\n"] + [f"- {m}: {why}" for m, why in skipped.items()]
    summary = {"analysis": "sanity", "prompts": len(base), "verdicts": verdicts, "skipped": skipped,
               "steps": rows}
    return write_summary(out, summary, "\n".join(text) + "\n")


def curve(rows: list[dict], methods: list[str], path) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), sharex=True)
    labels = {r["step"]: r["randomised"].replace("up to ", "") for r in rows}
    steps = sorted(labels)
    for method in methods:
        sel = sorted((r for r in rows if r["method"] == method), key=lambda r: r["step"])
        style = dict(lw=2.5, color="black") if method == "audiogenx" else dict(lw=1.2)
        for ax, key in zip(axes, ("spearman", "ssim")):
            ax.plot([r["step"] for r in sel], [r[key] for r in sel], marker="o", label=method, **style)
    for ax, title in zip(axes, ("Spearman rank correlation with trained-model explanation", "SSIM with trained-model explanation")):
        ax.set_xticks(steps, [labels[s] for s in steps], rotation=35, ha="right", fontsize=7)
        ax.set_ylim(-0.3 if title.startswith("Spearman") else 0, 1.05)
        ax.axhline(0, color="grey", lw=0.5)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("re-initialised (cumulative, top first)", fontsize=8)
    axes[1].legend(fontsize=7, loc="upper right")
    save_figure(fig, path)


main = command(SanityConfig, run)


if __name__ == "__main__":
    main()
