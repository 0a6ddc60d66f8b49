"""The web demo at / driven by a real headless Chromium (Debian's `chromium`) through Playwright."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from test_serving_support import DEMO, shared_server, two_page_pdf

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[test]')")

CHROMIUM = os.environ.get("OCRFLOW_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason=f"Chromium not found at {CHROMIUM}: apt-get install chromium (CI does, in .ci/run)",
)


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser, pipeline):
    server = shared_server(pipeline)
    context = browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    pg = context.new_page()
    pg.problems = []  # console errors, page errors, CSP violations
    pg.on("console", lambda m: pg.problems.append(m.text) if m.type == "error" else None)
    pg.on("pageerror", lambda e: pg.problems.append(str(e)))
    pg.goto(f"{server.url}/")
    yield pg
    context.close()


def loaded_images(pg) -> list[int]:
    return pg.eval_on_selector_all("#results img.result-image", "els => els.map(i => i.complete ? i.naturalWidth : 0)")


def test_upload_image_shows_texts_and_picture(page):
    assert page.title().startswith("ocrflow")
    page.set_input_files("#file", str(DEMO))
    page.wait_for_selector("#results .texts li", timeout=60_000)
    assert "BOARDING" in page.inner_text("#results")
    page.wait_for_function("() => { const i = document.querySelector('#results img.result-image');"
                           " return i && i.complete && i.naturalWidth > 0; }", timeout=10_000)
    assert loaded_images(page)[0] == 2 * 896  # the side-by-side picture
    scores = page.eval_on_selector_all("#results .score", "els => els.map(e => parseFloat(e.textContent))")
    assert scores and all(0 <= s <= 1 for s in scores)
    assert "text line" in page.inner_text("#status")

    page.click("#copy")
    page.wait_for_function("() => document.querySelector('#status').textContent.startsWith('Copied')")
    copied = page.evaluate("() => navigator.clipboard.readText()")
    assert "BOARDING" in copied.splitlines()

    with page.expect_download() as download:
        page.click("#download")
    saved = json.loads(Path(download.value.path()).read_text(encoding="utf-8"))
    assert download.value.suggested_filename == "general_ocr_002.json"
    assert saved["errorCode"] == 0 and saved["result"]["dataInfo"]["type"] == "image"
    assert page.problems == []


def test_upload_pdf_shows_every_page(page, tmp_path):
    pdf = tmp_path / "two pages.pdf"
    pdf.write_bytes(two_page_pdf())
    page.set_input_files("#file", str(pdf))
    page.wait_for_function("() => document.querySelectorAll('#results article.page').length === 2", timeout=60_000)
    page.wait_for_function("() => [...document.querySelectorAll('#results img.result-image')]"
                           ".every(i => i.complete && i.naturalWidth > 0)", timeout=10_000)
    assert page.inner_text("#results").count("BOARDING") == 2
    assert "2 page(s)" in page.inner_text("#status")
    assert page.problems == []


def test_bad_file_shows_the_error(page, tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("this is not an image")
    page.set_input_files("#file", str(bad))
    page.wait_for_selector("#status.error", timeout=30_000)
    status = page.inner_text("#status")
    assert "422" in status and "logId" in status
    assert page.query_selector("#results article") is None
    assert page.is_disabled("#copy") and page.is_disabled("#download")
