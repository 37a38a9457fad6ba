"""The explorer's page: a Gradio ``Blocks`` app over an `Explorer` (audiocraft's demo convention).

Events (each also an API endpoint, callable with ``gradio_client``)::

    /explain   prompt [, seed, duration] -> audio, labels, heatmap, factual and counterfactual audio with
               labels, token importances (token -> value, Eq. 7 over the whole clip), bars, downloads, message
    /interval  start, end -> bars and token importances over [start, end) s (Eq. 7; no model work)
    /refine    -> the same outputs as /explain, from the per-prompt AudioGenX optimisation (with progress)
    /edit      tokens, start, end, value -> before and after (Eq. 15): players, heatmaps, labels, message

The session's `Result` lives in a ``gr.State``: each browser tab (each ``gradio_client.Client``) has its own,
so results are never mixed between users. Model work is queued one request at a time (and the explorer holds
a lock), so a second request waits and never corrupts the first. Bad input raises ``gr.Error`` with the
one-line message of the `UserError`: the page shows it and the app keeps serving; the page's boxes pass
what was typed on unchanged (a seed of 1.5 is not rounded), so `Explorer.prepare` alone decides what is valid.

Disk and uploads stay bounded while serving: the explorer keeps its newest results' folders only
(`Explorer.keep`), Gradio deletes its copies of the files it served (and any upload) after `CACHE_AGE`
seconds, and refuses an upload past `MAX_UPLOAD`. The launcher (`__main__`) also puts Gradio's cache inside the
explorer's work folder, so that it is removed with it.
"""
from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # nothing leaves the machine: set before gradio loads
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import gradio as gr  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

from ..errors import UserError  # noqa: E402
from .explorer import EDIT_PRESETS, Audio, Explorer, Result, token_labels  # noqa: E402

EXAMPLE_PROMPTS = ("a knock followed by a siren", "a dog barks followed by a siren")  # closed-vocabulary first
CUSTOM = "custom"
ACTIONS = [f"{name} ({value})" for name, value in EDIT_PRESETS.items()] + [CUSTOM]
MODEL_QUEUE = "model"  # every event that runs the model shares this queue, one at a time
MAX_UPLOAD = "10mb"  # the page takes no file; Gradio's upload route refuses anything larger
CACHE_AGE = 3600  # seconds Gradio keeps its copies of the files it served (checked every 10 minutes)


