"""Resume is exact: another run's results stop the run, corrupt results are redone, finished ones never."""
import json
import logging
import shutil

import pytest
import torch

from lightning_agx.api import explain
from lightning_agx.errors import UserError
from lightning_agx.explainer import ExplainerConfig
from lightning_agx.explanation import TENSORS_NAME

FAST = ExplainerConfig(hidden=16, epochs=2)
QUIET = {"enable_progress_bar": False}  # lightning.Trainer arguments
PROMPTS = ["a dog barks", "wind blows", "a bird sings"]


def _run(tag, out, prompts=PROMPTS, **kwargs):
    kwargs.setdefault("config", FAST)
    return explain(tag, prompts, output_dir=out, batch_size=2, trainer=QUIET, logger=None, figures=False, **kwargs)


def _stamps(out):
    return {p.name: (p / "explanation.json").stat().st_mtime_ns for p in out.iterdir() if p.name[:1].isdigit()}


def test_a_rerun_with_other_settings_stops_naming_the_differences(debug_tag, tmp_path):
    out = tmp_path / "run"
    _run(debug_tag, out)
    before = _stamps(out)
    with pytest.raises(UserError, match=r"another run \(explainer\.epochs: 2 -> 3; seed: 0 -> 5\).*--overwrite"):
        _run(debug_tag, out, config=ExplainerConfig(hidden=16, epochs=3), seed=5)
    assert _stamps(out) == before  # nothing was touched
    again = _run(debug_tag, out, config=ExplainerConfig(hidden=16, epochs=3), seed=5, overwrite=True)
    assert all(e.metadata["run"]["seed"] == 5 and e.metadata["explainer"]["epochs"] == 3 for e in again)


def test_results_of_an_earlier_version_are_not_reused(debug_tag, tmp_path):
    """A folder without run.json or manifest (a version before run identities) is not the project's to read
    or delete: the run stops, and --overwrite does not remove it either."""
    out = tmp_path / "run"
    _run(debug_tag, out)
    (out / "run.json").unlink()
    (out / ".lightning_agx.json").unlink()
    before = _stamps(out)
    for overwrite in (False, True):
        with pytest.raises(UserError, match="which lightning_agx did not write; move it away"):
            _run(debug_tag, out, overwrite=overwrite)
    assert _stamps(out) == before


def test_a_folder_of_the_version_before_the_manifest_is_adopted_when_its_results_prove_it(debug_tag, tmp_path):
    out = tmp_path / "run"
    _run(debug_tag, out)
    (out / ".lightning_agx.json").unlink()  # run.json and results of the same identity: reused, not redone
    before = _stamps(out)
    _run(debug_tag, out)
    assert _stamps(out) == before


def test_new_prompts_into_an_old_folder_index_only_this_run(debug_tag, tmp_path):
    out = tmp_path / "run"
    _run(debug_tag, out)
    _run(debug_tag, out, prompts=["thunder", "a dog barks"])
    index = json.loads((out / "index.json").read_text())
    assert [(e["index"], e["prompt"], e["status"]) for e in index] == [(0, "thunder", "done"), (1, "a dog barks", "done")]


def test_a_corrupt_result_is_redone_with_a_message_naming_its_folder(debug_tag, tmp_path, caplog):
    out = tmp_path / "run"
    first = _run(debug_tag, out)
    tensors = out / "0001_wind_blows" / TENSORS_NAME
    tensors.write_bytes(tensors.read_bytes()[:100])  # truncated
    before = _stamps(out)
    with caplog.at_level(logging.INFO, logger="lightning_agx"):
        again = _run(debug_tag, out)
    assert "recomputing prompt 1: " in caplog.text and "0001_wind_blows is corrupt" in caplog.text
    assert "2 prompts found done, 1 redone, 0 new" in caplog.text
    # redone alone, not beside prompt 0: the same codes, the mask up to the float rounding of GEMMs of another
    # batch shape (the tolerance of tests/test_batch_invariance.py)
    assert torch.equal(again[1].codes, first[1].codes) and (again[1].mask - first[1].mask).abs().max() < 1e-5
    after = _stamps(out)
    assert after["0000_a_dog_barks"] == before["0000_a_dog_barks"] and after["0001_wind_blows"] != before["0001_wind_blows"]


def test_finished_prompts_of_an_interrupted_chunk_are_kept(debug_tag, tmp_path):
    """Chunks of 2: prompts 0-1, 2. Prompt 1 lost, prompt 0 (same chunk) kept: only prompt 1 is explained."""
    out = tmp_path / "run"
    first = _run(debug_tag, out)
    shutil.rmtree(out / "0001_wind_blows")
    before = _stamps(out)
    again = _run(debug_tag, out)
    after = _stamps(out)
    assert after["0000_a_dog_barks"] == before["0000_a_dog_barks"]
    assert after["0002_a_bird_sings"] == before["0002_a_bird_sings"]
    assert torch.equal(again[1].codes, first[1].codes) and (again[1].mask - first[1].mask).abs().max() < 1e-5


def test_when_all_is_done_the_index_is_rewritten_and_stale_tmp_removed(debug_tag, tmp_path, caplog):
    out = tmp_path / "run"
    _run(debug_tag, out)
    (out / "index.json").unlink()
    stale = out / ".0001_wind_blows.0123abcd.tmp"
    stale.mkdir()
    (stale / "explanation.safetensors").write_bytes(b"half")
    with caplog.at_level(logging.INFO, logger="lightning_agx"):
        _run(debug_tag, out)
    assert not stale.exists() and "3 prompts found done, 0 redone, 0 new" in caplog.text
    assert [e["status"] for e in json.loads((out / "index.json").read_text())] == ["done"] * 3


def test_batch_size_is_not_part_of_the_identity(debug_tag, tmp_path):
    out = tmp_path / "run"
    _run(debug_tag, out)
    before = _stamps(out)
    explain(debug_tag, PROMPTS, output_dir=out, config=FAST, batch_size=3, trainer=QUIET, logger=None, figures=False)
    assert _stamps(out) == before
