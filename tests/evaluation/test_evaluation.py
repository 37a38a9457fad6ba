"""The evaluation run on the debug model: tables (the AUC column only with ground truth), resume, bad input."""
import csv
import math
from pathlib import Path

import pytest

from lightning_agx.config import parse
from lightning_agx.classifiers import DebugClassifier
from lightning_agx.evaluation import evaluate
from lightning_agx.evaluation.tables import mean_se
from lightning_agx.toyworld.truth import ToySoundsTruth

CONFIG = str(Path(__file__).resolve().parents[2] / "configs" / "evaluate_debug.yaml")
TABLE1_COLUMNS = ["method", "n", "FidF", "FidF_se", "FidCF", "FidCF_se", "KLF", "KLF_se", "KLCF", "KLCF_se",
                  "Size", "Size_se", "FidF-Ori", "FidF-Ori_se", "KLF-Ori", "KLF-Ori_se"]
TABLE2_COLUMNS = ["method", "n", "seconds", "seconds_se", "peak_MB", "peak_MB_se", "MB_per_explanation",
                  "MB_per_explanation_se"]


def test_mean_and_standard_error():
    mean, se, n = mean_se([1.0, 2.0, 3.0, float("nan")])
    assert (mean, n) == (2.0, 3) and se == pytest.approx(1 / math.sqrt(3)), "sample std 1, NaN left out"


def _run(tmp_path, *extra):
    run = parse(None, ["--config", CONFIG, "--output_dir", str(tmp_path), "--wandb", "false", *extra])
    return run.run()


def _read_csv(path):
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        return reader.fieldnames, list(reader)


def _evaluate(tag, folder):
    return evaluate(tag, ["a dog barks loudly near a river", "rain"], DebugClassifier(), folder,
                    methods=["random", "attention"], batch_size=2, repeats=2, ori_repeats=2, generation={"top_k": 250})


def test_evaluation_writes_both_tables_and_resumes(tmp_path, debug_tag):
    first = _evaluate(debug_tag, tmp_path)
    assert first.computed == {"random": 2, "attention": 2} and first.originals_generated == 2
    header1, rows1 = _read_csv(tmp_path / "table1.csv")
    header2, rows2 = _read_csv(tmp_path / "table2.csv")
    assert header1 == TABLE1_COLUMNS and header2 == TABLE2_COLUMNS
    assert [r["method"] for r in rows1] == ["ori", "random", "attention"]
    assert [r["method"] for r in rows2] == ["random", "attention"]
    for row in rows1[1:]:
        assert row["n"] == "2" and all(row[c] != "" for c in ("FidF", "FidCF", "KLF", "KLCF", "Size"))
        assert float(row["KLF"]) >= 0 and float(row["KLCF"]) >= 0 and 0 < float(row["Size"]) <= 1
    assert rows1[0]["FidCF"] == "" and float(rows1[0]["KLF"]) >= 0, "Ori only has factual-side values"
    assert rows1[0]["FidF-Ori"] == "", "Ori is not paired with itself"
    for row in rows1[1:]:  # paired by prompt: the mean difference is the difference of the means (same prompts)
        for column in ("FidF", "KLF"):
            assert float(row[f"{column}-Ori"]) == pytest.approx(float(row[column]) - float(rows1[0][column]), abs=1e-4)
    assert all(float(r["seconds"]) >= 0 and float(r["peak_MB"]) >= 0 for r in rows2)
    md = (tmp_path / "table1.md").read_text()
    assert "| method | n | FidF | FidCF | KLF | KLCF | Size | FidF-Ori | KLF-Ori |\n" in md
    assert "| attention | 2 |" in md
    assert "AUC" not in md, "the debug model has no ground truth: no AUC column"
    assert "| method | n | seconds | peak_MB | MB_per_explanation |" in (tmp_path / "table2.md").read_text()

    done = sorted(tmp_path.glob("prompts/*/*/explanation.json")) + sorted(tmp_path.glob("prompts/*/original.json"))
    assert len(done) == 6
    stamps = {p: p.stat().st_mtime_ns for p in done}
    second = _evaluate(debug_tag, tmp_path)
    assert second.computed == {"random": 0, "attention": 0} and second.originals_generated == 0
    assert {p: p.stat().st_mtime_ns for p in done} == stamps, "finished prompts are not rewritten"
    assert _read_csv(tmp_path / "table1.csv")[1] == rows1, "a resumed run reports the same table"

    # an interrupted run: one explanation lost -> its (chunk, method) is redone, against the saved original audio
    import shutil
    lost = next(tmp_path.glob("prompts/0001_*/attention"))
    shutil.rmtree(lost)
    third = _evaluate(debug_tag, tmp_path)
    assert third.computed == {"random": 0, "attention": 2} and third.originals_generated == 0
    assert _read_csv(tmp_path / "table1.csv")[1] == rows1, "same seeds and saved originals: identical numbers"


