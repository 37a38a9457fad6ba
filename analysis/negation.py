"""Negation study (paper, "Analyses"): does the model understand "without"?

For each base pair (X, Y) four prompts are generated (``samples`` seeds each) and explained:

    X               "a X"                    the event alone (how well the classifier hears X at all)
    Y               "a Y"                    floor: P(X) when X is not mentioned
    Y without X     "a Y without a X"
    Y without no X  "a Y without no X"

Reported: the classifier's probability of X's event (and the share of samples where it is heard,
p >= 0.5) per variant, and the audio-level importance of 'without', 'no' and X. A model that honours
negation gives P(X) near the "Y" floor for "Y without X"; the paper finds AudioGen still produces X and
gives 'without' low importance.

    python -m analysis.negation --config configs/analysis_negation.yaml
"""
from __future__ import annotations

from dataclasses import dataclass, field

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from analysis.common import (Common, check_probability, event_probs, explain_prompts, label_index, load_tag,  # noqa: E402
                             command, save_figure, setup, write_summary, write_table)
from lightning_agx.classifiers import load_classifier  # noqa: E402
from lightning_agx.errors import UserError  # noqa: E402
from lightning_agx.inputs import check_int  # noqa: E402
from analysis.token_ranking import merge_pieces, normalize  # noqa: E402

DEFAULT_PAIRS = [["beep", "rumble"], ["buzz", "drip"], ["chirp", "knock"], ["click", "siren"], ["hiss", "whistle"],
                 ["rumble", "beep"], ["whistle", "chirp"], ["knock", "buzz"], ["siren", "hiss"], ["drip", "click"]]
VARIANTS = {"X": "a {x}", "Y": "a {y}", "Y without X": "a {y} without a {x}", "Y without no X": "a {y} without no {x}"}


@dataclass
class NegationConfig(Common):
    """Compare "X", "Y", "Y without X" and "Y without no X": is X still heard, and what matters?"""

    output_dir: str = "outputs/analysis/negation"
    pairs: list[list[str]] = field(default_factory=lambda: [list(p) for p in DEFAULT_PAIRS])  # [X, Y] words
    labels: dict[str, str] = field(default_factory=dict)  # X word -> classifier label, where they differ
    samples: int = 4  # generations per prompt (seeds) for the classifier probabilities
    present: float = 0.5

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.pairs, list) or not self.pairs:
            raise UserError("pairs must be a list of one or more [X, Y] sound words, e.g. --pairs '[[beep, hiss]]'")
        for pair in self.pairs:
            if (not isinstance(pair, (list, tuple)) or len(pair) != 2
                    or not all(isinstance(w, str) and w.strip() for w in pair)):
                raise UserError(f"each of pairs must be two sound words [X, Y]; got {pair!r}")
        if not isinstance(self.labels, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                        for k, v in self.labels.items()):
            raise UserError(f"labels must map sound words to classifier labels, e.g. --labels '{{\"beep\": "
                            f"\"Beep\"}}'; got {self.labels!r}")
        check_int(self.samples, "samples", low=1)
        check_probability(self.present, "present")


def word_importance(explanation, word: str, last: bool = True) -> float | None:
    """Audio-level importance of `word` in an explanation (its last occurrence; None when absent)."""
    words = [(normalize(w), v) for w, v in merge_pieces(explanation.tokens, explanation.audio_level().tolist())]
    hits = [v for w, v in words if w == word]
    return (hits[-1] if last else hits[0]) if hits else None


