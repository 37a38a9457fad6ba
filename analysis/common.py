"""What every analysis shares: its command line, model loading, explaining, masked generation, the embedded
world's prompts, figures and tables.

An analysis is ``python -m analysis.<name> --config configs/analysis_<name>.yaml [--key value ...]``: a
dataclass holds its defaults (its model and explainer sections are the runs' own, `lightning_agx.config`), the
YAML says what differs, the command line overrides both; `command` parses it as every run is parsed, behind
`lightning_agx.door`. A user's mistake is one line and exit 2 before any model loads or any file is written: each
config checks its own fields (`Common.__post_init__` the shared ones, each analysis' subclass its own), the
prompts and saved explanations are read before the model loads, and `setup` creates the output folder after.
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch

from lightning_agx.config import AmortizedConfig, ModelConfig, check_output_dir, parse
from lightning_agx.door import entry_point
from lightning_agx.errors import UserError
from lightning_agx.inputs import check_batch_size, check_int, check_number, check_seed, ensure_writable, load_prompts
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

    def __post_init__(self) -> None:
        """Each shared field checked before anything loads or is written (one-line `UserError`s); the output
        folder is created, and its writability tried, by `setup` once the model has loaded."""
        from lightning_agx.classifiers import CLASSIFIERS
        from lightning_agx.methods import check_methods
        check_output_dir(self.output_dir)
        check_seed(self.seed)
        check_int(self.threads, "threads", low=1)
        check_batch_size(self.batch_size)
        check_choice(self.classifier, "classifier", CLASSIFIERS)
        if self.explanations is not None:
            if not isinstance(self.explanations, str) or not Path(self.explanations).is_dir():
                raise UserError(f"--explanations {self.explanations} is not a folder; give the output_dir of a run of "
                                "`python train.py` (task explain)")
        check_methods([self.method])
        method_of(self.method, self)  # its options, from the section that holds them (e.g. --amortized.*)


def check_choice(value, name: str, choices) -> str:
    """`value` one of `choices`; else a one-line `UserError` listing them."""
    if not isinstance(value, str) or value not in choices:
        raise UserError(f"{name} must be one of {', '.join(choices)}; got {value!r}")
    return value


def check_prompt_fields(config) -> None:
    """The prompt fields of an analysis (``prompts_file``, ``prompts``, ``num_prompts``), checked at once: the
    file exists (it is read by `analysis_prompts`, still before any model loads), the list is a list."""
    if config.prompts_file is not None and not Path(config.prompts_file).is_file():
        raise UserError(f"prompt file {config.prompts_file} does not exist; give a .txt (one prompt per line) or "
                        ".csv file with --prompts_file")
    if isinstance(config.prompts, str) or not isinstance(config.prompts, list):
        raise UserError(f"prompts must be a list of prompts, e.g. --prompts '[\"a beep\"]'; got {config.prompts!r}")
    check_int(config.num_prompts, "num_prompts", low=1)


def check_probability(value, name: str) -> float:
    return check_number(value, name, low=0, high=1)


def command(cls, run):
    """An analysis' ``main(argv)``: its dataclass `cls` parsed like every run (`lightning_agx.config.parse`:
    ``--config file.yaml`` plus ``--a.b value`` overrides), then `run`; behind `lightning_agx.door` (a user
    error is one line and exit 2, ``--debug`` shows its traceback)."""
    def main(argv: list[str]):
        run(parse(cls, argv))
    main.__doc__ = cls.__doc__
    return entry_point(main)


def save_figure(fig, path: Path, dpi: int = 110) -> None:
    """Lay out, write and close a matplotlib figure."""
    import matplotlib.pyplot as plt
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)


def setup(common: Common) -> Path:
    """Threads set, the output folder created and tried (a one-line `UserError` when it cannot be written).
    Every analysis calls it after its inputs are read and its model loaded: a mistake writes nothing."""
    torch.set_num_threads(max(1, common.threads))
    return ensure_writable(common.output_dir)


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
def method_of(name: str, common: Common):
    """Method `name` as the analysis runs it: the analysis' explainer config, and its options from the section
    of the config that holds them (the amortised explainer's `amortized`)."""
    from lightning_agx.methods import get_method, make_method
    section = get_method(name).config_section
    return make_method(name, getattr(common, section).options() if section else None, common.explainer)


def run_method(name: str, tag, generation, common: Common, seed: int | list[int]) -> torch.Tensor:
    """``[B, T, N]`` importance of every text token for every step, method `name` as `method_of` makes it."""
    from lightning_agx.seeding import resolve_seeds
    return method_of(name, common).run(tag, generation, resolve_seeds(seed, len(generation.text)))


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
        gen = tag.generate(chunk, seed=seeds, **common.model.generation)
        masks = run_method(method, tag, gen, common, seeds)  # [B, T, N]
        out += build_explanations(tag, gen, masks, method, {"model": tag.name}, tag.decode(gen.codes))
        log(f"{method}: explained {min(start + len(chunk), len(prompts))}/{len(prompts)} prompts")
    return out


def saved_explanations(common: Common) -> list[Explanation] | None:
    """The explanations of the run folder `common.explanations` (read before any model loads), None when not
    given; a folder with none is a one-line `UserError`."""
    if not common.explanations:
        return None
    found = load_explanations(common.explanations)
    if not found:
        raise UserError(f"no complete explanation under {common.explanations}; run `python train.py` (task "
                        "explain) first or drop --explanations")
    log(f"loaded {len(found)} explanations from {common.explanations}")
    return found


def explanations_or_explain(tag, prompts: list[str], common: Common,
                            saved: list[Explanation] | None = None) -> list[Explanation]:
    """`saved` (`saved_explanations`, read before the model loaded) when given, else the saved ones of
    `common.explanations`, else `prompts` explained here."""
    if saved is None:
        saved = saved_explanations(common)
    return saved if saved is not None else explain_prompts(tag, prompts, common)


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