def test_config_file_run_cleans_duplicate_and_empty_prompts_with_a_warning(tmp_path):
    with pytest.warns(UserWarning, match="duplicate"):
        result = _run(tmp_path, "--prompts.texts", '["rain", "", "rain", "a dog barks"]')
    assert result.table1[1]["n"] == 2 and result.computed == {"random": 2, "attention": 2}
    assert (tmp_path / "table1.md").is_file() and (tmp_path / "table2.csv").is_file()


def test_unknown_method_fails_before_any_work(tmp_path):
    with pytest.raises(ValueError, match=r"unknown method 'gradcam'; available: atman, attention, audiogenx"):
        _run(tmp_path / "x", "--evaluation.methods", '["random", "gradcam"]')
    assert not (tmp_path / "x" / "prompts").exists()


def test_classifier_at_another_sample_rate_gets_resampled_audio(tmp_path, debug_tag):
    classifier = DebugClassifier(sample_rate=8000)
    evaluate(debug_tag, ["rain"], classifier, tmp_path, methods=["random"], repeats=1, ori_repeats=1,
             generation={"top_k": 250})
    seconds = debug_tag.decode(debug_tag.generate(["rain"], seed=0).codes).shape[-1] / debug_tag.sample_rate
    assert debug_tag.sample_rate == 16000
    assert classifier.seen_lengths and set(classifier.seen_lengths) == {round(8000 * seconds)}, \
        "16 kHz audio reaches the 8 kHz classifier at 8 kHz (half the samples), not misread"


def test_a_rerun_with_another_seed_does_not_reuse_the_results(tmp_path, debug_tag):
    from lightning_agx.errors import UserError
    evaluate(debug_tag, ["rain"], DebugClassifier(), tmp_path, methods=["random"], repeats=1, ori_repeats=1)
    with pytest.raises(UserError, match=r"another run \(seed: 0 -> 3\).*--overwrite"):
        evaluate(debug_tag, ["rain"], DebugClassifier(), tmp_path, methods=["random"], repeats=1, ori_repeats=1, seed=3)
    result = evaluate(debug_tag, ["rain"], DebugClassifier(), tmp_path, methods=["random"], repeats=1, ori_repeats=1,
                      seed=3, overwrite=True)
    assert result.computed == {"random": 1}


def test_a_model_with_ground_truth_gets_the_auc_column(tmp_path, debug_tag, monkeypatch):
    monkeypatch.setattr(debug_tag, "ground_truth", ToySoundsTruth())
    prompts = ["a loud beep then a drip", "rain"]  # the second has no sound word: its AUC is undefined
    result = evaluate(debug_tag, prompts, DebugClassifier(), tmp_path, methods=["random"], repeats=1,
                      ori_repeats=1, generation={"top_k": 250})
    header, rows = _read_csv(tmp_path / "table1.csv")
    assert header == TABLE1_COLUMNS + ["AUC", "AUC_se"]
    md = (tmp_path / "table1.md").read_text()
    assert "| method | n | FidF | FidCF | KLF | KLCF | Size | FidF-Ori | KLF-Ori | AUC |" in md
    assert "ground-truth sound words" in (tmp_path / "table1.md").read_text()
    import json
    aucs = [json.loads(next(tmp_path.glob(f"prompts/000{i}_*/random/explanation.json")).read_text())["metadata"]["auc"]
            for i in range(2)]
    assert 0 <= aucs[0] <= 1 and math.isnan(aucs[1])
    assert rows[0]["AUC"] == "" and float(rows[1]["AUC"]) == pytest.approx(aucs[0]), "Ori has no AUC; NaN left out"
    assert result.table1[1]["AUC"] == pytest.approx(aucs[0])


