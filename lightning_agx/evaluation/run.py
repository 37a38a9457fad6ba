"""The faithfulness evaluation (paper Eq. 8-12, Table 1 and Table 2), resumable per prompt.

For each chunk of `batch_size` prompts:
  1. the original audio x is generated once (seeded) and classified; the "Ori" floor regenerates each prompt
     `ori_repeats` times unmasked and compares with x (FidF/KLF of plain sampling noise); x and the Ori
     regenerations are one generate call;
  2. every method explains the chunk (timed, peak memory measured), its importance m ``[B, T, N]`` is applied
     during generation as the factual (A * m) and counterfactual (A * (1 - m)) cross-attention mask,
     `repeats` samples each (the same per-prompt seeds for every method: common random numbers), classified;
     a method's factual and counterfactual regenerations of the chunk are one generate call;
  3. FidF, FidCF, KLF, KLCF (torchmetrics of `lightning_agx.metrics`), Size and the ground-truth AUC are stored
     per prompt and method as soon as they exist.
On disk (``output_dir``)::

    prompts/0007_a_dog_barks/original.json       prompt, tokens, classifier logits on x, Ori values (written last)
    prompts/0007_a_dog_barks/original.safetensors codes of x
    prompts/0007_a_dog_barks/<method>/            an Explanation (mask, codes; metrics in its metadata)
    table1.md/.csv, table2.md/.csv
A rerun skips every (chunk, method) already complete and rebuilds x from the saved codes; a chunk that an
interruption left partly done for a method is redone whole (every prompt has its own seeds,
`lightning_agx.seeding`: the same numbers).
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ..classifiers import load_classifier
from ..classifiers.base import module_device
from ..errors import UserError
from ..explainer import ExplainerConfig, perturbation_masks
from ..explanation import JSON_NAME, Explanation, build_explanations, prompt_folder_name
from ..methods import check_methods, make_method
from ..metrics.functional import fidelity, kl, mask_size
from ..models import CrossAttentionEdit
from ..models import Generation
from ..resume import claim_folder, run_identity
from ..seeding import derived_seeds, prompt_seed
from .memory import PeakMemory
from .tables import ORI, TABLE1, TABLE2, paired_with_ori, summarise, table1_columns, write_table

ORI_OFFSET, MASKED_OFFSET = 1000, 2000  # derived seeds of a prompt: Ori regenerations, masked regenerations

ORIGINAL_JSON, ORIGINAL_TENSORS = "original.json", "original.safetensors"


@dataclass
class EvaluationResult:
    output_dir: Path
    table1: list[dict]
    table2: list[dict]
    computed: dict[str, int] = field(default_factory=dict)  # explanations computed by THIS call, per method
    originals_generated: int = 0  # prompts whose original audio THIS call generated
    paths: dict[str, Path] = field(default_factory=dict)


def evaluate(tag, prompts: list[str], classifier, output_dir: str | Path, methods: list[str] | None = None,
             method_options: dict | None = None, explainer: ExplainerConfig | None = None, batch_size: int = 8,
             seed: int = 0, duration: float | None = None, repeats: int = 3, ori_repeats: int = 5,
             generation: dict | None = None, kl_direction: str = "authors", logger=None,
             overwrite: bool = False) -> EvaluationResult:
    """Evaluate `methods` on `prompts` (already cleaned) with `classifier`; resumes from `output_dir` when it
    holds results of the same identity (lightning_agx.resume: else it stops, or `overwrite` replaces them).

    A row may be a label of its own whose `method_options` name the method it runs, e.g. ``refine5:
    {method: audiogenx_amortized, refine_steps: 5}``."""
    from ..methods import available_methods
    methods = list(methods or available_methods())
    bases = {label: (method_options or {}).get(label, {}).get("method", label) for label in methods}
    check_methods(list(bases.values()))
    if repeats < 1 or ori_repeats < 1 or batch_size < 1:
        raise UserError(f"repeats, ori_repeats and batch_size must be >= 1; got {repeats}, {ori_repeats}, {batch_size}")
    output_dir = Path(output_dir)
    explainer = (explainer or ExplainerConfig()).for_model(tag)  # the model's recommended settings, overridden
    identity = run_identity(tag, None, explainer, seed, duration, generation, task="evaluate",
                            classifier=type(classifier).__name__, method_options=method_options or {},
                            repeats=repeats, ori_repeats=ori_repeats, kl_direction=kl_direction)
    claim_folder(output_dir, identity, overwrite, names=["prompts", "wandb_logs"])
    folders = [output_dir / "prompts" / prompt_folder_name(i, p) for i, p in enumerate(prompts)]
    params = dict(generation or {})
    made_by = {name: make_method(bases[name], {k: v for k, v in (method_options or {}).get(name, {}).items()
                                               if k != "method"}, explainer).prepare(tag) for name in methods}
    # what a row's results depend on beyond the run identity (the amortised explainer's weights, by hash; preparing
    # the rows above stops a missing or mismatched explainer before any work): a saved row made another way is redone
    rows_made = {name: made_by[name].identity(tag) for name in methods}
    result = EvaluationResult(output_dir, [], [], {m: 0 for m in methods})
    device = tag.device
    truth = tag.ground_truth  # what the model's world knows must matter (Table 1's AUC), or None
    columns1 = table1_columns(truth is not None)
    for start in range(0, len(prompts), batch_size):
        index = list(range(start, min(start + batch_size, len(prompts))))
        # the unit of work is (chunk, method); every prompt has its own seeds (lightning_agx.seeding), so a chunk
        # left half done by an interruption is redone with the numbers of an uninterrupted run
        todo = {m: index if any(not _is_done(folders[i] / m, rows_made[m]) for i in index) else [] for m in methods}
        missing_original = [i for i in index if not _original_ok(folders[i])]
        if not missing_original and not any(todo.values()):
            continue
        if missing_original:
            _original(tag, classifier, [prompts[i] for i in missing_original], [folders[i] for i in missing_original],
                      [prompt_seed(seed, i) for i in missing_original], duration, params, ori_repeats, kl_direction)
            result.originals_generated += len(missing_original)
        chunk, original_logits, generation_seconds = _load_originals(tag, [prompts[i] for i in index],
                                                                     [folders[i] for i in index])
        for method, items in todo.items():
            if not items:
                continue
            rows = [index.index(i) for i in items]
            sub = chunk.select(rows)
            _log(f"[evaluate] prompts {items[0]}-{items[-1]}: {method}")
            with PeakMemory(device) as peak:
                begin = time.perf_counter()
                importance = made_by[method].run(tag, sub, sub.seeds)
                seconds = time.perf_counter() - begin
            factual, counterfactual = _masked_logits(tag, classifier, sub, importance, repeats, duration, params)
            metrics = _faithfulness(original_logits[rows], factual, counterfactual, importance, sub, kl_direction,
                                   truth)
            metadata = [{**metrics[j], "seconds": seconds / len(items), "seconds_mask": seconds / len(items),
                         "seconds_generation": generation_seconds[rows[j]], "peak_mb": peak.megabytes,
                         "mb_per_explanation": peak.megabytes / len(items), "batch": len(items),
                         "seed": sub.seeds[j], "device": str(device), "row_identity": rows_made[method]}
                        for j in range(len(items))]
            for j, explanation in enumerate(build_explanations(tag, sub, importance, method, metadata)):
                explanation.save(folders[items[j]] / method)
            result.computed[method] += len(items)
        _write_tables(result, methods, folders, len(prompts), repeats, ori_repeats, device, columns1)  # partial
    _write_tables(result, methods, folders, len(prompts), repeats, ori_repeats, device, columns1)
    if logger is not None:
        _log_to_wandb(logger, result, columns1)
    return result


def _write_tables(result: EvaluationResult, methods, folders, num_prompts, repeats, ori_repeats, device,
                  columns1=TABLE1) -> None:
    """Tables over every prompt finished so far (rewritten after each chunk, so an interrupted run has them);
    `columns1`: Table 1's columns (`tables.table1_columns`: the AUC only for a model with ground truth)."""
    output_dir = result.output_dir
    result.table1, result.table2 = _tables(methods, folders, columns1)
    result.paths = {"table1_md": output_dir / "table1.md", "table2_md": output_dir / "table2.md",
                    "table1_csv": output_dir / "table1.csv", "table2_csv": output_dir / "table2.csv"}
    auc = "; AUC = audio-level importance vs ground-truth sound words" if any(c[1] == "auc" for c in columns1) else ""
    write_table(result.table1, columns1, output_dir, "table1",
                f"Table 1: faithfulness ({num_prompts} prompts, {repeats} factual/counterfactual samples each, "
                f"Ori = {ori_repeats} unmasked regenerations; FidF-Ori, KLF-Ori: paired by prompt{auc})")
    write_table(result.table2, TABLE2, output_dir, "table2",
                f"Table 2: seconds and peak memory per explanation ({device}; peak_MB is per batch call)")


