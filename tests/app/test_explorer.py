"""The explorer's callbacks against the library: the same mask and audio as `explain()`, Eq. 7 intervals,
Eq. 15 edits, refinement, and bad input as one-line `UserError`s."""
from __future__ import annotations

import json

import pytest
import torch

from lightning_agx.api import explain
from lightning_agx.app import ui
from lightning_agx.editing import edit_mask
from lightning_agx.errors import UserError

PROMPT = "a knock followed by a siren"
QUIET = {"enable_progress_bar": False}


@pytest.fixture(scope="module")
def result(explorer):
    return explorer.explain(PROMPT, seed=3)


def test_explain_is_the_librarys_explanation(explorer, result):
    assert explorer.method == "audiogenx_amortized"  # the fast default where a shipped explainer exists
    ref = explain(explorer.tag, [PROMPT], seed=3, method="audiogenx_amortized", trainer=QUIET)[0]
    assert torch.equal(result.explanation.codes, ref.codes)
    assert torch.equal(result.explanation.mask, ref.mask)
    assert torch.allclose(result.audio.wav, ref.audio)
    assert result.tokens == ref.tokens == PROMPT.split()
    other = explorer.explain(PROMPT, seed=4)
    assert not torch.equal(other.explanation.codes, result.explanation.codes)  # the seed matters


def test_regenerations_and_labels(explorer, result):
    shape = result.audio.wav.shape
    assert result.factual.wav.shape == shape and result.counterfactual.wav.shape == shape
    assert not torch.equal(result.factual.wav, result.counterfactual.wav)
    for audio in (result.audio, result.factual, result.counterfactual):
        assert len(audio.labels) == 5 and set(audio.labels) <= set(explorer.classifier.labels)
        assert all(0 <= p <= 1 for p in audio.labels.values())
        assert list(audio.labels.values()) == sorted(audio.labels.values(), reverse=True)
    assert {"knock", "siren"} <= set(list(result.audio.labels)[:3])  # the classifier hears the prompt


def test_interval_is_eq7_without_model_work(explorer, result):
    whole = explorer.interval(result, 0, result.explanation.duration)
    assert list(whole.values()) == pytest.approx(result.explanation.audio_level().tolist(), abs=1e-4)
    assert list(whole) == ["00 a", "01 knock", "02 followed", "03 by", "04 a", "05 siren"]
    part = explorer.interval(result, 0.5, 1.5)
    steps = result.explanation.mask[12:38]  # steps overlapping [0.5, 1.5) s at 25 steps/s
    assert list(part.values()) == pytest.approx(steps.mean(0).tolist(), abs=1e-4)
    assert part != whole


@pytest.mark.parametrize("start, end, words", [(2.0, 1.0, "not after its start"), (-1, 1, "outside the clip"),
                                               (5.0, 6.0, "outside the clip"), (0, 9.0, "after the clip's end"),
                                               ("x", 1, "numbers of seconds")])
def test_bad_intervals(explorer, result, start, end, words):
    with pytest.raises(UserError, match=words):
        explorer.interval(result, start, end)


def test_edit_regenerates_with_the_edited_mask(explorer, result):
    change = explorer.edit(result, ["05 siren"], 1.0, 2.0, 0.1)
    expected = edit_mask(result.explanation, [5], 1.0, 2.0, 0.1)
    assert torch.equal(change.explanation.mask, expected)
    assert change.tokens == [5] and change.value == 0.1
    assert change.audio.wav.shape == result.audio.wav.shape
    assert not torch.equal(change.audio.wav, result.factual.wav)  # the edit changed the audio
    again = explorer.edit(result, [5], 1.0, 2.0, 0.1)  # same seed, same edit: the same audio
    assert torch.equal(again.audio.wav, change.audio.wav)
    louder = explorer.edit(result, ["01 knock"], 0, result.explanation.duration, 1.5)  # above 1 is allowed
    assert louder.explanation.mask[:, 1].eq(1.5).all() and change.heatmap.is_file()


@pytest.mark.parametrize("tokens, value, words", [([], 0.9, "at least one token"), (["09 dog"], 0.9, "not a token"),
                                                  (["01 siren"], 0.9, "not a token"), ([1], -0.5, ">= 0"),
                                                  ([1], "loud", "must be a number")])
def test_bad_edits(explorer, result, tokens, value, words):
    with pytest.raises(UserError, match=words):
        explorer.edit(result, tokens, 0, 1.0, value)


def test_refine_is_per_prompt_audiogenx(explorer, result):
    steps = []
    refined = explorer.refine(result, progress=lambda fraction, what: steps.append((fraction, what)))
    ref = explain(explorer.tag, [PROMPT], seed=3, method="audiogenx", trainer=QUIET)[0]
    assert refined.explanation.method == "audiogenx"
    assert torch.equal(refined.explanation.codes, result.explanation.codes)  # the same audio, re-explained
    assert torch.allclose(refined.explanation.mask, ref.mask, atol=1e-6)
    fractions = [f for f, _ in steps]
    assert fractions == sorted(fractions) and fractions[-1] <= 1
    assert sum("refining: step" in what for _, what in steps) == explorer.explainer.epochs


