"""Output folders the project owns: nothing it did not write is deleted, moved or read as results."""
import json

import pytest

from lightning_agx.api import explain
from lightning_agx.cli import main
from lightning_agx.errors import UserError
from lightning_agx.explainer import ExplainerConfig
from lightning_agx.explanation import TENSORS_NAME, load_explanations
from lightning_agx.ownership import MANIFEST

FAST = ExplainerConfig(hidden=16, epochs=2)
QUIET = {"enable_progress_bar": False}
PROMPTS = ["a dog barks", "wind blows"]


def _run(tag, out, prompts=PROMPTS, **kwargs):
    kwargs.setdefault("config", FAST)
    return explain(tag, prompts, output_dir=out, batch_size=2, trainer=QUIET, logger=None, figures=False, **kwargs)


def _tree(folder):
    return sorted((str(p.relative_to(folder)), p.read_bytes() if p.is_file() else None) for p in folder.rglob("*"))


def _users_folders(out):
    """What a user keeps in a folder: names that look like results, with content."""
    for name in ("2023_taxes", "prompts", "0000_a_dog_barks_notes"):
        (out / name).mkdir(parents=True)
        (out / name / "a.txt").write_text("keep")
    (out / ".keep.0123abcd.tmp").mkdir()  # even the shape of our temporary folders
    return {name: (out / name / "a.txt").read_text() for name in ("2023_taxes", "prompts", "0000_a_dog_barks_notes")}


def test_overwrite_removes_only_what_the_project_wrote(debug_tag, tmp_path):
    """The issue's data loss: --overwrite removed every folder whose name looked like a result."""
    out = tmp_path / "x"
    kept = _users_folders(out)
    _run(debug_tag, out)
    _run(debug_tag, out, seed=3, overwrite=True)  # another identity: the first run's results replaced
    for name, text in kept.items():
        assert (out / name / "a.txt").read_text() == text
    assert (out / ".keep.0123abcd.tmp").is_dir()
    written = json.loads((out / MANIFEST).read_text())["written"]
    assert "2023_taxes" not in written and "0000_a_dog_barks" in written
    assert [e.metadata["run"]["seed"] for e in load_explanations(out)] == [3, 3]


def test_the_cli_overwrite_of_the_issue_keeps_the_users_folders(tmp_path):
    out = tmp_path / "x"
    (out / "2023_taxes").mkdir(parents=True)
    (out / "2023_taxes" / "a.txt").write_text("keep")
    (out / "prompts").mkdir()
    args = ["--config", "configs/debug.yaml", "--output_dir", str(out), "--explainer.epochs", "2",
            "--explainer.hidden", "8", "--figures", "false", "--wandb", "false",
            "--trainer.enable_progress_bar", "false"]
    main(args + ["--overwrite", "true"])
    main(args + ["--overwrite", "true", "--seed", "1"])
    assert (out / "2023_taxes" / "a.txt").read_text() == "keep" and (out / "prompts").is_dir()


def test_a_folder_of_the_runs_name_made_by_somebody_else_stops_the_run_untouched(debug_tag, tmp_path):
    out = tmp_path / "x"
    (out / "0001_wind_blows").mkdir(parents=True)
    (out / "0001_wind_blows" / "mine.txt").write_text("keep")
    before = _tree(out)
    for overwrite in (False, True):
        with pytest.raises(UserError, match="0001_wind_blows, which lightning_agx did not write; move it away"):
            _run(debug_tag, out, overwrite=overwrite)
    assert _tree(out) == before  # nothing written, not even the manifest


def test_a_refused_rerun_changes_nothing(debug_tag, tmp_path):
    out = tmp_path / "x"
    _run(debug_tag, out)
    before = _tree(out)
    with pytest.raises(UserError, match="another run"):
        _run(debug_tag, out, prompts=["thunder"], seed=9)
    assert _tree(out) == before


def test_the_evaluation_does_not_take_a_users_prompts_folder(debug_tag, tmp_path):
    from lightning_agx.classifiers import load_classifier
    from lightning_agx.evaluation.run import evaluate
    out = tmp_path / "ev"
    (out / "prompts").mkdir(parents=True)
    (out / "prompts" / "a.txt").write_text("keep")
    with pytest.raises(UserError, match="prompts, which lightning_agx did not write"):
        evaluate(debug_tag, ["rain"], load_classifier("debug"), out, methods=["random"], repeats=1, ori_repeats=1,
                 overwrite=True)
    assert (out / "prompts" / "a.txt").read_text() == "keep"


