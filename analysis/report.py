"""One self-contained HTML page per run: listenable explanations plus the analyses' results.

For each prompt: the heatmap over the spectrogram, the audio-level bars, players for the original,
factual (attention * m) and counterfactual (attention * (1 - m)) audio, and the difference sentences next
to the players. Then every analysis report folder found (its README.md rendered, tables and figures
inlined). Images (PNG) and audio (16-bit WAV) are base64 data URIs: the page opens from disk with no
server and no network. With ``wandb: true`` the same figures, audio and sentences go to W&B (offline
unless ``wandb_offline: false``).

    python -m analysis.report --config configs/report_toysounds.yaml
"""
from __future__ import annotations

import base64
import html
import io
import re
import wave
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from analysis.common import (Common, check_choice, check_prompt_fields, log,  # noqa: E402
                             command)
from analysis.difference import describe_difference, listenable_run  # noqa: E402
from lightning_agx.errors import UserError  # noqa: E402
from lightning_agx.figures import bars_figure, heatmap_figure  # noqa: E402
from lightning_agx.inputs import check_number  # noqa: E402

ANALYSES = ("token_ranking", "negation", "sanity", "editing", "difference")


@dataclass
class ReportConfig(Common):
    """Build the HTML report (and optionally log the same figures to W&B)."""

    output_dir: str = "outputs/report"
    title: str = "lightning_agx report"
    prompts_file: str | None = None
    prompts: list[str] = field(default_factory=list)
    num_prompts: int = 4  # embedded world: test-split captions when neither prompts nor explanations are given
    analyses_dir: str = "outputs/analysis"  # where the analyses wrote their folders (missing ones are skipped)
    analyses: list[str] = field(default_factory=lambda: list(ANALYSES))
    threshold: float = 0.1  # difference sentences: smallest probability change worth a word
    wandb: bool = False
    wandb_offline: bool = True
    wandb_project: str = "lightning_agx"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_prompt_fields(self)
        if isinstance(self.analyses, str) or not isinstance(self.analyses, list):
            raise UserError(f"analyses must be a list among {', '.join(ANALYSES)}; got {self.analyses!r}")
        for name in self.analyses:
            check_choice(name, "each of analyses", ANALYSES)
        check_number(self.threshold, "threshold", low=0)
        if self.wandb and (not isinstance(self.wandb_project, str) or not self.wandb_project.strip()):
            raise UserError("wandb_project must name a W&B project when wandb is true")


# ---------------------------------------------------------------------------------------------- data URIs
def png_uri(fig_or_path) -> str:
    if isinstance(fig_or_path, (str, Path)):
        data = Path(fig_or_path).read_bytes()
    else:
        buffer = io.BytesIO()
        fig_or_path.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
        plt.close(fig_or_path)
        data = buffer.getvalue()
    return "data:image/png;base64," + base64.b64encode(data).decode()


def wav_uri(audio: torch.Tensor, sample_rate: int) -> str:
    """``[C, samples]`` or ``[samples]`` float audio -> 16-bit PCM WAV data URI (peak-normalised if clipping)."""
    wav = audio.detach().float().cpu().reshape(-1, audio.shape[-1]).numpy()
    peak = float(np.abs(wav).max()) if wav.size else 0.0
    if peak > 1.0:
        wav = wav / peak
    pcm = (np.clip(wav, -1, 1) * 32767).astype("<i2").T.copy()  # [samples, C]
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as handle:
        handle.setnchannels(pcm.shape[1])
        handle.setsampwidth(2)
        handle.setframerate(int(sample_rate))
        handle.writeframes(pcm.tobytes())
    return "data:audio/wav;base64," + base64.b64encode(buffer.getvalue()).decode()