def build_app(explorer: Explorer) -> gr.Blocks:
    """The page over `explorer`; launch with `launch` (localhost, no share link, analytics off)."""
    tag = explorer.tag
    step = round(1.0 / tag.frame_rate, 4)
    longest = round(tag.num_steps(explorer.max_duration) * step, 4)  # an explanation's span: every LM step
    with gr.Blocks(title="lightning_agx explorer", analytics_enabled=False,
                   delete_cache=(600, CACHE_AGE)) as app:
        state = gr.State(None)
        gr.Markdown(_header(explorer))
        with gr.Row(equal_height=True):
            prompt = gr.Textbox(label="Prompt", value=_example(explorer), scale=4, max_lines=2, elem_id="prompt")
            seed = gr.Number(label="Seed (a whole number >= 0)", value=0, scale=1, elem_id="seed")  # not rounded
            duration = gr.Slider(explorer.min_duration, explorer.max_duration, value=explorer.duration, step=step,
                                 label="Duration (s)", scale=2, elem_id="duration")
            explain = gr.Button("Explain", variant="primary", scale=1, elem_id="explain")
            refine = gr.Button(f"Refine ({explorer.explainer.epochs} optimisation steps)", scale=1, elem_id="refine",
                               visible=explorer.method != "audiogenx")  # audiogenx: the explanation already is
        message = gr.Markdown(elem_id="message")
        with gr.Row():
            with gr.Column():
                audio = gr.Audio(label="Generated audio", type="numpy", interactive=False, elem_id="audio")
                labels = gr.Label(label="Classifier: generated", num_top_classes=3, elem_id="labels")
            with gr.Column():
                factual = gr.Audio(label="Factual: A * m (should sound the same)", type="numpy",
                                   interactive=False, elem_id="factual")
                factual_labels = gr.Label(label="Classifier: factual", num_top_classes=3)
            with gr.Column():
                counterfactual = gr.Audio(label="Counterfactual: A * (1 - m) (should not)", type="numpy",
                                          interactive=False, elem_id="counterfactual")
                counterfactual_labels = gr.Label(label="Classifier: counterfactual", num_top_classes=3)
        with gr.Row():
            heatmap = gr.Image(label="Importance of each token at each step, under the spectrogram",
                               type="filepath", interactive=False, scale=3, elem_id="heatmap")
            with gr.Column(scale=2):
                bars = gr.BarPlot(x="token", y="importance", sort="x", y_lim=[0, 1], x_label_angle=-40,
                                  label="Token importance over the interval (Eq. 7)", elem_id="bars")
                with gr.Row():
                    start = gr.Slider(0, longest, value=0, step=step, label="Interval start (s)", elem_id="start")
                    end = gr.Slider(0, longest, value=explorer.duration, step=step, label="Interval end (s)",
                                    elem_id="end")
                importances = gr.JSON(label="Token importance (token -> value)", elem_id="importances")
        with gr.Accordion("Edit the audio with the explanation (Eq. 15)", open=True):
            with gr.Row():
                edit_tokens = gr.Dropdown(choices=[], value=[], multiselect=True, allow_custom_value=True, scale=3,
                                          label="Tokens to edit", elem_id="edit_tokens")  # checked by the explorer
                action = gr.Radio(ACTIONS, value=ACTIONS[0], label="Action", scale=2)
                value = gr.Number(value=EDIT_PRESETS["amplify"], minimum=0, label="Mask value", scale=1,
                                  elem_id="edit_value")
            with gr.Row():
                edit_start = gr.Slider(0, longest, value=0, step=step, label="Edit from (s)")
                edit_end = gr.Slider(0, longest, value=explorer.duration, step=step, label="Edit until (s)")
                edit = gr.Button("Regenerate edited (same seed)", variant="primary", elem_id="edit")
            with gr.Row():
                with gr.Column():
                    before_audio = gr.Audio(label="Before", type="numpy", interactive=False, elem_id="before")
                    before_heatmap = gr.Image(label="Before: mask", type="filepath", interactive=False)
                    before_labels = gr.Label(label="Classifier labels: before", num_top_classes=3)
                with gr.Column():
                    after_audio = gr.Audio(label="After", type="numpy", interactive=False, elem_id="after")
                    after_heatmap = gr.Image(label="After: edited mask", type="filepath", interactive=False,
                                             elem_id="after_heatmap")
                    after_labels = gr.Label(label="Classifier labels: after", num_top_classes=3)
        downloads = gr.File(label="Downloads: the files the main job writes", file_count="multiple",
                            interactive=False, elem_id="downloads")

        shown = [audio, labels, heatmap, factual, factual_labels, counterfactual, counterfactual_labels,
                 importances, bars, downloads, message, state]
        controls = [edit_tokens, start, end, edit_start, edit_end, before_audio, before_heatmap, before_labels]

        def on_explain(prompt_text: str, seed_value: float = 0, seconds: float = explorer.duration,
                       progress=gr.Progress()):
            return _shown(explorer, _call(explorer.explain, prompt_text, seed_value, seconds, progress=progress))

        def on_refine(result: Result | None, progress=gr.Progress()):
            return _shown(explorer, _call(explorer.refine, _needs(result), progress=progress))

        def on_interval(result: Result | None, first: float, last: float):
            values = _call(explorer.interval, _needs(result), first, last)
            return values, _bars(values)

        def on_edit(result: Result | None, tokens: list[str], first: float, last: float, mask_value: float):
            change = _call(explorer.edit, _needs(result), tokens, first, last, mask_value)
            names = ", ".join(result.tokens[i] for i in change.tokens)
            note = (f"Edited {names} over [{change.start:g}, {change.end:g}) s to {change.value:g} and regenerated "
                    f"with seed {result.seed}.")
            before = result.heatmap if result.heatmap.is_file() else None  # deleted once `keep` newer exist
            return (*_player_image_labels(result.audio, before),
                    *_player_image_labels(change.audio, change.heatmap), note)

        explain.click(on_explain, [prompt, seed, duration], shown, api_name="explain", concurrency_id=MODEL_QUEUE,
                      concurrency_limit=1).success(_controls, state, controls, api_visibility="private")
        prompt.submit(on_explain, [prompt, seed, duration], shown, api_visibility="private",
                      concurrency_id=MODEL_QUEUE, concurrency_limit=1).success(_controls, state, controls,
                                                                               api_visibility="private")
        refine.click(on_refine, [state], shown, api_name="refine", concurrency_id=MODEL_QUEUE,
                     concurrency_limit=1).success(_controls, state, controls, api_visibility="private")
        interval_inputs = [state, start, end]
        gr.on([start.release, end.release, start.input, end.input], on_interval, interval_inputs, [importances, bars],
              api_name="interval", concurrency_limit=None, show_progress="hidden", trigger_mode="always_last")
        edit.click(on_edit, [state, edit_tokens, edit_start, edit_end, value],
                   [before_audio, before_heatmap, before_labels, after_audio, after_heatmap, after_labels, message],
                   api_name="edit", concurrency_id=MODEL_QUEUE, concurrency_limit=1)
        action.change(_preset, action, value, api_visibility="private")
    return app