# ---------------------------------------------------------------------------------------------- generation
def _classify(tag, classifier, codes: torch.Tensor) -> torch.Tensor:
    """Audio tokens ``[rows, K, F]`` -> classifier logits ``[rows, C]`` (audio resampled by the classifier)."""
    wav = tag.decode(codes)  # [rows, C, samples] at tag.sample_rate
    wav = wav.mean(1) if wav.shape[1] > 1 else wav[:, 0]
    with torch.no_grad():
        return classifier.logits(wav.to(module_device(classifier, wav.device)), tag.sample_rate).float().cpu()


def _is_done(folder: Path, row_identity: dict) -> bool:
    """A row's saved explanation of a prompt is complete and was made the way this run makes it."""
    if not Explanation.is_complete(folder) or not Explanation.content_matches(folder):
        return False
    made = json.loads((folder / JSON_NAME).read_text())["metadata"].get("row_identity", {})
    if made != row_identity:
        _log(f"[evaluate] {folder} was made another way ({made} != {row_identity}): redone")
        return False
    return True


def original_and_ori(tag, prompts, seeds, duration, params, ori_repeats):
    """x and its Ori regenerations in ONE generate call (the Ori rows need no mask, so they need not wait for
    x): ``(original, ori_codes [R*b, ...])``. Every row samples from its own seed (prompt j: ``seeds[j]``; its
    r-th Ori regeneration: ``derived_seeds(seeds, ORI_OFFSET + r)[j]``), so each equals its own generate call."""
    b = len(prompts)
    ori_seeds = [s for r in range(ori_repeats) for s in derived_seeds(seeds, ORI_OFFSET + r)]
    both = tag.generate(prompts * (1 + ori_repeats), duration=duration, seed=list(seeds) + ori_seeds, **params)
    return both.select(list(range(b))), both.codes[b:]


