"""Difference, in words: how the counterfactual audio differs from the original, says the classifier.

For each explained prompt the original audio x, the factual x^F (attention * m) and the counterfactual
x^CF (attention * (1 - m)) are generated with the same seed; the classifier's per-label probabilities
(sigmoid, multi-label) are compared and a template sentence names the events lost, gained, weakened or
strengthened, largest change first::

    Without the important tokens the beep is lost (0.93 -> 0.04) and a hiss appears (0.02 -> 0.61).

    python -m analysis.difference --config configs/analysis_difference.yaml
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from analysis.common import (analysis_prompts, Common, check_probability, check_prompt_fields, event_probs,
                             explanations_or_explain, generate_with_masks, load_tag, padded_masks, command,
                             saved_explanations, setup, write_summary, write_table)
from lightning_agx.classifiers import load_classifier
from lightning_agx.inputs import check_number


@dataclass
class DifferenceConfig(Common):
    """Sentences saying how the counterfactual (and factual) audio differ from the original."""

    output_dir: str = "outputs/analysis/difference"
    prompts_file: str | None = None
    prompts: list[str] = field(default_factory=list)
    num_prompts: int = 8  # embedded world: test-split captions when no prompts are given
    threshold: float = 0.1  # smallest probability change worth a word
    present: float = 0.5  # probability above which the classifier hears an event

    def __post_init__(self) -> None:
        super().__post_init__()
        check_prompt_fields(self)
        check_number(self.threshold, "threshold", low=0)
        check_probability(self.present, "present")


def describe_difference(before: torch.Tensor, after: torch.Tensor, labels: list[str], threshold: float = 0.1,
                        present: float = 0.5, subject: str = "Without the important tokens", top: int = 3) -> str:
    """A sentence from per-label probabilities ``[C]`` before and after (see the module doc)."""
    delta = (after - before).tolist()
    order = sorted(range(len(labels)), key=lambda i: -abs(delta[i]))
    parts = []
    for i in order[:top]:
        b, a, name = float(before[i]), float(after[i]), labels[i]
        if abs(a - b) < threshold:
            break
        change = f"({b:.2f} -> {a:.2f})"
        if b >= present > a:
            parts.append(f"the {name} is lost {change}")
        elif a >= present > b:
            parts.append(f"a {name} appears {change}")
        elif a < b:
            parts.append(f"the {name} is weaker {change}")
        else:
            parts.append(f"the {name} is stronger {change}")
    if not parts:
        heard = [labels[i] for i in range(len(labels)) if float(before[i]) >= present]
        what = ", ".join(heard) if heard else "no event"
        return f"{subject} the classifier hears the same ({what}; no label changes by {threshold:.2f} or more)."
    body = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    return f"{subject} {body}."


@torch.no_grad()
def listenable(tag, explanations, seed: int, generation: dict, batch_size: int = 8) -> dict[str, torch.Tensor]:
    """Original, factual and counterfactual audio ``[B, C, samples]`` for `explanations`; explanation i's three
    generations share the seed ``prompt_seed(seed, i)``."""
    from lightning_agx.seeding import prompt_seed
    out = {"original": [], "factual": [], "counterfactual": []}
    for start in range(0, len(explanations), batch_size):
        chunk = explanations[start:start + batch_size]
        seeds = [prompt_seed(seed, start + b) for b in range(len(chunk))]
        prompts = [e.prompt for e in chunk]
        text = tag.encode_text(prompts)
        masks = padded_masks(chunk, text)  # [B, T, N]
        duration = chunk[0].codes.shape[-1] / tag.frame_rate if chunk[0].codes is not None else None
        kwargs = dict(generation, duration=duration) if duration else dict(generation)
        if all(e.audio is not None for e in chunk):
            original = torch.stack([e.audio for e in chunk])
        elif all(e.codes is not None for e in chunk):
            original = tag.decode(torch.stack([e.codes for e in chunk]).to(tag.device)).cpu()
        else:
            original = generate_with_masks(tag, prompts, None, seeds, kwargs)
        out["original"].append(original)
        out["factual"].append(generate_with_masks(tag, prompts, masks, seeds, kwargs))
        out["counterfactual"].append(generate_with_masks(tag, prompts, 1 - masks, seeds, kwargs))
    return {k: torch.cat(v) for k, v in out.items()}


def listenable_probs(tag, classifier, explanations, config) -> tuple[dict, dict]:
    """The original/factual/counterfactual audio of each explanation and the classifier's event probabilities."""
    audio = listenable(tag, explanations, config.seed, config.model.generation, config.batch_size)
    return audio, {k: event_probs(classifier, v, tag.sample_rate) for k, v in audio.items()}


def listenable_run(config):
    """What the difference sentences and the report both start from: the output folder, the model, the
    classifier, the explanations, their original/factual/counterfactual audio and its event probabilities."""
    prompts, saved = analysis_prompts(config), saved_explanations(config)  # read before any model loads
    tag = load_tag(config.model)
    classifier = load_classifier(config.classifier, model_name=config.model.name)
    out = setup(config)
    explanations = explanations_or_explain(tag, prompts, config, saved)
    audio, probs = listenable_probs(tag, classifier, explanations, config)
    return out, tag, classifier, explanations, audio, probs


def run(config: DifferenceConfig) -> dict:
    out, tag, classifier, explanations, audio, probs = listenable_run(config)
    rows = []
    for i, e in enumerate(explanations):
        rows.append({"prompt": e.prompt,
                     "counterfactual": describe_difference(probs["original"][i], probs["counterfactual"][i],
                                                           classifier.labels, config.threshold, config.present),
                     "factual": describe_difference(probs["original"][i], probs["factual"][i], classifier.labels,
                                                    config.threshold, config.present,
                                                    subject="With only the important tokens")})
    md = write_table(rows, out, "differences")
    summary = {"analysis": "difference", "prompts": len(rows), "sentences": rows}
    return write_summary(out, summary, f"# Differences in words ({len(rows)} prompts)\n\n{md}")


main = command(DifferenceConfig, run)


if __name__ == "__main__":
    main()