def test_readers_read_the_runs_index_not_every_folder(debug_tag, tmp_path):
    """The issue: a folder whose run lists 2 prompts gave 5 (stale and foreign folders read as results)."""
    out = tmp_path / "x"
    _run(debug_tag, out, prompts=["thunder", "rain", "a bird sings", "a dog barks", "wind blows"])
    _run(debug_tag, out, prompts=PROMPTS, overwrite=True)  # prompt folders 2-4 of the old run are gone
    stale = _run(debug_tag, tmp_path / "other", prompts=["dog", "bird", "cat"])
    assert len(stale) == 3
    import shutil
    shutil.copytree(tmp_path / "other" / "0002_cat", out / "0002_cat")  # a complete explanation nobody listed
    found = load_explanations(out)
    assert [e.prompt for e in found] == PROMPTS


def test_readers_refuse_a_folder_that_is_not_a_run_and_a_listed_result_that_was_changed(debug_tag, tmp_path):
    with pytest.raises(UserError, match="is not the output folder of an explain run"):
        load_explanations(tmp_path)
    out = tmp_path / "x"
    _run(debug_tag, out)
    tensors = out / "0001_wind_blows" / TENSORS_NAME
    data = bytearray(tensors.read_bytes())
    data[-1] ^= 0x01
    tensors.write_bytes(bytes(data))
    with pytest.raises(UserError, match="0001_wind_blows is listed as done but cannot be read.*hash"):
        load_explanations(out)


def test_a_result_whose_content_changed_is_redone_on_resume(debug_tag, tmp_path, caplog):
    import logging
    out = tmp_path / "x"
    first = _run(debug_tag, out)
    tensors = out / "0000_a_dog_barks" / TENSORS_NAME
    data = bytearray(tensors.read_bytes())
    data[-2] ^= 0x40  # a value of the mask flipped: the file still parses, the shapes and finiteness still hold
    tensors.write_bytes(bytes(data))
    with caplog.at_level(logging.INFO, logger="lightning_agx"):
        again = _run(debug_tag, out)
    assert "recomputing prompt 0" in caplog.text and "1 prompts found done, 1 redone" in caplog.text
    assert (again[0].mask - first[0].mask).abs().max() < 1e-5


def test_a_stale_temporary_folder_is_removed_only_for_a_name_the_project_owns(debug_tag, tmp_path):
    out = tmp_path / "x"
    _run(debug_tag, out)
    ours, theirs = out / ".0001_wind_blows.0123abcd.tmp", out / ".holiday.0123abcd.tmp"
    ours.mkdir()
    theirs.mkdir()
    _run(debug_tag, out)
    assert not ours.exists() and theirs.is_dir()


@pytest.mark.parametrize("seed", [-1, 2 ** 32, 1.5, "3", True])
def test_a_seed_outside_the_range_stops_before_anything_is_written(debug_tag, tmp_path, seed):
    """The issue: seeds outside numpy's range crashed after run.json was written, and the folder then
    refused the correct run."""
    out = tmp_path / "x"
    with pytest.raises(UserError, match="seed must be a whole number from 0 to 4294967295"):
        _run(debug_tag, out, seed=seed)
    assert not out.exists()
    assert len(_run(debug_tag, out, seed=0)) == 2


@pytest.mark.parametrize("seed", [0, 2 ** 32 - 1])
def test_the_seed_range_edges_work_end_to_end(debug_tag, seed):
    [e] = explain(debug_tag, ["rain"], config=FAST, seed=seed, trainer=QUIET, logger=None)
    assert e.metadata["run"]["seed"] == seed


def test_duplicate_prompts_keep_the_results_aligned_with_the_input(debug_tag):
    """The issue: duplicates shortened the list explain returned."""
    found = explain(debug_tag, ["rain", "wind", "rain"], config=FAST, trainer=QUIET, logger=None)
    assert [e.prompt for e in found] == ["rain", "wind", "rain"]
    assert found[0].metadata["seed"] != found[2].metadata["seed"]  # each position has its own seed
