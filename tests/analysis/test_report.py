"""The HTML report: self-contained (data URIs), players and images present; renders in headless Chromium."""
import base64
import io
import re
import subprocess
import wave

import pytest
import torch

from analysis.report import ReportConfig, markdown_to_html, wav_uri


def test_wav_uri_round_trips_audio():
    audio = torch.sin(torch.linspace(0, 100, 1600))[None] * 0.5
    uri = wav_uri(audio, 16000)
    assert uri.startswith("data:audio/wav;base64,")
    with wave.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))) as handle:
        assert handle.getframerate() == 16000 and handle.getnframes() == 1600 and handle.getnchannels() == 1
        pcm = torch.frombuffer(bytearray(handle.readframes(1600)), dtype=torch.int16).float() / 32767
    assert torch.allclose(pcm, audio[0], atol=1e-4)


def test_markdown_tables_and_inlined_images(tmp_path):
    import matplotlib.pyplot as plt
    fig = plt.figure()
    fig.savefig(tmp_path / "a.png")
    plt.close(fig)
    text = "# Title\n\nSome `code` here.\n\n| w | v |\n|---|---|\n| beep | 0.5 |\n| a\\|b | 1 |\n\n![fig](a.png)\n![gone](missing.png)\n- item\n"
    page = markdown_to_html(text, tmp_path)
    assert "<h3>Title</h3>" in page and "<code>code</code>" in page
    assert page.count("<tr>") == 3 and "<td>a|b</td>" in page
    assert page.count("<img") == 1 and 'src="data:image/png;base64,' in page  # missing images are skipped
    assert "<li>item</li>" in page


@pytest.fixture(scope="module")
def report_page(tmp_path_factory):
    from analysis.report import run
    root = tmp_path_factory.mktemp("report")
    analysis = root / "analysis" / "negation"
    analysis.mkdir(parents=True)
    import matplotlib.pyplot as plt
    fig = plt.figure()
    fig.savefig(analysis / "negation.png")
    plt.close(fig)
    (analysis / "README.md").write_text("# Negation\n\n| variant | p_x |\n|---|---|\n| X | 0.9 |\n\n![n](negation.png)\n")
    config = ReportConfig(output_dir=str(root / "out"), num_prompts=2, analyses_dir=str(root / "analysis"))
    config.model.name = "debug"
    config.method = "audiogenx"  # the debug model has no shipped amortised explainer
    config.explainer.epochs = 1
    config.explainer.hidden = 64
    return run(config)


def test_report_is_self_contained(report_page):
    page = report_page.read_text()
    assert page.count("<audio controls") == 2 * 3  # original, factual, counterfactual per prompt
    assert page.count('src="data:audio/wav;base64,') == 6
    # 2 prompts x (heatmap + bars) + the analysis figure
    assert len(re.findall(r'<img [^>]*src="data:image/png;base64,', page)) == 5
    assert not re.search(r'(src|href)="(https?:|file:|/)', page)  # nothing fetched from outside the page
    assert "Analysis: negation" in page and "Without the important tokens" in page


def test_report_renders_in_headless_chromium(report_page, tmp_path, chromium):
    browser = chromium
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}"]
    result = subprocess.run([browser, *flags, "--dump-dom", report_page.as_uri()], capture_output=True, text=True,
                            timeout=60)
    dom = result.stdout
    assert result.returncode == 0, result.stderr[-500:]
    assert dom.count("<audio") == 6, "the browser's DOM must hold every player"
    assert len(re.findall(r"<img ", dom)) == 5
    assert "Listenable explanations" in dom
