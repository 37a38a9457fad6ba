"""Amortised AudioGenX, nothing lost and nothing crashes: a malformed explainer file, a resume with other
settings and bad options or configs are each one line (`UserError`) before any heavy work, never a traceback."""
import json
import random
import re
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from lightning_agx.amortized import AmortizedCheckpointError, load_explainer
from lightning_agx.amortized.data import DataConfig
from lightning_agx.amortized.training import NetworkConfig
from lightning_agx.config import parse
from lightning_agx.errors import UserError
from lightning_agx.methods.audiogenx_amortized import AmortizedOptions, AudioGenXAmortized


class Payload:
    """A pickle that runs code when loaded without weights_only: it creates the file `marker`."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({str(self.marker)!r}, 'w').close()",)


def _export_copy(exported: Path, folder: Path) -> Path:
    """A copy of the exported explainer (weights + JSON) to break."""
    target = folder / "broken.safetensors"
    target.write_bytes(exported.read_bytes())
    target.with_suffix(".json").write_bytes(exported.with_suffix(".json").read_bytes())
    return target


def _tensors(change):
    def build(target: Path, ckpt: Path) -> Path:
        state = load_file(str(target))
        change(state)
        save_file(state, str(target))
        return target
    return build


def _meta(change):
    def build(target: Path, ckpt: Path) -> Path:
        meta = json.loads(target.with_suffix(".json").read_text())
        target.with_suffix(".json").write_text(json.dumps(change(meta)))
        return target
    return build


def _write(suffix: str, data: bytes):
    def build(target: Path, ckpt: Path) -> Path:
        path = target.with_suffix(suffix)
        path.write_bytes(data)
        return path
    return build


def _checkpoint(change):
    def build(target: Path, ckpt: Path) -> Path:
        path = target.with_suffix(".ckpt")
        torch.save(change(torch.load(ckpt, map_location="cpu", weights_only=True)), path)
        return path
    return build


def _folder(target: Path, ckpt: Path) -> Path:
    (target.parent / "run").mkdir()
    return target.parent / "run"


def _json_missing(target: Path, ckpt: Path) -> Path:
    target.with_suffix(".json").unlink()
    return target


RANDOM = random.Random(0).randbytes(512)
BROKEN = {  # case -> (how the file is broken, what the one line says)
    "wrong shape": (_tensors(lambda s: s.update({"head.2.weight": torch.zeros(1, 3)})),
                    r"tensor head\.2\.weight is \[1, 3\], not \[1, 16\]"),
    "missing tensor": (_tensors(lambda s: s.pop("step.3.bias")), r"tensor step\.3\.bias missing"),
    "extra tensor": (_tensors(lambda s: s.update({"extra.weight": torch.zeros(2)})),
                     r"tensor extra\.weight not in the network"),
    "non-finite tensor": (_tensors(lambda s: s["head.2.bias"].fill_(float("nan"))),
                          r"tensor head\.2\.bias is not finite"),
    "random bytes": (_write(".safetensors", RANDOM), r"not a safetensors file"),
    "empty file": (_write(".safetensors", b""), r"not a safetensors file"),
    "json not json": (_write(".json", b"{hidden: 16"), r"broken\.json beside it is not readable JSON"),
    "json random bytes": (_write(".json", RANDOM), r"broken\.json beside it is not readable JSON"),
    "json missing": (_json_missing, r"broken\.json, which says what it was trained for, is missing"),
    "json a list": (_meta(lambda m: [m]), r"broken\.json is not a JSON object"),
    "json without dim": (_meta(lambda m: {k: v for k, v in m.items() if k != "dim"}), r"no dim in broken\.json"),
    "json hidden a string": (_meta(lambda m: {**m, "hidden": "abc"}), r"gives hidden 'abc', not a whole number"),
    "json hidden of other tensors": (_meta(lambda m: {**m, "hidden": 32}), r"tensor \S+ is \[\d+, \d+\], not"),
    "json newer format": (_meta(lambda m: {**m, "format": 99}), r"format 99; this lightning_agx reads format 1"),
    "ckpt without state dict": (_checkpoint(lambda c: {"hyper_parameters": c["hyper_parameters"]}),
                                r"broken\.ckpt .*it has no state_dict"),
    "ckpt without hyper-parameters": (_checkpoint(lambda c: {"state_dict": c["state_dict"]}),
                                      r"it has no hyper_parameters"),
    "ckpt without identity": (_checkpoint(lambda c: {**c, "hyper_parameters": {"hidden": 16}}),
                              r"no model, dim in its hyper_parameters"),
    "ckpt of another network": (_checkpoint(lambda c: {**c, "state_dict": {}}), r"tensor \S+ \(and \d+ more\) missing"),
    "ckpt a list": (_checkpoint(lambda c: [c]), r"it has no state_dict"),
    "ckpt random bytes": (_write(".ckpt", RANDOM), r"broken\.ckpt .*not a PyTorch checkpoint"),
    "ckpt empty": (_write(".ckpt", b""), r"not a PyTorch checkpoint \(EOFError\)"),
    "ckpt zip of junk": (_write(".ckpt", b"PK\x03\x04" + RANDOM),
                         r"not a PyTorch checkpoint \(PytorchStreamReader failed reading zip archive: [^.;]+\);"),
    "missing ckpt": (lambda target, ckpt: target.with_suffix(".ckpt"), r"no checkpoint at \S+broken\.ckpt"),
    "folder": (_folder, r"run is a folder, not an amortised explainer; give the \.safetensors file train\.py"),
}


def _one_line(error: pytest.ExceptionInfo, path: Path) -> str:
    message = str(error.value)
    assert "\n" not in message and path.name in message, message
    assert "train.py" in message, f"the fix is named: {message}"
    return message


@pytest.mark.parametrize("case", list(BROKEN))
def test_a_malformed_explainer_file_is_one_line_naming_the_file_and_the_fix(case, trained, debug_tag, tmp_path):
    tmp, exported = trained
    build, says = BROKEN[case]
    path = build(_export_copy(exported, tmp_path), tmp / "run" / "checkpoints" / "last.ckpt")
    with pytest.raises(AmortizedCheckpointError) as error:
        load_explainer(path, debug_tag)
    assert re.search(says, _one_line(error, path)), str(error.value)


@pytest.mark.parametrize("pickled", ["torch.save", "pickle protocol 4"])
def test_a_checkpoint_pickling_code_is_refused_without_running_it(pickled, trained, debug_tag, tmp_path):
    import pickle
    _, exported = trained
    marker, path = tmp_path / "ran", tmp_path / "evil.ckpt"
    payload = {"state_dict": Payload(marker), "hyper_parameters": {"hidden": 16}}
    if pickled == "torch.save":
        torch.save(payload, path)
    else:
        path.write_bytes(pickle.dumps(payload, protocol=4))
    with pytest.raises(AmortizedCheckpointError) as error:
        load_explainer(path, debug_tag)
    message = _one_line(error, path)
    assert not marker.exists(), "nothing in the file ran"
    if pickled == "torch.save":
        assert "it pickles exec, not only weights (refused unrun" in message
        torch.load(path, map_location="cpu", weights_only=False)  # the control: loaded unchecked, it runs
    else:
        pickle.loads(path.read_bytes())
    assert marker.exists()


def test_the_method_and_the_api_stop_on_a_malformed_explainer_before_generating(trained, debug_tag, tmp_path,
                                                                                 monkeypatch):
    from lightning_agx import explain
    from lightning_agx.methods import run_method
    _, exported = trained
    path = _tensors(lambda s: s.pop("token.1.weight"))(_export_copy(exported, tmp_path), None)
    monkeypatch.setattr(type(debug_tag), "generate", lambda *a, **k: pytest.fail("generated before the check"))
    with pytest.raises(AmortizedCheckpointError, match=r"broken\.safetensors .*tensor token\.1\.weight missing"):
        explain(debug_tag, ["rain"], method="audiogenx_amortized", method_options={"checkpoint": str(path)},
                trainer={"enable_progress_bar": False})
    monkeypatch.undo()
    generation = debug_tag.generate(["rain"], seed=0)
    with pytest.raises(AmortizedCheckpointError, match="tensor token.1.weight missing"):
        run_method("audiogenx_amortized", debug_tag, generation, checkpoint=str(path))


def _listing(folder: Path) -> dict:
    return {str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.stat().st_size) for p in folder.rglob("*")}


def _no_model_load(monkeypatch):
    from lightning_agx.config import ModelConfig
    monkeypatch.setattr(ModelConfig, "load", lambda self: pytest.fail("the TAG model loaded before the check"))


def test_resuming_with_another_network_is_refused_before_the_model_loads_and_nothing_changes(trained, train_argv,
                                                                                             monkeypatch):
    tmp, _ = trained
    run, ckpt = tmp / "run", tmp / "run" / "checkpoints" / "last.ckpt"
    before = _listing(run)
    _no_model_load(monkeypatch)
    with pytest.raises(UserError) as error:
        parse(None, train_argv(tmp, "--network.hidden", "64", "--network.lr", "0.01", "--trainer.max_epochs", "9",
                               "--ckpt_path", str(ckpt))).run()
    message = str(error.value)
    assert "\n" not in message and str(ckpt) in message
    assert "network.hidden: 16 -> 64" in message and "network.lr: 0.001 -> 0.01" in message
    assert "max_epochs" not in message, "the trainer section may differ on a resume"
    assert "drop --ckpt_path" in message
    assert _listing(run) == before, "no file of the run was written"


def test_a_checkpoint_of_an_older_version_is_checked_on_its_network_and_objective(trained, train_argv, tmp_path,
                                                                                  monkeypatch):
    tmp, _ = trained
    checkpoint = torch.load(tmp / "run" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    del checkpoint["hyper_parameters"]["settings"]  # saved before the run settings were
    old = tmp_path / "old.ckpt"
    torch.save(checkpoint, old)
    _no_model_load(monkeypatch)
    says = r"other settings \(network\.hidden: 16 -> 64; objective\.beta: 0\.001 -> 0\.5\)"
    with pytest.raises(UserError, match=says):
        parse(None, train_argv(tmp, "--network.hidden", "64", "--explainer.beta", "0.5", "--ckpt_path",
                               str(old))).run()


@pytest.mark.parametrize("extra, says", [
    (["--seed", "3"], r"seed: 0 -> 3"),
    (["--data.batch_size", "4"], r"data\.batch_size: 8 -> 4"),
    (["--model.duration", "0.25"], r"model\.duration: 0\.5 -> 0\.25"),
])
def test_resuming_with_other_data_or_seed_is_refused(extra, says, trained, train_argv, monkeypatch):
    tmp, _ = trained
    _no_model_load(monkeypatch)
    with pytest.raises(UserError, match=says):
        parse(None, train_argv(tmp, *extra, "--ckpt_path", str(tmp / "run" / "checkpoints" / "last.ckpt"))).run()


def test_resuming_from_a_malformed_checkpoint_is_one_line_before_the_model_loads(trained, train_argv, tmp_path,
                                                                                 monkeypatch):
    tmp, _ = trained
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(RANDOM)
    _no_model_load(monkeypatch)
    with pytest.raises(UserError) as error:
        parse(None, train_argv(tmp, "--ckpt_path", str(junk))).run()
    message = str(error.value)
    assert "\n" not in message and "junk.ckpt is not a usable amortised explainer: not a PyTorch checkpoint" in message
    assert "drop --ckpt_path" in message


def test_resuming_on_another_model_is_refused_before_the_fit(trained, train_argv, monkeypatch):
    tmp, _ = trained
    run = tmp / "run"
    before = _listing(run)
    with pytest.raises(UserError, match=r"fit on another model \(.*model\.model: debug -> debug-magnet"):
        parse(None, train_argv(tmp, "--model.name", "debug-magnet", "--ckpt_path",
                               str(run / "checkpoints" / "last.ckpt"))).run()
    assert _listing(run) == before


@pytest.mark.parametrize("config, values, says", [
    (NetworkConfig, {"hidden": 0}, "network.hidden must be a whole number >= 1; got 0"),
    (NetworkConfig, {"hidden": 2.5}, "network.hidden must be a whole number"),
    (NetworkConfig, {"hidden": True}, "network.hidden must be a whole number"),
    (NetworkConfig, {"lr": 0}, "network.lr must be a finite number > 0"),
    (NetworkConfig, {"lr": float("nan")}, "network.lr must be a finite number > 0"),
    (NetworkConfig, {"lr": "abc"}, "network.lr must be a finite number > 0"),
    (NetworkConfig, {"weight_decay": -1e-4}, "network.weight_decay must be a finite number >= 0"),
    (NetworkConfig, {"weight_decay": float("inf")}, "network.weight_decay must be a finite number >= 0"),
    (DataConfig, {"train_prompts": 0}, "data.train_prompts must be a whole number >= 1"),
    (DataConfig, {"batch_size": 2.5}, "data.batch_size must be a whole number >= 1"),
    (DataConfig, {"chunk": "8"}, "data.chunk must be a whole number >= 1"),
    (DataConfig, {"val_prompts": True}, "data.val_prompts must be a whole number >= 1"),
    (DataConfig, {"exclude": "test.txt"}, "data.exclude must be a list of caption files"),
    (DataConfig, {"cache_dir": 5}, "data.cache_dir must be a path or null"),
    (DataConfig, {"source": "captions", "captions": ""}, "data.source captions needs data.captions"),
])
def test_a_bad_network_or_data_value_is_one_line(config, values, says):
    with pytest.raises(UserError, match=re.escape(says)):
        config(**values)


def test_a_bad_network_value_stops_the_command_before_the_model_loads(train_argv, tmp_path, monkeypatch):
    _no_model_load(monkeypatch)
    with pytest.raises(UserError, match=re.escape("network.lr must be a finite number > 0; got 0.0")):
        parse(None, train_argv(tmp_path, "--network.lr", "0")).run()
    assert not (tmp_path / "run").exists()


def test_good_network_and_data_values_are_kept():
    assert NetworkConfig(hidden=1, lr=1e-9, weight_decay=0).hidden == 1
    data = DataConfig(source="captions", captions=Path("c.txt"), exclude=[Path("x.txt")], train_prompts=1, chunk=1)
    assert data.train_prompts == 1 and data.captions == Path("c.txt")


@pytest.mark.parametrize("values", [
    {"refine_steps": 2.5}, {"refine_steps": "abc"}, {"refine_steps": -1}, {"refine_steps": True},
    {"refine_steps": float("nan")}, {"refine_lr": 0}, {"refine_lr": -1}, {"refine_lr": float("nan")},
    {"refine_lr": float("inf")}, {"refine_lr": "abc"}, {"refine_lr": True}, {"checkpoint": 5}, {"checkpoint": ""},
    {"checkpoint": ["a.safetensors"]},
])
def test_bad_amortised_options_are_one_line(values):
    key = next(iter(values))
    with pytest.raises(UserError, match=rf"^audiogenx_amortized option {key} must be [^\n]+; got"):
        AmortizedOptions(**values)


def test_the_amortised_options_edges_are_accepted():
    assert AudioGenXAmortized.Options is AmortizedOptions
    assert AmortizedOptions().refine_steps == 0 and AmortizedOptions(refine_steps=10 ** 12).refine_steps == 10 ** 12
    assert AmortizedOptions(refine_lr=1e-300).refine_lr == 1e-300 and AmortizedOptions(refine_lr=1).refine_lr == 1.0
    assert AmortizedOptions(checkpoint=Path("a.ckpt")).checkpoint == Path("a.ckpt")


def test_refine_steps_0_and_1_and_a_tiny_lr_work_end_to_end(trained, debug_tag):
    from lightning_agx.methods import run_method
    _, path = trained
    gen = debug_tag.generate(["a dog barks loudly", "rain"], seed=4)

    def run(**options):
        return run_method("audiogenx_amortized", debug_tag, gen, seed=[1, 2], checkpoint=str(path), **options)
    plain, zero, one, tiny = run(), run(refine_steps=0), run(refine_steps=1), run(refine_steps=1, refine_lr=1e-12)
    assert torch.equal(plain, zero), "0 steps is the amortised prediction itself"
    valid = gen.text.valid[:, None, :].expand_as(one)
    assert one.shape == plain.shape and ((one[valid] > 0) & (one[valid] < 1)).all() and (one[~valid] == 0).all()
    assert (one - plain).abs().max() > 1e-3, "one Adam step of lr 0.05 moves the logits"
    assert (tiny - plain).abs().max() < 1e-6 and torch.isfinite(tiny).all()
    with pytest.raises(UserError, match="refine_steps must be a whole number >= 0; got -1"):
        run(refine_steps=-1)  # refused by the method too (was: no step, silently)
