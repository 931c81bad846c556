"""The app and report.html in a real Chromium (Debian's, driven by Playwright).

Every page runs offline: any request that leaves localhost (or, for report.html, that is
not a data: URI) is recorded and refused, and the tests assert there was none.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
from pathlib import Path
from urllib.parse import urlparse

import pytest
from app_fixtures import corrupt_wav, long_clip, report_md, stereo_44k, tiny_model

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
WAIT_MS = 180_000  # a loaded 2-core machine; each wait ends as soon as the page is ready
RESULT = "#top-emotion, #error-text"


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is missing: scripts/install.sh installs Debian's chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # a fake microphone (a beep) that needs no permission prompt
        args = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]
        args += ["--no-sandbox"] if os.geteuid() == 0 else []
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=args)
        yield browser
        browser.close()


class Watched:
    """A page whose off-site requests are refused and recorded, with its console errors."""

    def __init__(self, browser, allowed):
        self.page = browser.new_page(viewport={"width": 1280, "height": 1000}, permissions=["microphone"])
        self.page.set_default_timeout(WAIT_MS)
        self.external: list[str] = []
        self.errors: list[str] = []
        self.page.route("**/*", lambda route: self._route(route, allowed))
        self.page.on("websocket", lambda ws: None if allowed(ws.url) else self.external.append(ws.url))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

    def _route(self, route, allowed):
        if allowed(route.request.url):
            route.continue_()
        else:
            self.external.append(route.request.url)
            route.abort()


def _local(url: str) -> bool:
    return url.startswith(("data:", "blob:")) or urlparse(url).hostname in ("127.0.0.1", "localhost")


@pytest.fixture
def watched(browser):
    pages = []

    def open_page(allowed=_local) -> Watched:
        pages.append(Watched(browser, allowed))
        return pages[-1]

    yield open_page
    for w in pages:
        w.page.close()


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    from hub_emo.analysis.html import write_html_report

    return write_html_report(report_md(tmp_path_factory.mktemp("study")))


@pytest.fixture(scope="module")
def app(tmp_path_factory, study):
    from hub_emo.app.source import AppSource
    from hub_emo.app.ui import launch

    folder = tmp_path_factory.mktemp("app")
    model = tiny_model(folder / "model")
    clips = folder / "clips"
    clips.mkdir()
    source = AppSource(
        model=str(model), report=study, title="tiny test model",
        examples=[stereo_44k(clips / "example.wav", seconds=0.5)],
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    blocks = launch(source, port=port, block=False)
    yield {"url": f"http://127.0.0.1:{port}/", "model": model, "clips": clips}
    blocks.close()


def _upload(w: Watched, url: str, path: Path) -> str:
    w.page.goto(url)
    w.page.set_input_files("#audio-input input[type=file]", str(path))
    w.page.wait_for_selector(RESULT)
    return w.page.inner_text("#status")


def test_the_app_loads_offline_with_layer_weights_examples_and_report(app, watched):
    w = watched()
    w.page.goto(app["url"], wait_until="networkidle")
    assert "tiny test model" in w.page.title()
    assert "neutral, happy, sad, angry" in w.page.inner_text("body")
    w.page.wait_for_selector("#layer-weights img")
    assert w.errors == [], f"console errors on load: {w.errors}"
    w.page.get_by_text("example.wav", exact=True).click()  # an example clip runs the model
    w.page.wait_for_selector("#top-emotion")
    w.page.get_by_role("tab", name="Study report").click()
    frame = w.page.frame_locator("#report-frame")
    frame.locator("table").first.wait_for()
    loaded = frame.locator("img").evaluate_all("imgs => imgs.map(i => i.complete && i.naturalWidth > 0)")
    assert loaded == [True, True]
    assert w.external == [], f"requests off localhost: {w.external}"


def test_a_44k_stereo_upload_scores_as_hub_emo_predict(app, watched, tmp_path, capsys):
    from hub_emo import cli

    clip = stereo_44k(tmp_path / "stereo_44k.wav")
    assert cli.main(["predict", str(app["model"]), str(clip), "--json", "--top-k", "4"]) == 0
    predicted = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    w = watched()
    status = _upload(w, app["url"], clip)
    top = predicted["scores"][0]
    assert f"Top emotion: {top['label']} ({top['score']:.2f})" in status
    shown = w.page.inner_text("#scores")
    for item in predicted["scores"]:
        assert f"{round(item['score'] * 100)}%" in shown
    assert not w.page.locator("#timeline").is_visible()  # one chunk: no timeline
    assert w.external == [], f"requests off localhost: {w.external}"


def test_a_microphone_recording_is_classified(app, watched):
    w = watched()
    w.page.goto(app["url"])
    w.page.get_by_label("Record audio").click()
    w.page.locator("#audio-input button:has-text('Record')").first.click()
    w.page.wait_for_timeout(2000)
    w.page.locator("#audio-input button:has-text('Stop')").first.click()
    w.page.wait_for_selector(RESULT)
    assert re.fullmatch(r"Top emotion: (neutral|happy|sad|angry) \(0\.\d\d\)", w.page.inner_text("#status").strip())


def test_a_long_recording_shows_the_timeline(app, watched, tmp_path):
    w = watched()
    status = _upload(w, app["url"], long_clip(tmp_path / "long.flac", seconds=25.0))
    assert "3 chunks of 10 s" in status
    w.page.wait_for_selector("#timeline img")
    assert w.page.locator("#timeline img").evaluate("i => i.naturalWidth") > 0


def test_a_corrupt_file_shows_the_pipelines_error_not_a_trace(app, watched, tmp_path):
    from hub_emo.app.ui import error_text
    from hub_emo.audio import AudioError
    from hub_emo.inference import pipeline

    bad = corrupt_wav(tmp_path / "corrupt.wav")
    with pytest.raises(AudioError) as raised:
        pipeline(app["model"])(str(bad))
    w = watched()
    status = _upload(w, app["url"], bad)
    assert " ".join(status.split()) == " ".join(f"⚠ {error_text(raised.value)}".split())
    assert "cannot decode audio" in status
    body = w.page.inner_text("body")
    assert "Traceback" not in body and 'File "' not in body


def test_report_html_renders_every_image_with_no_console_error(study, watched):
    w = watched(allowed=lambda url: url.startswith(("data:", "file:")))
    w.page.goto(study.as_uri(), wait_until="load")
    images = w.page.locator("img").evaluate_all("imgs => imgs.map(i => i.complete && i.naturalWidth > 0)")
    assert images == [True, True]
    assert w.page.locator("table td").first.inner_text() == "speech-ssl"
    assert "UA 0.512" in w.page.inner_text("body")
    assert w.errors == [] and w.external == []