def test_downloads_are_the_main_jobs_files(explorer, result, tmp_path):
    names = {p.name for p in explorer.downloads(result)}
    assert {"explanation.json", "explanation.safetensors", "audio.wav", "heatmap.png"} <= names
    summary = json.loads((result.folder / "explanation" / "explanation.json").read_text())
    assert summary["prompt"] == PROMPT and summary["method"] == "audiogenx_amortized"
    from lightning_agx.explanation import Explanation
    loaded = Explanation.load(result.folder / "explanation")
    assert torch.equal(loaded.mask, result.explanation.mask)


def test_bad_prompts(explorer):
    for empty in ("", "   \n\t"):
        with pytest.raises(UserError, match="empty"):
            explorer.explain(empty)
    with pytest.raises(UserError, match="no word of the prompt is in the model's vocabulary .*hello, world"):
        explorer.explain("hello world")
    prompt, _, _, notices = explorer.prepare("a zorp followed by a siren")
    assert prompt == "a zorp followed by a siren" and "zorp" in notices[0]
    long = " ".join(["a knock followed by a siren"] * 7)  # 35 words, over the 32-token limit
    prompt, _, _, notices = explorer.prepare(long)
    assert prompt.split() == long.split()[:32] and "limit of 32" in notices[0]
    assert notices[0].endswith(f"dropped {' '.join(long.split()[32:])!r}")
    for seed in (-1, 1.5, "x"):
        with pytest.raises(UserError, match="seed"):
            explorer.prepare("a knock", seed=seed)
    with pytest.raises(UserError, match="duration"):
        explorer.prepare("a knock", duration=-2)


def test_no_classifier_leaves_the_app_usable(tmp_path, explorer):
    from lightning_agx.app import Explorer
    bare = Explorer(explorer.tag, classifier="no-such-classifier", workdir=tmp_path)
    got = bare.explain("a knock", seed=0)
    assert got.audio.labels == {} and any("no classifier labels" in n for n in got.notices)


def test_models_without_an_amortised_explainer_default_to_audiogenx(debug_tag, tmp_path):
    from lightning_agx.app import Explorer
    assert Explorer(debug_tag, workdir=tmp_path).method == "audiogenx"


def test_page_callbacks_return_what_the_page_shows(explorer, result):
    shown = ui._shown(explorer, result)
    audio, labels, heatmap, factual, _, counterfactual, _, values, bars, files, message, state = shown
    rate, samples = audio
    assert rate == explorer.tag.sample_rate and samples.dtype.name == "int16"
    assert samples.shape == (result.audio.wav.shape[-1],)
    assert heatmap.endswith("heatmap.png") and values == result.audio_level() and state is result
    assert list(bars["token"]) == list(values) and len(files) == 5 and PROMPT in message


def test_cli_defaults_keep_everything_local():
    from lightning_agx.app.__main__ import parse_args
    args = parse_args([])
    assert (args.listen, args.share, args.model, args.method) == ("127.0.0.1", False, "toysounds", None)
    import os
    assert os.environ["GRADIO_ANALYTICS_ENABLED"] == "False"  # set by lightning_agx.app.ui before gradio loads


def test_the_explorer_works_on_the_diffusion_family(tmp_path):
    """Any model load_model takes: a diffusers model explains, re-aggregates and edits the same way."""
    from lightning_agx.app import Explorer
    ex = Explorer("debug-diffusion", classifier="debug", workdir=tmp_path)
    assert ex.method == "audiogenx"  # no amortised explainer for it
    got = ex.explain("a dog barks", seed=1)
    ref = explain(ex.tag, ["a dog barks"], seed=1, trainer=QUIET)[0]
    assert got.explanation.mask.shape == (25, 3) and torch.equal(got.explanation.codes, ref.codes)
    # the same audio and the same optimisation; the Lightning module's and optimize_masks' float reductions can
    # differ in the last bits (1.1e-8 on one machine, 0 on another, for the same code): equal up to rounding
    torch.testing.assert_close(got.explanation.mask, ref.mask, rtol=0, atol=1e-6)
    assert list(ex.interval(got, 0, 0.5)) == ["00 a", "01 dog", "02 barks"]
    change = ex.edit(got, [1], 0, 0.5, 0.1)
    assert change.audio.wav.shape == got.audio.wav.shape and not torch.equal(change.audio.wav, got.factual.wav)


def test_seeds_are_whole_numbers_never_rounded(explorer):
    """The rule of lightning_agx.explain (check_seed), so seed s on the page is explain(..., seed=s)."""
    for seed in (1.5, "1.5", 2 ** 32, 2 ** 63, -1, float("nan"), float("inf"), True, "x", [3]):
        with pytest.raises(UserError, match=r"^the seed must be a whole number from 0 to 4294967295; got "):
            explorer.prepare("a knock", seed=seed)
    for seed, expected in ((3.0, 3), ("7", 7), (" 8 ", 8), (2 ** 32 - 1, 2 ** 32 - 1), (None, 0), ("", 0)):
        assert explorer.prepare("a knock", seed=seed)[1] == expected  # exact: no float on the way