def launch(app: gr.Blocks, listen: str = "127.0.0.1", port: int | None = None, share: bool = False,
           block: bool = True, max_file_size: str | int = MAX_UPLOAD, **kwargs):
    """Serve `app` on `listen`:`port` (localhost unless asked; a share link only with `share`; uploads up to
    `max_file_size`), one model request at a time; returns (app, local_url, share_url) when not blocking."""
    app.queue(default_concurrency_limit=1)
    return app.launch(server_name=listen, server_port=port, share=share, prevent_thread_lock=not block,
                      show_error=True, ssr_mode=False, mcp_server=False, quiet=True, max_file_size=max_file_size,
                      **kwargs)


# ---------------------------------------------------------------------------------------------- callbacks' parts
def _call(fn, *args, **kwargs):
    """Run an explorer call; a `UserError` becomes the page's error message (the app keeps serving)."""
    try:
        return fn(*args, **kwargs)
    except UserError as error:
        raise gr.Error(str(error), print_exception=False) from None


def _needs(result: Result | None) -> Result:
    if result is None:
        raise gr.Error("explain a prompt first: type a prompt and press Explain", print_exception=False)
    return result


def _shown(explorer: Explorer, result: Result) -> tuple:
    for notice in result.notices:
        gr.Warning(notice)
    values = result.audio_level()
    summary = (f"**{result.explanation.prompt}**: {result.explanation.method} on {explorer.tag.name}, seed "
               f"{result.run_seed} (prompt seed {result.seed}), {result.duration:g} s, "
               f"{result.explanation.num_steps} steps x {len(result.tokens)} tokens.")
    message = "\n\n".join([summary, *(f"Note: {n}" for n in result.notices)])
    return (_player(result.audio), result.audio.labels, str(result.heatmap), _player(result.factual),
            result.factual.labels, _player(result.counterfactual), result.counterfactual.labels, values,
            _bars(values), [str(p) for p in explorer.downloads(result)], message, result)


def _controls(result: Result):
    """After an explanation: the token choices, and intervals reset to the whole clip."""
    end = round(result.explanation.duration, 4)
    choices = token_labels(result.tokens)
    return (gr.Dropdown(choices=choices, value=[]), gr.Slider(value=0), gr.Slider(value=end), gr.Slider(value=0),
            gr.Slider(value=end), _player(result.audio), str(result.heatmap), result.audio.labels)


def _player_image_labels(audio: Audio, heatmap) -> tuple:
    return _player(audio), None if heatmap is None else str(heatmap), audio.labels


def _player(audio: Audio):
    """``(sample_rate, int16 samples)`` for a gr.Audio player (channels averaged to mono)."""
    mono = audio.wav.float().mean(0).clamp(-1, 1)
    return audio.sample_rate, (mono * 32767).round().to(torch.int16).numpy()


def _bars(values: dict[str, float]) -> pd.DataFrame:
    return pd.DataFrame({"token": list(values), "importance": list(values.values())})


def _preset(action: str):
    for name, value in EDIT_PRESETS.items():
        if action.startswith(name):
            return gr.Number(value=value)
    return gr.Number()


def _example(explorer: Explorer) -> str:
    vocabulary = explorer.tag.vocabulary
    if vocabulary is None:
        return EXAMPLE_PROMPTS[-1]
    return next((p for p in EXAMPLE_PROMPTS if set(p.split()) <= vocabulary), "")


def _header(explorer: Explorer) -> str:
    tag = explorer.tag
    fast = ("the amortised AudioGenX explainer (one forward per prompt; **Refine** runs the per-prompt "
            "optimisation)" if explorer.method == "audiogenx_amortized" else f"`{explorer.method}`")
    return (f"# lightning_agx explorer\nModel **{tag.name}** ({tag.frame_rate:g} steps/s, up to "
            f"{explorer.max_duration:g} s), explained with {fast}. Type a prompt and press **Explain**: the mask "
            "says how much each token mattered at each step; pick an interval to re-aggregate it (Eq. 7), edit "
            "tokens to regenerate (Eq. 15). Everything runs on this machine.")


__all__ = ["build_app", "launch"]