def _original(tag, classifier, prompts, folders, seeds, duration, params, ori_repeats, kl_direction) -> None:
    """Generate x and the Ori regenerations (one call, `original_and_ori`), classify them, and save per prompt
    (JSON last). ``seconds_generation`` is the call's time per generated clip."""
    _log(f"[evaluate] original audio + Ori floor for {len(prompts)} prompt(s)")
    begin = time.perf_counter()
    original, ori_codes = original_and_ori(tag, prompts, seeds, duration, params, ori_repeats)
    seconds = (time.perf_counter() - begin) / (len(prompts) * (1 + ori_repeats))
    logits = _classify(tag, classifier, original.codes)  # [b, C]
    ori_logits = _classify(tag, classifier, ori_codes).view(ori_repeats, len(prompts), -1).transpose(0, 1)
    fid_f, kl_f = fidelity(logits, ori_logits), kl(logits, ori_logits, direction=kl_direction)  # [b] each
    for j, folder in enumerate(folders):
        folder.mkdir(parents=True, exist_ok=True)
        save_file({"codes": original.codes[j].cpu().contiguous()}, str(folder / ORIGINAL_TENSORS))
        info = {"prompt": prompts[j], "tokens": original.text.tokens[j], "logits": logits[j].tolist(),
                "codes_sha256": hashlib.sha256((folder / ORIGINAL_TENSORS).read_bytes()).hexdigest(),
                "label": int(logits[j].argmax()), "seed": seeds[j], "seconds_generation": round(seconds, 4),
                ORI: {"fid_f": float(fid_f[j]), "kl_f": float(kl_f[j])}}
        tmp = folder / f".{ORIGINAL_JSON}.tmp"
        tmp.write_text(json.dumps(info, indent=1))
        os.replace(tmp, folder / ORIGINAL_JSON)


