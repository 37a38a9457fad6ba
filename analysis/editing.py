"""Editing with explanations (the paper's Eq. 15): amplify (0.9) or suppress (0.1) chosen tokens
over chosen seconds of the AudioGenX mask, regenerate with that mask applied, measure FAD and KL to a
reference before and after.

``mode: auto`` (embedded world): the reference of a prompt is its ground-truth audio. Prompts are generated
once (the selection sample); a FAILURE CASE is a prompt where the classifier misses a prompted event
(p < ``present``). Each failure is explained, the words of its missed event (sound word and modifiers)
are set to ``value`` over the event's ground-truth span (``interval: event``; ``all`` = whole clip), and
the prompt is regenerated. Regenerating a prompt picked for failing would look better by chance alone
(regression to the mean), so every condition is judged on the same FRESH seeds (``samples`` per prompt):

    selection   the generation the failure was found in (the paper's "before", biased)
    unmasked    fresh samples of the plain model
    mask        fresh samples with the unedited AudioGenX mask applied (control: masking alone)
    edited      fresh samples with the edited mask (Eq. 15)

FAD: Frechet distance between classifier embeddings of the ground-truth set and each generated set.
KL: mean KL(p(x_gen) || p(x_ref)) of classifier softmax (the authors' direction, x = reference).

``mode: manual``: edit explanations (``explanations`` folder, or prompts explained here) at ``tokens``
over [``start``, ``end``) s; the reference is the original generated audio, so the numbers say how much
the edit changed the audio, and the probability of every edited word that names a classifier label is
reported before and after.

    python -m analysis.editing --config configs/analysis_editing.yaml
"""
from __future__ import annotations

from dataclasses import dataclass, field

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from analysis.common import (Common, check_choice, check_probability, check_prompt_fields, class_logits,  # noqa: E402
                             event_probs, explanations_or_explain, generate_with_masks, label_index, load_tag, log,
                             padded_masks, command, save_figure, run_method, saved_explanations, setup, toy_clips,
                             write_summary, write_table)
from lightning_agx.classifiers import load_classifier  # noqa: E402
from lightning_agx.editing import edit_mask  # noqa: E402,F401  Eq. 15 lives in the library
from analysis.token_ranking import normalize  # noqa: E402
from lightning_agx.errors import UserError  # noqa: E402
from lightning_agx.inputs import check_int, check_number, load_prompts  # noqa: E402
from lightning_agx.seeding import prompt_seed  # noqa: E402
from lightning_agx.explanation import Explanation, build_explanations  # noqa: E402
from lightning_agx.metrics import FrechetAudioDistance, kl_divergence  # noqa: E402
from lightning_agx.toyworld.synth import SAMPLE_RATE as WORLD_RATE  # noqa: E402

ACTIONS = {"amplify": 0.9, "suppress": 0.1}
MODES = ("auto", "manual")
INTERVALS = ("event", "all")
CONDITIONS = ("selection", "unmasked", "mask", "edited")


@dataclass
class EditingConfig(Common):
    """Edit explanations (Eq. 15) and measure FAD/KL to a reference before and after."""

    output_dir: str = "outputs/analysis/editing"
    mode: str = "auto"  # auto: failure cases of the embedded world; manual: tokens/start/end below
    action: str = "amplify"  # amplify (0.9) | suppress (0.1)
    value: float | None = None  # overrides the action's value
    # auto mode
    split: str = "val"
    num_prompts: int = 60  # candidates generated to find failure cases
    max_cases: int = 30
    interval: str = "event"  # event: the missed event's ground-truth span; all: the whole clip
    samples: int = 2  # fresh generations per prompt and condition
    present: float = 0.5
    # manual mode
    prompts_file: str | None = None
    prompts: list[str] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)
    start: float = 0.0
    end: float | None = None

    def __post_init__(self) -> None:
        from lightning_agx.toyworld.grammar import SPLITS
        super().__post_init__()
        check_choice(self.mode, "mode", MODES)
        check_choice(self.action, "action", tuple(ACTIONS))
        if self.value is not None:
            check_probability(self.value, "value")
        check_prompt_fields(self)
        check_choice(self.split, "split", SPLITS)
        check_int(self.max_cases, "max_cases", low=2)  # FAD needs two cases
        check_choice(self.interval, "interval", INTERVALS)
        check_int(self.samples, "samples", low=1)
        check_probability(self.present, "present")
        check_number(self.start, "start", low=0)
        if self.end is not None and check_number(self.end, "end") <= self.start:
            raise UserError(f"end ({self.end} s) must be after start ({self.start} s)")
        if self.mode == "manual":
            if isinstance(self.tokens, str) or not self.tokens:
                raise UserError("manual editing needs --tokens, a list of the words to amplify or suppress, e.g. "
                                "--tokens '[beep]'")
            if not (self.explanations or self.prompts_file or self.prompts):
                raise UserError("manual editing needs prompts: --prompts_file FILE, --prompts '[\"a beep\"]' or "
                                "--explanations RUN_FOLDER")


