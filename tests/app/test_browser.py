"""End to end in a real headless browser: Debian's chromium driven by Playwright (no browser download) types a
prompt, clicks Explain, waits for the heatmap and the players, moves the interval, edits a token, and saves a
screenshot (also to $LIGHTNING_AGX_APP_SCREENSHOT when set: the README's picture)."""
from __future__ import annotations

import os
import shutil
import time

import pytest

PROMPT = "a knock followed by a siren"


def test_explain_and_edit_in_headless_chromium(served, chromium, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (scripts/setup.sh)")
    url, _ = served
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            requests = []
            page.on("request", lambda request: requests.append(request.url))
            page.goto(url)
            page.locator("#prompt textarea").fill(PROMPT)
            page.locator("#explain").click()
            page.locator("#heatmap img").wait_for(timeout=120_000)
            for player in ("#audio", "#factual", "#counterfactual"):
                page.locator(f"{player} audio").first.wait_for(state="attached", timeout=60_000)
                assert ".wav" in page.locator(f"{player} a[download]").first.get_attribute("href")
            assert PROMPT in page.locator("#message").inner_text()
            whole = page.locator("#importances").inner_text()
            assert '"05 siren"' in whole
            start = page.locator("#start input[type=number]")
            start.fill("1.5")
            start.press("Enter")
            deadline = time.time() + 30
            while page.locator("#importances").inner_text() == whole and time.time() < deadline:
                time.sleep(0.1)
            assert page.locator("#importances").inner_text() != whole, "the interval did not update the importances"
            tokens = page.locator("#edit_tokens input")
            tokens.click()
            tokens.fill("05 siren")
            page.keyboard.press("Enter")
            page.locator("#edit").click()
            page.locator("#after_heatmap img").wait_for(timeout=120_000)
            page.locator("#after audio").first.wait_for(state="attached", timeout=60_000)
            assert "Edited siren" in page.locator("#message").inner_text()
            outside = [u for u in requests if not u.startswith((url, "data:", "blob:"))]
            assert requests and not outside, f"the page fetched from outside this machine: {outside[:5]}"
            shot = tmp_path / "explorer.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 50_000  # a rendered page, not a blank one
            if os.environ.get("LIGHTNING_AGX_APP_SCREENSHOT"):
                shutil.copy(shot, os.environ["LIGHTNING_AGX_APP_SCREENSHOT"])
        finally:
            browser.close()
