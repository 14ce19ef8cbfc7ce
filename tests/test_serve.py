"""``artstyle serve``: upload checks, and the page in a real browser.

The browser tests start the real server (``python -m artstyle.cli serve``) on a free
loopback port in the session's tiny pipeline (its baseline CNN, prepared paintings and
random VGG19 weights: ``tiny_baseline``) and drive Debian's ``chromium`` with Playwright.
Screenshots of every step go to pytest's temporary folder,
``<basetemp>/serve-screenshots0/`` (e.g. ``/tmp/pytest-of-$USER/pytest-current/``), with
``memory.txt``: the server's resident memory while two jobs run.

Without ``chromium`` they skip, saying why, unless ``ARTSTYLE_REQUIRE_BROWSER=1`` (CI,
``.ci/run``) turns that into a failure.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest
from PIL import Image

from artstyle.serve import UploadRejected, load_upload

# --------------------------------------------------------------------------- upload checks


def _png(path: Path, size: tuple[int, int], mode: str = "RGB") -> Path:
    Image.new(mode, size, "white").save(path, format="PNG")  # whatever the name says
    return path


@pytest.mark.parametrize("make, expected", [
    (lambda p: p.write_text("not a picture at all\n") and p, "is not an image"),
    (lambda p: p.write_bytes(_png(p, (64, 64)).read_bytes()[:-40]) and p, "incomplete"),
    (lambda p: _png(p, (16, 12)), "only 16x12 px"),
    (lambda p: _png(p, (10_000, 10_000), mode="1"), "too many pixels"),
    (lambda p: p.write_bytes(b"") == 0 and p, "is empty"),
], ids=["text", "truncated", "16x12", "100-megapixel", "empty"])
def test_an_unusable_upload_gives_one_line_naming_the_problem(tmp_path, make, expected):
    path = make(tmp_path / "upload.jpg")
    with pytest.raises(UploadRejected) as err:
        load_upload(path, "painting")
    message = str(err.value)
    assert message.startswith("The painting ") and expected in message and "\n" not in message


def test_a_usable_upload_loads_whatever_its_name(tmp_path):
    path = _png(tmp_path / "photo.jpg", (40, 32))  # a PNG named .jpg
    rgb = load_upload(path, "photo")
    assert rgb.shape == (32, 40, 3) and rgb.dtype == np.uint8


# --------------------------------------------------------------------------- the browser

_ROLE_WAIT_MS = 120_000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def chromium_path() -> str:
    path = shutil.which("chromium")
    if path is None:
        message = "no chromium (apt-get install -y chromium): the page was not tested"
        if os.environ.get("ARTSTYLE_REQUIRE_BROWSER") == "1":
            pytest.fail(f"ARTSTYLE_REQUIRE_BROWSER=1 but {message}")
        pytest.skip(message)
    return path


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    """Where the screenshots of the browser tests go."""
    return tmp_path_factory.mktemp("serve-screenshots")


class Server:
    """The running ``artstyle serve`` subprocess."""

    def __init__(self, repo: Path, log: Path):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log = log
        env = {**os.environ, "ARTSTYLE_LOG": "WARNING", "TF_CPP_MIN_LOG_LEVEL": "2"}
        self._out = open(log, "w", encoding="utf-8")
        self.proc = subprocess.Popen([sys.executable, "-m", "artstyle.cli", "serve",
                                      "--port", str(self.port)], cwd=repo, env=env,
                                     stdout=self._out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"artstyle serve exited:\n{log.read_text()[-3000:]}")
            try:
                urllib.request.urlopen(self.url, timeout=2).read()
                return
            except OSError:
                time.sleep(0.5)
        raise RuntimeError(f"artstyle serve did not answer:\n{log.read_text()[-3000:]}")

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8")

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self._out.close()


@pytest.fixture(scope="module")
def server(tiny_baseline, chromium_path, tmp_path_factory):
    log = tmp_path_factory.mktemp("serve-log") / "server.log"
    srv = Server(tiny_baseline.repo, log)
    yield srv
    srv.stop()
    out = srv.text()
    tmp_folder = out.split("uploads in ", 1)[1].split(",", 1)[0] if "uploads in " in out else ""
    assert tmp_folder and not Path(tmp_folder).exists(), f"temporary folder left: {tmp_folder}"
    assert "Traceback" not in out, out[-3000:]


@pytest.fixture(scope="module")
def browser(chromium_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture
def page(browser, server):
    """A fresh tab on the page; records every request that leaves the loopback."""
    context = browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 1000})
    tab = context.new_page()
    tab.outside = []
    tab.on("request", lambda r: urlparse(r.url).hostname not in (None, "127.0.0.1", "localhost")
           and urlparse(r.url).scheme in ("http", "https", "ws", "wss") and tab.outside.append(r.url))
    tab.set_default_timeout(_ROLE_WAIT_MS)
    tab.goto(server.url)
    tab.get_by_role("tab", name="Classify").wait_for()
    yield tab
    context.close()


def _movements(repo: Path) -> list[str]:
    import json

    return json.loads((repo / "data/prepared/classes.json").read_text())


def _painting(repo: Path) -> Path:
    return sorted((repo / "data/prepared/images").glob("*.png"))[0]


def _photo(tmp_path: Path) -> Path:
    from sklearn.datasets import load_sample_image

    path = tmp_path / "photo.jpg"
    Image.fromarray(load_sample_image("china.jpg")).save(path, quality=90)
    return path


def _set_slider(page, elem_id: str, value: int) -> None:
    """Type ``value`` into a slider's number box until the slider itself shows it: a tab
    whose page is still starting can drop the first typing (a re-paint then ran with the
    page's starting values, 256 px and 100 evaluations, and outlasted the wait)."""
    from playwright.sync_api import expect

    box = page.locator(f"#{elem_id} input[type=number]")
    slider = page.locator(f"#{elem_id} input[type=range]")
    for attempt in range(10):
        box.fill(str(value))
        box.press("Enter")
        try:
            expect(slider).to_have_value(str(value), timeout=3000)
            return
        except AssertionError:
            if attempt == 9:
                raise


def _start_repaint(page, side: int = 128, evaluations: int = 20) -> None:
    page.get_by_role("tab", name="Re-paint").click()
    _set_slider(page, "side", side)
    _set_slider(page, "evaluations", evaluations)
    page.locator("#repaint").click()


pytestmark = pytest.mark.browser


@pytest.mark.slow
def test_the_page_opens_offline(page, shots, tiny_baseline):
    page.get_by_role("tab", name="Re-paint").wait_for()
    page.get_by_text("Upload or drop a painting above.").wait_for()
    page.screenshot(path=shots / "01-page-opened.png", full_page=True)
    assert page.outside == [], f"the page asked the internet for {page.outside}"


@pytest.mark.slow
def test_classify_a_painting_then_a_text_file_named_jpg(page, shots, tiny_baseline, tmp_path):
    movements = _movements(tiny_baseline.repo)
    page.locator("#classify-file input[type=file]").set_input_files(_painting(tiny_baseline.repo))
    page.locator("#classify-status").get_by_text("Most likely").wait_for()
    label = page.locator("#classify-label").inner_text()
    assert sum(m in label for m in movements) == 3, label
    page.locator("#classify-heat img").wait_for()
    page.screenshot(path=shots / "02-classified.png", full_page=True)

    fake = tmp_path / "holiday.jpg"
    fake.write_text("this is a text file, not a photo\n")
    page.locator("#classify-file button[aria-label='Clear']").first.click()
    page.locator("#classify-file input[type=file]").set_input_files(fake)
    page.locator("#classify-status").get_by_text("is not an image").wait_for()
    page.screenshot(path=shots / "03-text-file-refused.png", full_page=True)
    # the server still serves: the painting again
    page.locator("#classify-file button[aria-label='Clear']").first.click()
    page.locator("#classify-file input[type=file]").set_input_files(_painting(tiny_baseline.repo))
    page.locator("#classify-status").get_by_text("Most likely").wait_for()


@pytest.mark.slow
def test_repaint_an_uploaded_photo_and_download_it(page, shots, tiny_baseline, tmp_path):
    page.get_by_role("tab", name="Re-paint").click()
    page.locator("#photo-file input[type=file]").set_input_files(_photo(tmp_path))
    page.locator("#painting-file input[type=file]").set_input_files(_painting(tiny_baseline.repo))
    _start_repaint(page)
    page.locator("#repaint-status").get_by_text("evaluation").wait_for()
    page.screenshot(path=shots / "04-repaint-running.png", full_page=True)
    page.locator("#verdict").get_by_text("SSIM to the photo").wait_for()
    page.locator("#result img").wait_for()
    page.screenshot(path=shots / "05-repaint-done.png", full_page=True)
    verdict = page.locator("#verdict").inner_text()
    assert "style hit" in verdict and "20 evaluations" in verdict, verdict
    with page.expect_download() as download:
        page.locator("#download").click()
    saved = tmp_path / "downloaded.png"
    download.value.save_as(saved)
    with Image.open(saved) as im:
        assert im.format == "PNG" and max(im.size) == 128, (im.format, im.size)


@pytest.mark.slow
def test_two_repaints_at_once_both_finish(browser, server, shots):
    tabs = []
    for _ in range(2):
        context = browser.new_context(viewport={"width": 1280, "height": 1000})
        tab = context.new_page()
        tab.set_default_timeout(_ROLE_WAIT_MS)
        tab.goto(server.url)
        tab.get_by_role("tab", name="Classify").wait_for()
        tabs.append(tab)
    memory, done = [], threading.Event()

    def sample():
        while not done.is_set():
            memory.append(server.rss_mb())
            done.wait(0.5)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        for tab in tabs:
            _start_repaint(tab)
        tabs[1].screenshot(path=shots / "06-second-user-waiting.png", full_page=True)
        for i, tab in enumerate(tabs):
            tab.locator("#verdict").get_by_text("SSIM to the photo").wait_for()
            tab.screenshot(path=shots / f"07-user-{i + 1}-done.png", full_page=True)
    finally:
        done.set()
        sampler.join()
        for tab in tabs:
            tab.context.close()
    (shots / "memory.txt").write_text(f"server RSS while two jobs ran: max {max(memory):.0f} MB, "
                                      f"samples {len(memory)}\n")


@pytest.mark.slow
def test_closing_the_tab_stops_its_job(browser, server, shots):
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    tab = context.new_page()
    tab.set_default_timeout(_ROLE_WAIT_MS)
    tab.goto(server.url)
    _start_repaint(tab, evaluations=1000)
    tab.locator("#repaint-status").get_by_text("evaluation").wait_for()
    tab.screenshot(path=shots / "08-long-job-before-closing.png", full_page=True)
    before = server.text().count("stopped (cancelled or the page was closed)")
    context.close()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.text().count("stopped (cancelled or the page was closed)") > before:
            break
        time.sleep(0.5)
    else:
        pytest.fail("closing the tab did not stop the job:\n" + server.text()[-2000:])