def token_indices(explanation: Explanation, words: list[str]) -> list[int]:
    """Indices of the tokens that spell `words` (word-level tokens, or T5 pieces merged into words)."""
    wanted = {normalize(w) for w in words}
    out = []
    pieces = any(t.startswith("▁") for t in explanation.tokens)
    groups: list[tuple[str, list[int]]] = []
    for i, tok in enumerate(explanation.tokens):
        if tok in ("</s>", "<pad>"):
            continue
        if not pieces or tok.startswith("▁") or not groups:
            groups.append((tok.removeprefix("▁"), [i]))
        else:
            groups[-1] = (groups[-1][0] + tok, groups[-1][1] + [i])
    for word, idx in groups:
        if normalize(word) in wanted:
            out += idx
    return out


# ---------------------------------------------------------------------------------------------- measuring
class Judge:
    """Classifier-based FAD and KL of generated sets against reference audio."""

    def __init__(self, classifier, sample_rate: int):
        self.classifier, self.sr = classifier, sample_rate

    @torch.no_grad()
    def measure(self, reference: torch.Tensor, generated: torch.Tensor, repeats: int) -> dict:
        """reference ``[P, C, S]``; generated ``[P * repeats, C, S]`` (prompt-major)."""
        emb_r = self.classifier.embed(reference.float().mean(1), self.sr)
        emb_g = self.classifier.embed(generated.float().mean(1), self.sr)
        fad = FrechetAudioDistance(None, emb_r.shape[1])
        fad.update(emb_r, real=True)
        fad.update(emb_g, real=False)
        p_ref = torch.softmax(class_logits(self.classifier, reference, self.sr), -1).repeat_interleave(repeats, 0)
        p_gen = torch.softmax(class_logits(self.classifier, generated, self.sr), -1)
        return {"fad": float(fad.compute()), "kl": float(kl_divergence(p_gen, p_ref).mean())}


def run(config: EditingConfig) -> dict:
    check_choice(config.action, "action", tuple(ACTIONS))
    check_choice(config.mode, "mode", MODES)
    manual = config.mode == "manual"
    if manual:  # the prompts or saved explanations, read before the model loads
        inputs = ([] if config.explanations else load_prompts(config.prompts_file, config.prompts),
                  saved_explanations(config))
    tag = load_tag(config.model)
    classifier = load_classifier(config.classifier, model_name=config.model.name)
    out = setup(config)
    value = config.value if config.value is not None else ACTIONS[config.action]
    if manual:
        return run_manual(config, tag, classifier, value, out, *inputs)
    return run_auto(config, tag, classifier, value, out)


