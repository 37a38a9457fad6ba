"""What every analysis shares: its command line, model loading, explaining, masked generation, the embedded
world's prompts, figures and tables.

An analysis is ``python -m analysis.<name> --config configs/analysis_<name>.yaml [--key value ...]``: a
dataclass holds its defaults (its model and explainer sections are the runs' own, `lightning_agx.config`), the
YAML says what differs, the command line overrides both; `command` parses it as every run is parsed.
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch

from lightning_agx.inputs import load_prompts
from lightning_agx.config import AmortizedConfig, ModelConfig, parse
from lightning_agx.explainer import ExplainerConfig
from lightning_agx.editing import generate_with_masks, padded_masks  # noqa: F401  re-exported for the analyses
from lightning_agx.explanation import Explanation, build_explanations, load_explanations
from lightning_agx.tables import markdown_table, write_csv

BASELINES = ("random", "gradcam_a", "gradcam_e", "atman", "chefer", "attention")


# ---------------------------------------------------------------------------------------------- config
@dataclass
class Common:
    """Options shared by the analyses (each analysis config is a subclass: ``--model.name debug --seed 1``)."""

    output_dir: str = "outputs/analysis"
    seed: int = 0
    threads: int = 1  # torch CPU threads (the machine is shared)
    classifier: str = "auto"  # auto: toysounds for the embedded/debug models, passt for real AudioGen
    explanations: str | None = None  # a folder written by `explain`: reuse its explanations, skip the explainer
    batch_size: int = 8  # prompts generated/explained at once
    # explanation method (lightning_agx.methods): the amortised AudioGenX explainer by default, one forward per
    # prompt, so the analyses run at the authors' explainer size; audiogenx: the per-prompt optimisation
    method: str = "audiogenx_amortized"
    model: ModelConfig = field(default_factory=ModelConfig)
    explainer: ExplainerConfig = field(default_factory=ExplainerConfig)  # authors' settings (per prompt, refining)
    amortized: AmortizedConfig = field(default_factory=AmortizedConfig)  # which amortised explainer, refinement


def command(cls, run):
    """An analysis' ``main(argv)``: its dataclass `cls` parsed like every run (`lightning_agx.config.parse`:
    ``--config file.yaml`` plus ``--a.b value`` overrides), then `run`."""
    def main(argv: list[str] | None = None):
        return run(parse(cls, argv))
    return main


def save_figure(fig, path: Path, dpi: int = 110) -> None:
    """Lay out, write and close a matplotlib figure."""
    import matplotlib.pyplot as plt
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)


def setup(common: Common) -> Path:
    torch.set_num_threads(max(1, common.threads))
    out = Path(common.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    return out


def log(message: str) -> None:
    print(f"[analysis] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------- models
def load_tag(config: ModelConfig):
    return config.load()


@torch.no_grad()
def event_probs(classifier, wav: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """``[B, C]`` per-label probabilities (sigmoid: the classifiers are multi-label, AudioSet-style)."""
    return torch.sigmoid(classifier.logits(wav.float().mean(1, keepdim=True) if wav.dim() == 3 else wav, sample_rate))


@torch.no_grad()
def class_logits(classifier, wav: torch.Tensor, sample_rate: int) -> torch.Tensor:
    return classifier.logits(wav.float().mean(1, keepdim=True) if wav.dim() == 3 else wav, sample_rate)


def label_index(labels: list[str], word: str) -> int | None:
    """The classifier label for a sound word: exact match, else the first label containing it."""
    low = [lab.lower() for lab in labels]
    if word.lower() in low:
        return low.index(word.lower())
    hits = [i for i, lab in enumerate(low) if word.lower() in lab]
    return hits[0] if hits else None


# ---------------------------------------------------------------------------------------------- explaining
def run_method(name: str, tag, generation, common: Common, seed: int | list[int]) -> torch.Tensor:
    """``[B, T, N]`` importance of every text token for every step (the AudioGenX methods with the analysis'
    explainer config, the amortised one with its `amortized` section)."""
    from lightning_agx.methods import is_audiogenx, run_method as run
    options = {"config": common.explainer} if is_audiogenx(name) else {}
    if name == "audiogenx_amortized":
        options.update(common.amortized.options())
    return run(name, tag, generation, seed=seed, **options)


def explain_prompts(tag, prompts: list[str], common: Common, method: str | None = None,
                    generation_seed: int | None = None) -> list[Explanation]:
    """Generate each prompt and explain it; explanations keep codes and decoded audio. Prompt i has its own
    seed, ``prompt_seed(seed, i)`` with `generation_seed` or the common seed (lightning_agx.seeding)."""
    from lightning_agx.seeding import prompt_seed
    method = method or common.method
    base = common.seed if generation_seed is None else generation_seed
    out = []
    for start in range(0, len(prompts), common.batch_size):
        chunk = prompts[start:start + common.batch_size]
        seeds = [prompt_seed(base, start + b) for b in range(len(chunk))]
        gen = tag.generate(chunk, seed=seeds, **common.model.generation())
        masks = run_method(method, tag, gen, common, seeds)  # [B, T, N]
        out += build_explanations(tag, gen, masks, method, {"model": tag.name}, tag.decode(gen.codes))
        log(f"{method}: explained {min(start + len(chunk), len(prompts))}/{len(prompts)} prompts")
    return out


def explanations_or_explain(tag, prompts: list[str], common: Common) -> list[Explanation]:
    if common.explanations:
        found = load_explanations(common.explanations)
        if not found:
            raise FileNotFoundError(f"no complete explanation under {common.explanations}; run `python train.py` "
                                    "(task explain) first or drop --common.explanations")
        log(f"loaded {len(found)} explanations from {common.explanations}")
        return found
    return explain_prompts(tag, prompts, common)


def generation_of(tag, explanations: list[Explanation]):
    """The `Generation` of the explanations' saved codes on `tag` (text re-encoded), to re-explain the same audio."""
    seeds = [e.metadata.get("seed") for e in explanations]  # a diffusion model re-derives its trajectory from them
    return tag.generation_from_codes([e.prompt for e in explanations], torch.stack([e.codes for e in explanations]),
                                     None if None in seeds else [int(s) for s in seeds])