def _original_ok(folder: Path) -> bool:
    """A prompt's saved original x is complete and its codes file the one its JSON was written with (by hash;
    folders of versions without the hash are trusted on the JSON alone); else it is generated again (the same
    seed gives the same x)."""
    try:
        info = json.loads((folder / ORIGINAL_JSON).read_text())
        expected = info.get("codes_sha256")
        return expected is None or hashlib.sha256((folder / ORIGINAL_TENSORS).read_bytes()).hexdigest() == expected
    except (OSError, ValueError, AttributeError):
        return False


def _load_originals(tag, prompts, folders) -> tuple[Generation, torch.Tensor, list]:
    """The chunk's original generation rebuilt from saved codes (teacher forcing needs no latents), its
    classifier logits and the seconds each prompt took to generate."""
    infos = [json.loads((f / ORIGINAL_JSON).read_text()) for f in folders]
    for info, prompt, folder in zip(infos, prompts, folders):
        if info["prompt"] != prompt:
            raise UserError(f"{folder} holds prompt {info['prompt']!r}, not {prompt!r}: this output_dir belongs to "
                            "another prompt set; choose a new --output_dir")
    codes = torch.stack([load_file(str(f / ORIGINAL_TENSORS))["codes"] for f in folders])
    generation = tag.generation_from_codes(prompts, codes, [info["seed"] for info in infos])
    return generation, torch.tensor([info["logits"] for info in infos]), [info.get("seconds_generation") for info in infos]


def _masked_logits(tag, classifier, generation, importance, repeats, duration, params):
    """Factual and counterfactual generations with the mask in the cross-attention: logits ``[b, R, C]`` each.
    The r-th factual and counterfactual sample of prompt j share the seed ``derived_seeds(seeds, MASKED_OFFSET
    + r)[j]`` (common random numbers), the same for every method."""
    b = len(generation.text)
    factual, counterfactual = perturbation_masks(importance, generation.text.valid)  # 1 at padding
    prompts = generation.text.prompts * (2 * repeats)
    text = tag.encode_text(prompts)  # padded to the longest of these prompts: crop the extra padding columns
    n = text.valid.shape[1]
    if generation.text.valid[:, n:].any():
        raise RuntimeError("re-encoding the prompts dropped valid tokens; this is a bug")
    masks = torch.cat([factual[..., :n]] * repeats + [counterfactual[..., :n]] * repeats)  # [2Rb, T, n]
    seeds = [s for r in list(range(repeats)) * 2 for s in derived_seeds(generation.seeds, MASKED_OFFSET + r)]
    perturbed = tag.generate(text, duration=duration, seed=seeds, edit=CrossAttentionEdit(post_softmax=masks), **params)
    logits = _classify(tag, classifier, perturbed.codes).view(2 * repeats, b, -1).transpose(0, 1)  # [b, 2R, C]
    return logits[:, :repeats], logits[:, repeats:]


# ---------------------------------------------------------------------------------------------- metrics
def _faithfulness(original, factual, counterfactual, importance, generation, kl_direction, truth=None) -> list[dict]:
    """Per prompt: FidF, FidCF, KLF, KLCF (repeats averaged), Size over valid tokens, ground-truth AUC."""
    per_prompt = {"fid_f": fidelity(original, factual), "fid_cf": fidelity(original, counterfactual),
                  "kl_f": kl(original, factual, direction=kl_direction),
                  "kl_cf": kl(original, counterfactual, direction=kl_direction),
                  "size": mask_size(importance.cpu().clamp(0, 1), generation.text.valid.cpu())}  # [b] each
    out = []
    for j in range(original.shape[0]):
        values = {key: float(v[j]) for key, v in per_prompt.items()}
        valid = generation.text.valid[j].cpu()
        audio_level = importance[j].cpu()[:, valid].mean(0)  # [N_j], Eq. 7
        values["auc"] = math.nan if truth is None else truth.auc(audio_level, generation.text.tokens[j])
        out.append(values)
    return out