def run_auto(config: EditingConfig, tag, classifier, value: float, out) -> dict:
    gen_kwargs = dict(config.model.generation)
    clips = toy_clips(config.split, config.num_prompts, config.seed)
    cases = []  # dicts: clip, missed event, explanation
    p_sel_all = []
    for start in range(0, len(clips), config.batch_size):
        chunk = clips[start:start + config.batch_size]
        seeds = [prompt_seed(config.seed, start + b) for b in range(len(chunk))]  # clip i's own seed
        gen = tag.generate([c.caption for c in chunk], seed=seeds, **gen_kwargs)
        audio = tag.decode(gen.codes).cpu()
        probs = event_probs(classifier, audio, tag.sample_rate)
        failing = []
        for b, clip in enumerate(chunk):
            present = [ev for ev in clip.events if probs[b, label_index(classifier.labels, ev)] < config.present]
            p_sel_all.append(all(probs[b, label_index(classifier.labels, ev)] >= config.present for ev in clip.events))
            if present and len(cases) + len(failing) < config.max_cases:
                failing.append((b, clip, min(present, key=lambda ev: probs[b, label_index(classifier.labels, ev)])))
        if failing:
            sub = gen.select([b for b, _, _ in failing])
            masks = run_method(config.method, tag, sub, config, sub.seeds)
            explained = build_explanations(tag, sub, masks, config.method, audio=audio[[b for b, _, _ in failing]])
            for (b, clip, missed), e in zip(failing, explained):
                cases.append({"clip": clip, "missed": missed, "explanation": e,
                              "p_selection": float(probs[b, label_index(classifier.labels, missed)])})
        log(f"editing: {min(start + len(chunk), len(clips))}/{len(clips)} prompts generated, {len(cases)} failure cases")
        if len(cases) >= config.max_cases:
            break
    if len(cases) < 2:
        raise UserError(f"only {len(cases)} failure case(s) among {len(p_sel_all)} prompts; FAD needs 2: raise "
                        "--num_prompts")
    # the edit (Eq. 15) per case
    edited, plain, edits = [], [], []
    for case in cases:
        e, clip, missed = case["explanation"], case["clip"], case["missed"]
        words = [w for w, ev in zip(clip.words, clip.word_events) if ev == missed]
        if len(e.tokens) == len(clip.words):  # word-level tokenizer: token i is word i
            idx = [i for i, ev in enumerate(clip.word_events) if ev == missed]
        else:
            idx = token_indices(e, words)
        spec = next(s for s in clip.scene.specs if s.event == missed and s.present)
        start, end = (spec.start / WORLD_RATE, spec.stop / WORLD_RATE) if config.interval == "event" else (0.0, None)
        if start >= e.duration:  # a model generating shorter clips than the world's (debug)
            start, end = 0.0, None
        edited.append(edit_mask(e, idx, start, end, value))
        plain.append(e.mask.float())
        edits.append({"prompt": e.prompt, "missed": missed, "words": " ".join(words), "start_s": round(start, 2),
                      "end_s": round(end if end is not None else e.duration, 2)})
    reference = torch.stack([torch.as_tensor(c["clip"].audio)[None] for c in cases])  # [P, 1, S] ground truth
    audio = {"selection": torch.stack([c["explanation"].audio for c in cases])}
    prompts = [c["explanation"].prompt for c in cases]
    masks = {"unmasked": None, "mask": plain, "edited": edited}
    fresh_seed = config.seed + 100_000
    for name, mask_list in masks.items():
        parts = []
        for start in range(0, len(cases), config.batch_size):
            chunk = prompts[start:start + config.batch_size]
            rep = [p for p in chunk for _ in range(config.samples)]
            m = None
            if mask_list is not None:
                sub = [Explanation(p, cases[start + i]["explanation"].tokens, mask_list[start + i], tag.frame_rate)
                       for i, p in enumerate(chunk)]
                m = padded_masks(sub, tag.encode_text(chunk)).repeat_interleave(config.samples, 0)
            seeds = [prompt_seed(prompt_seed(fresh_seed, start + i), k) for i in range(len(chunk))
                     for k in range(config.samples)]  # case i's k-th sample: the same in every condition
            parts.append(generate_with_masks(tag, rep, m, seeds, config.model.generation))
        audio[name] = torch.cat(parts)
        log(f"editing: generated condition '{name}'")
    judge = Judge(classifier, tag.sample_rate)
    results, per_case = [], []
    for name in CONDITIONS:
        repeats = 1 if name == "selection" else config.samples
        metrics = judge.measure(reference, audio[name], repeats)
        probs = event_probs(classifier, audio[name], tag.sample_rate).reshape(len(cases), repeats, -1)
        missed_p = torch.stack([probs[i, :, label_index(classifier.labels, c["missed"])] for i, c in enumerate(cases)])
        results.append({"condition": name, "fad": metrics["fad"], "kl": metrics["kl"],
                        "p_missed_event": float(missed_p.mean()),
                        "recovered": float((missed_p >= config.present).float().mean())})
        for i, c in enumerate(cases):
            if len(per_case) < len(cases):
                per_case.append(dict(edits[i]))
            per_case[i][f"p_{name}"] = float(missed_p[i].mean())
    md_results = write_table(results, out, "editing_results")
    md_cases = write_table(per_case, out, "editing_cases")
    figure(results, out / "editing.png")
    r = {x["condition"]: x for x in results}
    headline = (f"{len(cases)} failure cases among {len(p_sel_all)} prompts ({1 - np.mean(p_sel_all):.0%} fail). "
                f"{config.action.capitalize()}ing the missed event's words to {value} over its span: FAD "
                f"{r['unmasked']['fad']:.2f} -> {r['edited']['fad']:.2f}, KL {r['unmasked']['kl']:.2f} -> "
                f"{r['edited']['kl']:.2f}, missed event heard in {r['unmasked']['recovered']:.0%} -> "
                f"{r['edited']['recovered']:.0%} of fresh samples (unedited mask alone: FAD {r['mask']['fad']:.2f}, "
                f"KL {r['mask']['kl']:.2f}, {r['mask']['recovered']:.0%}; selection sample: FAD "
                f"{r['selection']['fad']:.2f}, KL {r['selection']['kl']:.2f}).")
    text = [f"# Editing (Eq. 15) on failure cases of the embedded world ({config.method})\n", headline + "\n",
            "Lower FAD/KL is better (reference = ground-truth audio of the prompt). `selection` is the sample in which "
            "the failure was found (biased: picked for failing); the other rows use the same fresh seeds.\n",
            md_results, "\n![editing](editing.png)\n", "\n## Cases\n", md_cases]
    summary = {"analysis": "editing", "mode": "auto", "cases": len(cases), "candidates": len(p_sel_all),
               "value": value, "results": results, "headline": headline}
    return write_summary(out, summary, "\n".join(text))