# ---------------------------------------------------------------------------------------------- the embedded world
def analysis_prompts(config, split: str = "test") -> list[str]:
    """The prompts of an analysis: none when it reuses saved explanations, else the prompt file/list, else
    `num_prompts` distinct captions of the embedded world's `split`."""
    if config.explanations:
        return []
    if config.prompts_file or config.prompts:
        return load_prompts(config.prompts_file, config.prompts)
    return list(dict.fromkeys(c.caption for c in toy_clips(split, config.num_prompts, config.seed)))


def toy_clips(split: str, n: int, seed: int = 0, **kwargs):
    from lightning_agx.toyworld.dataset import make_split
    return make_split(split, n, seed=seed, **kwargs)


# ---------------------------------------------------------------------------------------------- tables
def write_table(rows: list[dict], folder: Path, name: str, digits: int = 4) -> str:
    """Write ``name.csv`` and return the same table as Markdown."""
    write_csv(rows, folder / f"{name}.csv")
    return markdown_table(rows, digits=digits) if rows else "_(empty)_\n"


def write_summary(folder: Path, summary: dict, readme: str) -> dict:
    """An analysis' results: ``README.md`` (what a reader sees) and ``summary.json`` (the numbers); returns
    the summary."""
    (folder / "README.md").write_text(readme)
    (folder / "summary.json").write_text(json.dumps(summary, indent=1, default=float))
    log(f"{summary.get('analysis', 'analysis')} written to {folder}")
    return summary


def command_line(module: str) -> str:
    return f"python -m {module} " + " ".join(sys.argv[1:])