def _tables(methods, folders, columns1=TABLE1) -> tuple[list[dict], list[dict]]:
    ori = {folder: json.loads((folder / ORIGINAL_JSON).read_text())[ORI] for folder in folders
           if (folder / ORIGINAL_JSON).is_file()}
    records: dict[str, list[dict]] = {ORI: list(ori.values())}
    for method in methods:
        records[method] = [paired_with_ori(json.loads((f / method / "explanation.json").read_text())["metadata"],
                                           ori.get(f)) for f in folders if Explanation.is_complete(f / method)]
    table1 = summarise(records, columns1)
    table2 = summarise({m: records[m] for m in methods}, TABLE2)
    return table1, table2


def _log_to_wandb(logger, result: EvaluationResult, columns1=TABLE1) -> None:
    """Both tables as W&B tables, and their means as scalars ``{method}/{column}``."""
    for name, rows, columns in (("table1", result.table1, columns1), ("table2", result.table2, TABLE2)):
        header = ["method", "n"] + [c for column, _ in columns for c in (column, f"{column}_se")]
        logger.log_table(key=name, columns=header, data=[[_plain(row.get(h)) for h in header] for row in rows])
        logger.log_metrics({f"{row['method']}/{column}": row[column] for row in rows for column, _ in columns
                            if not math.isnan(row[column])})


def _plain(value):
    return None if isinstance(value, float) and math.isnan(value) else value


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------- CLI task
def run_evaluate(run) -> EvaluationResult:
    """``train.py --config configs/evaluate_*.yaml`` (`lightning_agx.config.EvaluateRun`)."""
    from ..inputs import check_duration
    from ..models.catalogue import world_models
    from ..models.text_check import check_text_before_loading
    from ..runner import output_folder, wandb_logger
    from ..toyworld.heldout import heldout_prompts

    ev = run.evaluation
    methods = list(ev.methods)  # a bad name fails before loading anything
    check_methods([ev.method_options.get(m, {}).get("method", m) for m in methods])
    if run.prompts.given:
        prompts = run.prompts.load()  # cleaned where they enter, with a warning on duplicates/empty
    elif run.model.name in world_models():  # the embedded world's models (the catalogue's): its held-out prompts
        prompts = heldout_prompts(ev.heldout_prompts, run.seed)
    else:
        raise UserError(f"no prompts for model '{run.model.name}': give prompts.file or prompts.texts "
                        f"(only the embedded world's models, {', '.join(world_models())}, have a built-in held-out "
                        "prompt set)")
    check_text_before_loading(run.model.name, prompts)
    output_dir = output_folder(run.output_dir, create=False)
    tag = run.model.load()
    check_duration(tag, run.model.duration)
    tag.check_text(prompts)  # every prompt, before the first chunk's work
    classifier = load_classifier(ev.classifier, tag.device, model_name=run.model.name)
    begin = time.perf_counter()
    result = evaluate(tag, prompts, classifier, output_dir, methods=methods, method_options=ev.method_options,
                      explainer=run.explainer, batch_size=run.prompts.batch_size, seed=run.seed,
                      duration=run.model.duration, repeats=ev.repeats, ori_repeats=ev.ori_repeats,
                      generation=run.model.generation, kl_direction=ev.kl_direction, overwrite=run.overwrite)
    if run.wandb:  # the tables are logged once they exist, into the folder the evaluation has claimed
        logger = wandb_logger(run.logger, output_dir)
        _log_to_wandb(logger, result, table1_columns(tag.ground_truth is not None))
        logger.experiment.finish()
    _log(f"[evaluate] done in {time.perf_counter() - begin:.1f} s; computed {result.computed}\n"
         + result.paths["table1_md"].read_text() + "\n" + result.paths["table2_md"].read_text())
    return result