def run_manual(config: EditingConfig, tag, classifier, value: float, out, prompts: list[str] | None = None,
               saved=None) -> dict:
    if not config.tokens:
        raise UserError("manual editing needs --tokens (the words to amplify or suppress)")
    if prompts is None:
        prompts = [] if config.explanations else load_prompts(config.prompts_file, config.prompts)
    explanations = explanations_or_explain(tag, prompts, config, saved)
    rows, origs, eds = [], [], []
    for i, e in enumerate(explanations):
        idx = token_indices(e, config.tokens)
        mask = edit_mask(e, idx, config.start, config.end, value)
        text = tag.encode_text([e.prompt])
        m = padded_masks([Explanation(e.prompt, e.tokens, mask, e.frame_rate)], text)
        duration = e.codes.shape[-1] / tag.frame_rate if e.codes is not None else None
        kwargs = dict(config.model.generation, **({"duration": duration} if duration else {}))
        original = e.audio[None] if e.audio is not None else generate_with_masks(tag, [e.prompt], None, [prompt_seed(config.seed, i)], kwargs)
        edited = generate_with_masks(tag, [e.prompt], m, [prompt_seed(config.seed, i)], kwargs)
        p0, p1 = event_probs(classifier, original, tag.sample_rate)[0], event_probs(classifier, edited, tag.sample_rate)[0]
        row = {"prompt": e.prompt, "edited_tokens": len(idx),
               "kl_to_original": float(kl_divergence(torch.softmax(class_logits(classifier, edited, tag.sample_rate), -1),
                                                     torch.softmax(class_logits(classifier, original, tag.sample_rate), -1)).mean())}
        for word in config.tokens:
            li = label_index(classifier.labels, word)
            if li is not None:
                row[f"p_{word}_before"], row[f"p_{word}_after"] = float(p0[li]), float(p1[li])
        rows.append(row)
        origs.append(original)
        eds.append(edited)
    md = write_table(rows, out, "editing_manual")
    summary = {"analysis": "editing", "mode": "manual", "tokens": config.tokens, "value": value, "rows": rows}
    if len(rows) >= 2:
        summary.update(Judge(classifier, tag.sample_rate).measure(torch.cat(origs), torch.cat(eds), 1))
    return write_summary(out, summary, f"# Editing (Eq. 15), manual: {config.action} {config.tokens} over "
                                       f"[{config.start}, {config.end}) s\n\nReference: the original audio.\n\n{md}")


def figure(results: list[dict], path) -> None:
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.2))
    names = [r["condition"] for r in results]
    colors = ["#bbbbbb", "#888888", "#3b6ea8", "#c0504d"]
    for ax, key, title in zip(axes, ("fad", "kl", "recovered"),
                              ("FAD to ground truth (lower better)", "KL to ground truth (lower better)",
                               "missed event heard (share of samples)")):
        ax.bar(names, [r[key] for r in results], color=colors)
        ax.set_title(title, fontsize=9)
        ax.tick_params(axis="x", labelsize=8)
    axes[2].set_ylim(0, 1)
    save_figure(fig, path)


main = command(EditingConfig, run)


if __name__ == "__main__":
    main()
