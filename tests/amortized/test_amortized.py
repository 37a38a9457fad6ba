"""Amortised AudioGenX: the network, a real Lightning fit on the debug model (cache, resume, export), the
method everywhere a method goes, and the errors of a wrong or missing checkpoint."""
import json
from pathlib import Path

import pytest
import torch

from lightning_agx.amortized import AmortizedCheckpointError, AmortizedExplainer, load_explainer, step_context
from lightning_agx.config import parse
from lightning_agx.errors import UserError


def test_network_masks_differ_per_step_any_length_and_zero_at_padding():
    torch.manual_seed(0)
    net = AmortizedExplainer(dim=8, hidden=16)
    for n, t in ((3, 5), (7, 11)):
        x = torch.randn(2, n, 8)
        valid = torch.ones(2, n, dtype=torch.bool)
        valid[1, -1] = False
        context = type("C", (), {})()
        context.latents, context.attention = torch.randn(2, t, 8), torch.rand(2, t, n) / n
        p = net(x, context, valid)
        assert p.shape == (2, t, n) and (p[1, :, -1] == 0).all() and (p[valid[:, None, :].expand_as(p)] > 0).all()
        assert (p[0, 0] - p[0, 1]).abs().max() > 1e-4, "another step context gives another mask row"
    assert sum(v.numel() for v in AmortizedExplainer(dim=128, hidden=128).state_dict().values()) * 4 < 10e6


def test_training_exports_an_explainer_that_the_method_uses(trained, debug_tag):
    tmp, path = trained
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["model"] == "debug" and meta["steps"] == 4 and meta["train_prompts"] == 16 and meta["val_prompts"] == 4
    assert "val/loss" in meta["last_val"] and meta["command"].startswith("python train.py")
    explainer, info = load_explainer(path, debug_tag)
    assert info["same_weights"] and explainer.hidden == 16
    from lightning_agx import explain
    explained = explain(debug_tag, ["a dog barks loudly", "rain"], method="audiogenx_amortized",
                        method_options={"checkpoint": str(path)}, trainer={"enable_progress_bar": False})
    assert [e.method for e in explained] == ["audiogenx_amortized"] * 2
    assert explained[1].mask.shape[1] == 1 and 0 < float(explained[0].mask.min()) <= float(explained[0].mask.max()) < 1
    assert all(e.metadata["seconds_mask"] >= 0 and e.metadata["seconds_generation"] > 0 for e in explained)
    gen = debug_tag.generate(["a dog barks loudly", "rain"], seed=0)
    direct = explainer(gen.text.embeddings, step_context(debug_tag, gen), gen.text.valid)
    from lightning_agx.methods import run_method
    assert torch.allclose(run_method("audiogenx_amortized", debug_tag, gen, seed=0, checkpoint=str(path)), direct)


def test_a_prompt_gets_the_same_amortised_mask_alone_and_in_a_batch(trained, debug_tag):
    from lightning_agx.methods import run_method
    _, path = trained
    both = debug_tag.generate(["a dog barks loudly near a river", "rain"], seed=[11, 12])
    alone = debug_tag.generate(["rain"], seed=[12])
    a = run_method("audiogenx_amortized", debug_tag, both, seed=[11, 12], checkpoint=str(path))
    b = run_method("audiogenx_amortized", debug_tag, alone, seed=[12], checkpoint=str(path))
    assert (a[1, :, :1] - b[0]).abs().max() < 1e-5


def test_refining_starts_from_the_amortised_prediction_and_lowers_the_objective(trained, debug_tag):
    from lightning_agx.amortized.network import step_context as context_of
    from lightning_agx.explainer import ExplainerConfig, masked_objective
    from lightning_agx.methods import run_method
    from lightning_agx.seeding import streams
    _, path = trained
    gen = debug_tag.generate(["a dog barks loudly", "birds pass softly"], seed=3)
    config = ExplainerConfig()

    def objective(p):
        with torch.no_grad():
            return float(masked_objective(debug_tag, gen, context_of(debug_tag, gen).latents, p, config,
                                          streams([1, 2], "explainer"))[0])
    plain = run_method("audiogenx_amortized", debug_tag, gen, seed=[1, 2], checkpoint=str(path))
    refined = run_method("audiogenx_amortized", debug_tag, gen, seed=[1, 2], checkpoint=str(path),
                         refine_steps=20, refine_lr=0.1, config=config)
    assert not torch.allclose(plain, refined)
    assert objective(refined) < objective(plain)


def test_resume_continues_from_the_last_checkpoint_and_reuses_the_cached_generations(trained, train_argv, caplog):
    import logging
    tmp, _ = trained
    chunks = sorted((tmp / "run" / "generations" / "train").glob("chunk_*.safetensors"))
    stamps = [c.stat().st_mtime_ns for c in chunks]
    with caplog.at_level(logging.INFO, logger="lightning_agx"):
        path = parse(None, train_argv(tmp, "--trainer.max_epochs", "3", "--ckpt_path",
                                      str(tmp / "run" / "checkpoints" / "last.ckpt"))).run()
    assert json.loads(Path(path).with_suffix(".json").read_text())["steps"] == 6, "2 more steps after the 4 done"
    assert [c.stat().st_mtime_ns for c in chunks] == stamps, "no generation is redone"
    assert "generated" not in caplog.text


def test_a_cache_made_another_way_is_refused(trained, train_argv):
    tmp, _ = trained
    with pytest.raises(UserError, match="holds generations made another way.*seed"):
        parse(None, train_argv(tmp, "--seed", "5", "--trainer.max_epochs", "1")).run()