# ---- the debug model: the page's shortest duration, bounded disk, bounded figures -------------------------
@pytest.fixture(scope="module")
def debug_explorer(debug_tag, tmp_path_factory):
    from lightning_agx.app import Explorer
    ex = Explorer(debug_tag, workdir=tmp_path_factory.mktemp("debug_explorer"))  # the ToySounds classifier
    yield ex
    ex.close()


def _shortest_duration_offered(explorer) -> float:
    app = ui.build_app(explorer)
    slider = next(block for block in app.blocks.values() if getattr(block, "elem_id", None) == "duration")
    assert slider.minimum == explorer.min_duration
    return slider.minimum


def test_the_shortest_duration_offered_explains_end_to_end(debug_explorer):
    """0.08 s (two steps): shorter than the 0.3 s the ToySounds classifier reads, which pads it."""
    shortest = _shortest_duration_offered(debug_explorer)
    assert shortest == 0.08 and debug_explorer.classifier.min_samples > shortest * debug_explorer.tag.sample_rate
    got = debug_explorer.explain("a dog barks", seed=0, duration=shortest)
    assert got.explanation.num_steps >= 2 and got.heatmap.is_file()
    for audio in (got.audio, got.factual, got.counterfactual):
        assert len(audio.labels) == 5 and all(0 <= p <= 1 for p in audio.labels.values())
    change = debug_explorer.edit(got, [0], 0, shortest, 0.1)
    assert len(change.audio.labels) == 5 and change.heatmap.is_file()


@pytest.mark.slow
def test_the_shortest_duration_offered_on_toysounds(explorer):
    shortest = _shortest_duration_offered(explorer)
    got = explorer.explain(PROMPT, seed=0, duration=shortest)
    assert len(got.audio.labels) == 5 and got.heatmap.is_file()
    assert len(explorer.refine(got).factual.labels) == 5


def test_only_the_newest_results_folders_are_kept(debug_tag, tmp_path):
    from lightning_agx.app import Explorer
    keep = 2
    ex = Explorer(debug_tag, method="random", workdir=tmp_path, keep=keep)
    results = [ex.explain("a dog barks", seed=seed) for seed in range(keep + 3)]
    assert sorted(tmp_path.iterdir()) == sorted(r.folder for r in results[-keep:])
    assert all(len(ex.downloads(r)) == 5 for r in results[-keep:])  # the kept ones are whole
    change = ex.edit(results[0], [0], 0, 0.5, 0.1)  # an edit of a deleted result works, in a folder of its own
    assert sorted(tmp_path.iterdir()) == sorted([results[-1].folder, change.heatmap.parent])
    ex.close()
    assert not tmp_path.exists()
    with pytest.raises(UserError, match="keep"):
        Explorer(debug_tag, method="random", workdir=tmp_path, keep=0)


def test_a_very_long_word_gives_bounded_figures(debug_tag, tmp_path):
    """A 5,000-character word: every figure the explorer draws (lightning_agx.figures) stays a bounded PNG."""
    import matplotlib.pyplot as plt
    from PIL import Image

    from lightning_agx.app import Explorer
    ex = Explorer(debug_tag, method="random", workdir=tmp_path)
    opened = plt.get_fignums()
    got = ex.explain("a dog " + "x" * 5000, seed=0)
    change = ex.edit(got, [len(got.tokens) - 1], 0, 0.5, 0.1)
    pictures = [got.heatmap, got.heatmap.with_name("bars.png"), change.heatmap]
    for path in pictures:
        with Image.open(path) as picture:
            assert picture.width < 3000 and picture.height < 3000, (path.name, picture.size)
    assert plt.get_fignums() == opened  # every figure closed


def test_figures_are_closed_when_drawing_fails(debug_tag, tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    import lightning_agx.figures as figures
    from lightning_agx.app import Explorer

    def broken(explanation, title=None):
        figure = plt.figure()
        figure.add_subplot().plot([0, 1])
        raise RuntimeError("drawing failed")

    ex = Explorer(debug_tag, method="random", workdir=tmp_path)
    got = ex.explain("a dog barks", seed=0)
    opened = plt.get_fignums()
    for name in ("heatmap_figure", "bars_figure"):
        with monkeypatch.context() as patch:
            patch.setattr(figures, name, broken)
            patch.setattr("lightning_agx.app.explorer.heatmap_figure", broken)
            with pytest.raises(RuntimeError, match="drawing failed"):
                ex.explain("a dog barks", seed=0)
            with pytest.raises(RuntimeError, match="drawing failed"):
                ex.edit(got, [0], 0, 0.5, 0.1)
            assert plt.get_fignums() == opened