def test_an_amortised_row_made_with_other_explainer_weights_is_redone(tmp_path, debug_tag):
    """The amortised explainer's weights are part of its row's identity: a row whose file was retrained in place
    is redone on rerun, not reused (adding that row to a finished folder is allowed, its x and Ori reused)."""
    import torch
    from lightning_agx.amortized import AmortizedExplainer, save_explainer

    def save(seed):
        torch.manual_seed(seed)
        network = AmortizedExplainer(debug_tag.dim, 16, debug_tag.latent_dim)
        return save_explainer(network, tmp_path / "explainer" / "amortized", debug_tag, {"seed": seed})

    checkpoint = str(save(0))
    run = lambda methods: evaluate(  # noqa: E731
        debug_tag, ["a dog barks loudly near a river", "rain"], DebugClassifier(), tmp_path / "eval",
        methods=methods, method_options={"amo": {"method": "audiogenx_amortized", "checkpoint": checkpoint}},
        batch_size=2, repeats=1, ori_repeats=1)
    assert run(["random"]).computed == {"random": 2}
    added = run(["random", "amo"])
    assert added.computed == {"random": 0, "amo": 2} and added.originals_generated == 0
    assert run(["random", "amo"]).computed == {"random": 0, "amo": 0}, "the same weights: reused"
    from lightning_agx.explanation import Explanation
    saved = lambda: Explanation.load(next((tmp_path / "eval" / "prompts").iterdir()) / "amo").mask  # noqa: E731
    before = saved()
    save(1)  # retrained in place: same path, other weights
    assert run(["random", "amo"]).computed == {"random": 0, "amo": 2}
    assert not torch.allclose(saved(), before), "redone with the new weights, not a copy of the old explainer in memory"


def test_saved_results_whose_content_changed_are_redone(tmp_path, debug_tag):
    """Verified before reuse, content included: a row's explanation or a prompt's original codes changed on disk
    (still parseable, same shapes) are made again, and the tables come out as from an untouched run."""
    first = _evaluate(debug_tag, tmp_path)
    rows1 = _read_csv(tmp_path / "table1.csv")[1]
    for path in (next(tmp_path.glob("prompts/0000_*/random/explanation.safetensors")),
                 next(tmp_path.glob("prompts/0001_*/original.safetensors"))):
        data = bytearray(path.read_bytes())
        data[-1] ^= 0x01
        path.write_bytes(bytes(data))
    again = _evaluate(debug_tag, tmp_path)
    assert again.originals_generated == 1 and again.computed["random"] == 2
    assert first.computed["random"] == 2
    rows2 = _read_csv(tmp_path / "table1.csv")[1]
    for a, b in zip(rows1, rows2):  # the original regenerated alone, not beside prompt 0: float rounding only
        assert a.keys() == b.keys() and a["method"] == b["method"]
        for key in a:
            if key != "method" and a[key] != "":
                assert float(a[key]) == pytest.approx(float(b[key]), rel=1e-3, abs=1e-6), (a["method"], key)


def test_a_changed_model_default_is_not_reused_as_the_same_run(tmp_path, debug_tag):
    """One identity for every task: the evaluation records the model's effective sampling settings (it recorded
    only the overrides given, so a model whose default changed reused rows made with the old one)."""
    from lightning_agx.errors import UserError
    _evaluate(debug_tag, tmp_path)
    old = debug_tag.generation_params["cfg_coef"]
    try:
        debug_tag.generation_params["cfg_coef"] = 1.0  # the model's own default changed, no override given
        with pytest.raises(UserError, match=r"another run \(generation\.cfg_coef: 3\.0 -> 1\.0\)"):
            _evaluate(debug_tag, tmp_path)
    finally:
        debug_tag.generation_params["cfg_coef"] = old