def test_a_checkpoint_for_another_model_or_a_missing_one_is_one_clear_error(trained, tmp_path):
    from lightning_agx.models import load_model
    _, path = trained
    magnet = load_model("debug-magnet")
    meta = json.loads(path.with_suffix(".json").read_text())
    meta["model"] = "toysounds"
    other = tmp_path / "other.safetensors"
    other.write_bytes(path.read_bytes())
    other.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(AmortizedCheckpointError, match="trained for model 'toysounds'.*not for 'debug-magnet'"):
        load_explainer(other, magnet)
    with pytest.raises(AmortizedCheckpointError, match="no amortised explainer at .*missing.safetensors"):
        load_explainer(tmp_path / "missing", magnet)
    with pytest.raises(AmortizedCheckpointError, match="no shipped amortised explainer for model 'debug-magnet'"):
        load_explainer(None, magnet)


def test_a_lightning_checkpoint_loads_with_weights_only(trained, debug_tag):
    tmp, path = trained
    ckpt = tmp / "run" / "checkpoints" / "last.ckpt"
    from_ckpt, _ = load_explainer(ckpt, debug_tag)
    exported, _ = load_explainer(path, debug_tag)
    assert from_ckpt.hidden == exported.hidden
    torch.load(ckpt, map_location="cpu", weights_only=True)  # no pickled object needs trusting


def test_training_prompts_never_use_the_held_out_world():
    from lightning_agx.amortized.data import toysounds_prompts
    from lightning_agx.toyworld.heldout import heldout_prompts
    train, _ = toysounds_prompts("train", 300, seed=0)
    val, clips = toysounds_prompts("val", 20, seed=0)
    held = set(heldout_prompts(200, seed=0))
    assert len(set(train)) == 300 and len(clips) == 20 and not (set(train) | set(val)) & held


def test_excluded_captions_are_not_trained_on(tmp_path, captions):
    from lightning_agx.amortized.data import DataConfig, caption_prompts
    file, excluded = tmp_path / "c.txt", tmp_path / "x.txt"
    file.write_text("\n".join(captions))
    excluded.write_text("\n".join(captions[:10]))
    split = caption_prompts(DataConfig(source="captions", captions=str(file), exclude=[str(excluded)]))
    assert not set(split["train"] + split["val"]) & set(captions[:10]) and split["val"]
    assert not set(split["train"]) & set(split["val"])


@pytest.mark.parametrize("model", ["toysounds", "toysounds-diffusion"])
def test_shipped_toysounds_explainer_is_small_and_matches_the_model(model):
    from lightning_agx.amortized.store import default_checkpoint
    path = default_checkpoint(model)
    if not path.is_file():
        pytest.skip(f"the shipped amortised explainer of {model} is not built")
    from lightning_agx.models import load_model
    assert path.stat().st_size < 10e6
    explainer, info = load_explainer(None, load_model(model))
    assert info["model"] == model and info["same_weights"] and info["seed"] == 0 and "fit_seconds" in info
    report = json.loads((path.parent / "build_report.json").read_text())["stages"][path.stem]
    assert report["file"] == path.name and report["seconds"] == info["fit_seconds"], "its training is in the report"


def test_the_sanity_check_degrades_the_amortised_explainer(trained, tmp_path):
    from analysis.sanity import SanityConfig, run
    _, path = trained
    config = SanityConfig(output_dir=str(tmp_path), methods=["audiogenx_amortized"], num_prompts=1)
    config.model.name = "debug"
    config.amortized.checkpoint = str(path)
    summary = run(config)
    final = summary["verdicts"][0]
    assert final["method"] == "audiogenx_amortized" and not summary["skipped"]
    assert final["final_spearman"] < 0.9, "the explanation must move once the model is random"


def test_the_explain_config_selects_the_amortised_method_and_a_missing_checkpoint_is_one_line(trained, tmp_path,
                                                                                               capsys):
    from lightning_agx.cli import main
    from lightning_agx.explanation import load_explanations
    _, path = trained
    argv = ["--config", "configs/debug.yaml", "--prompts.texts", "[a dog barks, rain]", "--prompts.file", "null",
            "--method", "audiogenx_amortized", "--wandb", "false", "--trainer.enable_progress_bar", "false"]
    main([*argv, "--amortized.checkpoint", str(path), "--output_dir", str(tmp_path / "ok")])
    found = load_explanations(tmp_path / "ok")
    assert [e.method for e in found] == ["audiogenx_amortized"] * 2
    identity = json.loads((tmp_path / "ok" / "run.json").read_text())
    assert identity["method"] == "audiogenx_amortized" and identity["method_options"]["refine_steps"] == 0
    assert len(identity["method_options"]["explainer_weights"]) == 64, "the explainer's weights are part of it"
    with pytest.raises(SystemExit) as stop:
        main([*argv, "--amortized.checkpoint", str(tmp_path / "nope"), "--output_dir", str(tmp_path / "bad")])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and "no amortised explainer at" in err and "Traceback" not in err


def test_a_resumed_fit_gives_the_weights_of_an_uninterrupted_one(tmp_path, train_argv):
    from safetensors.torch import load_file
    (tmp_path / "a").mkdir()
    straight = Path(parse(None, train_argv(tmp_path / "a", "--trainer.max_epochs", "2")).run())
    (tmp_path / "b").mkdir()
    parse(None, train_argv(tmp_path / "b", "--trainer.max_epochs", "1")).run()
    resumed = Path(parse(None, train_argv(tmp_path / "b", "--trainer.max_epochs", "2", "--ckpt_path",
                                           str(tmp_path / "b" / "run" / "checkpoints" / "last.ckpt"))).run())
    a, b = load_file(str(straight)), load_file(str(resumed))
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a), "the same orders and noise after the resume"