# ---------------------------------------------------------------------------------------------- markdown subset
def markdown_to_html(text: str, folder: Path) -> str:
    """The Markdown our analyses write: headings, paragraphs, lists, pipe tables, images (inlined from `folder`)."""
    out, table, items, images = [], [], [], []

    def inline(s: str) -> str:
        s = html.escape(s)
        s = re.sub(r"`([^`]+)`", r"<code>\1</code>", s)
        return re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", s)

    def flush():
        if table:
            rows = [[c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", r.strip().strip("|"))] for r in table
                    if not re.fullmatch(r"\|?(\s*:?-+:?\s*\|)+\s*", r.strip())]
            head, body = rows[0], rows[1:]
            out.append('<div class="scroll"><table><tr>' + "".join(f"<th>{inline(c)}</th>" for c in head) + "</tr>"
                       + "".join("<tr>" + "".join(f"<td>{inline(c)}</td>" for c in r) + "</tr>" for r in body)
                       + "</table></div>")
            table.clear()
        if items:
            out.append("<ul>" + "".join(f"<li>{inline(i)}</li>" for i in items) + "</ul>")
            items.clear()
        if images:
            out.append('<div class="row">' + "".join(images) + "</div>")
            images.clear()

    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("|"):
            if items:
                flush()
            table.append(stripped)
            continue
        if table or (items and not stripped.startswith("- ")):
            flush()
        image = re.fullmatch(r"!\[([^\]]*)\]\(([^)]+)\)", stripped)
        if image:
            path = folder / image.group(2)
            if path.is_file():
                images.append(f'<img class="figure" alt="{html.escape(image.group(1))}" src="{png_uri(path)}">')
            continue
        if images:  # consecutive images share one row
            out.append('<div class="row">' + "".join(images) + "</div>")
            images.clear()
        if stripped.startswith("#"):
            level = min(len(stripped) - len(stripped.lstrip("#")) + 2, 6)  # page headings sit above
            out.append(f"<h{level}>{inline(stripped.lstrip('#').strip())}</h{level}>")
        elif stripped.startswith("- "):
            items.append(stripped[2:])
        elif stripped:
            out.append(f"<p>{inline(stripped)}</p>")
    flush()
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------- page
CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px auto;max-width:1150px;color:#222}
h1{font-size:24px} h2{font-size:20px;border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:36px}
h3,h4,h5{margin:14px 0 6px}
section.prompt{border:1px solid #e3e3e3;border-radius:8px;padding:12px 16px;margin:16px 0;background:#fcfcfc}
.figs{display:flex;flex-wrap:wrap;gap:12px;align-items:flex-start}
.figs{flex-wrap:nowrap}
.figs img{height:auto;object-fit:contain}
.figs img.heat{width:63%}
.figs img.bars{width:35%}
.players{display:grid;grid-template-columns:130px 320px 1fr;gap:8px 12px;align-items:center;margin-top:10px}
.players audio{width:310px}
.label{font-weight:600}
.diff{font-size:14px;color:#333}
div.row{display:flex;gap:12px;align-items:flex-start;margin:8px 0}
div.row img.figure{min-width:0;max-width:100%;max-height:460px;height:auto;object-fit:contain}
.scroll{max-height:420px;overflow:auto;margin:8px 0}
table{border-collapse:collapse;font-size:13px}
th,td{border:1px solid #ddd;padding:3px 7px;text-align:left}
th{background:#f2f2f2;position:sticky;top:0}
nav a{margin-right:12px}
"""


def prompt_section(index: int, explanation, audio: dict, sentences: dict, sample_rate: int) -> str:
    heat = png_uri(heatmap_figure(explanation))
    bars = png_uri(bars_figure(explanation))
    rows = []
    for name, caption in (("original", "original"), ("factual", "factual (keep important)"),
                          ("counterfactual", "counterfactual (remove important)")):
        sentence = sentences.get(name, "")
        rows.append(f'<div class="label">{caption}</div><audio controls preload="metadata" src="{wav_uri(audio[name], sample_rate)}"></audio>'
                    f'<div class="diff">{html.escape(sentence)}</div>')
    return (f'<section class="prompt" id="prompt-{index}"><h3>{index + 1}. {html.escape(explanation.prompt)}</h3>'
            f'<div class="figs"><img class="heat" alt="heatmap" src="{heat}"><img class="bars" alt="bars" src="{bars}"></div>'
            f'<div class="players">{"".join(rows)}</div></section>')


def build_page(title: str, explanations, audio: dict, sentences: list[dict], sample_rate: int,
               analyses: dict[str, Path]) -> str:
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{CSS}</style></head><body><h1>{html.escape(title)}</h1>"]
    nav = ['<a href="#explanations">explanations</a>'] + [f'<a href="#analysis-{n}">{n}</a>' for n in analyses]
    parts.append("<nav>" + "".join(nav) + "</nav>")
    parts.append('<h2 id="explanations">Listenable explanations</h2><p>Heatmap: importance of each text token (rows) '
                 "for each moment of the audio, under its spectrogram. Bars: audio-level importance (mean over time). "
                 "Players: the original audio, the audio generated with only the important tokens (factual) and with "
                 "them removed (counterfactual); the sentences say what the classifier hears change.</p>")
    for i, e in enumerate(explanations):
        parts.append(prompt_section(i, e, {k: v[i] for k, v in audio.items()}, sentences[i], sample_rate))
    for name, folder in analyses.items():
        parts.append(f'<h2 id="analysis-{name}">Analysis: {name.replace("_", " ")}</h2>')
        parts.append(markdown_to_html((folder / "README.md").read_text(), folder))
    parts.append("</body></html>")
    return "\n".join(parts)


def run(config: ReportConfig) -> Path:
    out, tag, classifier, explanations, audio, probs = listenable_run(config)
    sentences = [{"counterfactual": describe_difference(probs["original"][i], probs["counterfactual"][i], classifier.labels,
                                                        config.threshold),
                  "factual": describe_difference(probs["original"][i], probs["factual"][i], classifier.labels,
                                                 config.threshold, subject="With only the important tokens"),
                  "original": "Classifier hears: " + (", ".join(f"{classifier.labels[j]} {float(probs['original'][i, j]):.2f}"
                                                                for j in torch.argsort(probs["original"][i], descending=True)[:3]))}
                 for i in range(len(explanations))]
    found = {n: Path(config.analyses_dir) / n for n in config.analyses
             if (Path(config.analyses_dir) / n / "README.md").is_file()}
    missing = [n for n in config.analyses if n not in found]
    if missing:
        log(f"report: no results yet for {', '.join(missing)} under {config.analyses_dir} (skipped)")
    page = build_page(config.title, explanations, audio, sentences, tag.sample_rate, found)
    path = out / "report.html"
    path.write_text(page)
    log(f"report written to {path} ({path.stat().st_size / 1e6:.1f} MB)")
    if config.wandb:
        to_wandb(config, explanations, audio, sentences, tag.sample_rate, found, path)
    return path


def to_wandb(config: ReportConfig, explanations, audio, sentences, sample_rate, analyses, page: Path) -> None:
    import os

    import wandb
    if config.wandb_offline:
        os.environ["WANDB_MODE"] = "offline"
    run = wandb.init(project=config.wandb_project, dir=str(page.parent), name=config.title, reinit=True,
                     mode="offline" if config.wandb_offline else "online")
    table = wandb.Table(columns=["prompt", "original", "factual", "counterfactual", "difference"])
    for i, e in enumerate(explanations):
        wandb.log({f"explanations/{i}/heatmap": wandb.Image(heatmap_figure(e)),
                   f"explanations/{i}/bars": wandb.Image(bars_figure(e))})
        plt.close("all")
        clips = [wandb.Audio(audio[k][i].float().mean(0).numpy(), sample_rate=sample_rate) for k in
                 ("original", "factual", "counterfactual")]
        table.add_data(e.prompt, *clips, sentences[i]["counterfactual"])
    logged = {"explanations/table": table, "report": wandb.Html(page.read_text())}
    for name, folder in analyses.items():
        for png in sorted(folder.glob("*.png")):
            logged[f"{name}/{png.stem}"] = wandb.Image(str(png))
    wandb.log(logged)
    run.finish()


main = command(ReportConfig, run)


if __name__ == "__main__":
    main()