def run(config: NegationConfig) -> dict:
    classifier = load_classifier(config.classifier, model_name=config.model.name)
    for x, _ in config.pairs:  # every X word names a label, checked before the model loads
        if label_index(classifier.labels, config.labels.get(x, x)) is None:
            raise UserError(f"no classifier label for '{x}'; map it with --labels '{{\"{x}\": \"<label>\"}}'")
    tag = load_tag(config.model)
    out = setup(config)
    rows, prompts = [], []
    for x, y in config.pairs:
        for variant, template in VARIANTS.items():
            prompts.append((x, y, variant, template.format(x=x, y=y)))
    unique = list(dict.fromkeys(p for *_, p in prompts))
    explanations = {e.prompt: e for e in explain_prompts(tag, unique, config)}
    # classifier probabilities over `samples` generations per prompt
    probs: dict[str, torch.Tensor] = {}
    for i, prompt in enumerate(unique):
        gen = tag.generate([prompt] * config.samples, seed=config.seed + 1000 + i, **config.model.generation)
        probs[prompt] = event_probs(classifier, tag.decode(gen.codes).cpu(), tag.sample_rate)  # [S, C]
    for x, y, variant, prompt in prompts:
        xi = label_index(classifier.labels, config.labels.get(x, x))
        yi = label_index(classifier.labels, config.labels.get(y, y))
        p = probs[prompt]
        e = explanations[prompt]
        rows.append({"x": x, "y": y, "variant": variant, "prompt": prompt,
                     "p_x": float(p[:, xi].mean()), "x_heard": float((p[:, xi] >= config.present).float().mean()),
                     "p_y": float(p[:, yi].mean()) if yi is not None else float("nan"),
                     "imp_x": _num(word_importance(e, x)), "imp_without": _num(word_importance(e, "without")),
                     "imp_no": _num(word_importance(e, "no"))})
    by_variant = []
    for variant in VARIANTS:
        sel = [r for r in rows if r["variant"] == variant]
        by_variant.append({"variant": variant, "p_x": _mean(r["p_x"] for r in sel),
                           "x_heard": _mean(r["x_heard"] for r in sel), "p_y": _mean(r["p_y"] for r in sel),
                           "imp_x": _mean(r["imp_x"] for r in sel), "imp_without": _mean(r["imp_without"] for r in sel),
                           "imp_no": _mean(r["imp_no"] for r in sel), "pairs": len(sel)})
    md_all = write_table(rows, out, "negation_prompts")
    md_var = write_table(by_variant, out, "negation_summary")
    figure(by_variant, out / "negation.png")
    v = {r["variant"]: r for r in by_variant}
    verdict = verdict_text(v)
    unknown = _unknown_words(tag, ["without", "no"])
    note = (f"\nNote: {', '.join(repr(w) for w in unknown)} is outside this model's vocabulary (read as an unknown "
            "token).\n") if unknown else ""
    text = [f"# Negation ({len(config.pairs)} pairs, {config.samples} samples per prompt, {config.method})\n",
            verdict + "\n", note, "## Per variant (mean over pairs)\n", md_var, "\n![negation](negation.png)\n",
            "\n## Per prompt\n", md_all]
    summary = {"analysis": "negation", "by_variant": by_variant, "verdict": verdict, "unknown_words": unknown}
    return write_summary(out, summary, "\n".join(text))


def verdict_text(v: dict) -> str:
    px, floor, neg = v["X"]["p_x"], v["Y"]["p_x"], v["Y without X"]["p_x"]
    if px - floor < 0.1:
        return (f"Inconclusive: the classifier hears X poorly even when X is prompted alone (P(X) {px:.2f} vs "
                f"{floor:.2f} unmentioned), so the negation cannot be judged on this model.")
    span = px - floor
    kept = (neg - floor) / span  # 0: negation honoured (X as absent as when unmentioned), 1: X as present as alone
    honours = "ignores" if kept > 0.5 else "partly honours" if kept > 0.2 else "honours"
    return (f"P(X) is {px:.2f} for 'X' alone, {floor:.2f} for 'Y' (X unmentioned) and {neg:.2f} for 'Y without X' "
            f"({v['Y without no X']['p_x']:.2f} with 'without no'): the model {honours} the negation "
            f"({kept:.0%} of X's presence kept). Importance of 'without' {v['Y without X']['imp_without']:.3f} vs "
            f"X {v['Y without X']['imp_x']:.3f}.")


def figure(by_variant: list[dict], path) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    names = [r["variant"] for r in by_variant]
    axes[0].bar(names, [r["p_x"] for r in by_variant], color=["#3b6ea8", "#999999", "#c0504d", "#e39b3b"])
    axes[0].set_ylabel("classifier P(X) in generated audio")
    axes[0].set_ylim(0, 1)
    axes[0].tick_params(axis="x", labelsize=8)
    axes[0].set_title("is X still heard?", fontsize=10)
    neg = [r for r in by_variant if "without" in r["variant"]]
    width = 0.25
    for k, (key, label) in enumerate((("imp_x", "X"), ("imp_without", "'without'"), ("imp_no", "'no'"))):
        axes[1].bar(np.arange(len(neg)) + (k - 1) * width, [np.nan_to_num(r[key]) for r in neg], width, label=label)
    axes[1].set_xticks(range(len(neg)), [r["variant"] for r in neg], fontsize=8)
    axes[1].set_ylabel("audio-level importance")
    axes[1].set_title("what the explanation says matters", fontsize=10)
    axes[1].legend(fontsize=8)
    save_figure(fig, path)


def _unknown_words(tag, words: list[str]) -> list[str]:
    vocabulary = tag.vocabulary  # None: an open vocabulary knows every word
    return [w for w in words if vocabulary is not None and w not in vocabulary]


def _num(value) -> float:
    return float("nan") if value is None else float(value)


def _mean(values) -> float:
    vals = [v for v in values if v == v]
    return sum(vals) / len(vals) if vals else float("nan")


main = command(NegationConfig, run)


if __name__ == "__main__":
    main()
