"""The app served on a free localhost port and driven over HTTP with gradio_client: explain, interval, edit,
refine, bad input (the app keeps serving) and two users at once (results never mixed)."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
import soundfile

gradio_client = pytest.importorskip("gradio_client")
from gradio_client.exceptions import AppError  # noqa: E402

PROMPT = "a knock followed by a siren"


def client(url):
    return gradio_client.Client(url, verbose=False)


def test_served_on_localhost_with_four_endpoints(served):
    url, app = served
    assert url.startswith("http://127.0.0.1:")
    endpoints = client(url).view_api(return_format="dict", print_info=False)["named_endpoints"]
    assert set(endpoints) == {"/explain", "/interval", "/refine", "/edit"}
    parameters = {p["parameter_name"]: p for p in endpoints["/explain"]["parameters"]}
    defaults = {name: p.get("parameter_default") for name, p in parameters.items()}
    assert defaults == {"prompt_text": PROMPT, "seed_value": 0, "seconds": 3.0}  # as on the page
    assert app.analytics_enabled is False


def test_explain_interval_edit_over_http(served, explorer):
    url, _ = served
    c = client(url)
    audio, labels, heatmap, factual, factual_labels, counterfactual, _, values, bars, files, message = c.predict(
        PROMPT, api_name="/explain")  # seed and duration default as on the page
    expected = explorer.explain(PROMPT, seed=0)
    assert values == expected.audio_level()  # token -> audio-level importance, Eq. 7
    wav, rate = soundfile.read(audio)
    assert rate == explorer.tag.sample_rate and len(wav) == expected.audio.wav.shape[-1]
    assert labels["label"] == next(iter(expected.audio.labels))
    assert [c["label"] for c in factual_labels["confidences"]] == list(expected.factual.labels)[:3]  # top 3 shown
    assert heatmap.endswith(".png") and len(files) == 5 and PROMPT in message
    assert [row[0] for row in bars["data"]] == list(values)

    part, _ = c.predict(0.5, 1.5, api_name="/interval")
    assert part == explorer.interval(expected, 0.5, 1.5)
    *_, after_audio, after_heatmap, after_labels, note = c.predict(["05 siren"], 0.0, 2.0, 0.1, api_name="/edit")
    edited = explorer.edit(expected, [5], 0.0, 2.0, 0.1)
    assert soundfile.read(after_audio)[0] == pytest.approx(edited.audio.wav[0].clamp(-1, 1).numpy(), abs=1e-3)  # the player clips
    assert after_labels["label"] == next(iter(edited.audio.labels)) and "siren" in note


def test_bad_input_is_a_message_and_the_app_keeps_serving(served):
    url, _ = served
    c = client(url)
    with pytest.raises(AppError, match="explain a prompt first"):
        c.predict(0.0, 1.0, api_name="/interval")
    with pytest.raises(AppError, match="the prompt is empty"):
        c.predict("   ", api_name="/explain")
    with pytest.raises(AppError, match="no word of the prompt is in the model's vocabulary"):
        c.predict("hello world", api_name="/explain")
    *_, message = c.predict("a zorp followed by a siren", 0, 2.0, api_name="/explain")
    assert "outside the model's vocabulary" in message and "zorp" in message
    with pytest.raises(AppError, match="not after its start"):
        c.predict(2.0, 1.0, api_name="/interval")
    with pytest.raises(AppError, match="after the clip's end"):
        c.predict(0.0, 3.12, api_name="/interval")  # the slider's longest span, past this 2 s clip
    with pytest.raises(AppError, match="greater than maximum"):  # gradio's own check of the slider
        c.predict(0.0, 30.0, api_name="/interval")
    with pytest.raises(AppError, match=r"the seed must be a whole number from 0 to 4294967295; got 1.5"):
        c.predict(PROMPT, 1.5, api_name="/explain")  # said, never rounded to 2
    part, _ = c.predict(0.0, 1.0, api_name="/interval")  # still serving, with this session's result
    assert list(part) == ["00 a", "01 zorp", "02 followed", "03 by", "04 a", "05 siren"]


def test_two_users_at_once_get_their_own_results(served, explorer):
    url, _ = served
    prompts = ["a knock followed by a siren", "a loud beep"]
    clients = [client(url), client(url)]
    with ThreadPoolExecutor(2) as pool:  # both requests queued at once
        jobs = [pool.submit(c.predict, p, 1, api_name="/explain") for c, p in zip(clients, prompts)]
        outputs = [job.result(timeout=300) for job in jobs]
    for (prompt, out) in zip(prompts, outputs):
        assert out[7] == explorer.explain(prompt, seed=1).audio_level()
    for c, prompt in zip(clients, prompts):  # each session keeps its own result
        part, _ = c.predict(0.0, 1.0, api_name="/interval")
        assert len(part) == len(prompt.split())


def test_refine_over_http(served, explorer):
    url, _ = served
    c = client(url)
    c.predict("a loud beep", 2, api_name="/explain")
    out = c.predict(api_name="/refine")
    expected = explorer.refine(explorer.explain("a loud beep", seed=2))
    assert out[7] == pytest.approx(expected.audio_level(), abs=1e-4)
    assert "audiogenx on" in out[10]
