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
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest
from PIL import Image

from artstyle.config import ServeParams
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
    (lambda p: _png(p, (20_000, 20_000), mode="1"), "400 million, and this page takes up to 40"),
], ids=["text", "truncated", "16x12", "100-megapixel", "empty", "decompression-bomb"])
def test_an_unusable_upload_gives_one_line_naming_the_problem(tmp_path, make, expected):
    path = make(tmp_path / "upload.jpg")
    with pytest.raises(UploadRejected) as err:
        load_upload(path, "painting")
    message = str(err.value)
    assert message.startswith("The painting ") and expected in message and "\n" not in message
    # our own words, once: no nested parentheses, no Pillow internals
    assert "((" not in message and "))" not in message and "DOS" not in message, message
    assert message.count("empty") <= 1, message


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
    """Re-paint the first example photo in the first example painting's style."""
    page.get_by_role("tab", name="Re-paint").click()
    page.locator("#photo-examples button").first.click()
    page.locator("#photo-file img").wait_for()
    page.locator("#painting-examples button").first.click()
    page.locator("#painting-file img").wait_for()
    _set_slider(page, "side", side)
    _set_slider(page, "evaluations", evaluations)
    page.locator("#repaint").click()


pytestmark = pytest.mark.browser

_SCRIPTS = {  # files that run script when a browser renders them, under image names
    "svg": b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)">'
           b'<script>document.title="pwned";alert(2)</script></svg>',
    "html": b'<!doctype html><html><body><script>document.title="pwned";alert(3)</script>'
            b'</body></html>',
    "xml": b'<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml"><script>'
           b'document.title="pwned";alert(4)</script></html>',
}


def _wide_painting(tmp_path: Path) -> tuple[Path, float]:
    """A painting twice as wide as high: (file, width / height)."""
    from sklearn.datasets import load_sample_image

    rgb = load_sample_image("flower.jpg")[100:300, 40:440]  # 400 x 200
    path = tmp_path / "wide-painting.png"
    Image.fromarray(rgb).save(path)
    return path, 2.0


def _natural_size(locator) -> tuple[int, int]:
    locator.wait_for()
    locator.page.wait_for_function("img => img.complete && img.naturalWidth > 0",
                                   arg=locator.element_handle())
    return tuple(locator.evaluate("img => [img.naturalWidth, img.naturalHeight]"))


def _shoot(page, path: Path) -> None:
    """Full-page screenshots at the desktop width (1280 px) and a phone's (390 px)."""
    page.screenshot(path=path.with_name(path.stem + "-desktop.png"), full_page=True)
    width = page.viewport_size
    page.set_viewport_size({"width": 390, "height": 844})
    time.sleep(0.5)
    page.screenshot(path=path.with_name(path.stem + "-phone.png"), full_page=True)
    page.set_viewport_size(width)


def _upload(server, name: str, data: bytes) -> str:
    """POST a file to Gradio's upload route as the page does; returns its server path."""
    import json

    boundary = "----artstyle-test"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; "
            f"filename=\"{name}\"\r\nContent-Type: image/png\r\n\r\n").encode() + data + (
        f"\r\n--{boundary}--\r\n").encode()
    req = urllib.request.Request(server.url + "gradio_api/upload", data=body, method="POST",
                                 headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    return json.loads(urllib.request.urlopen(req, timeout=30).read())[0]


def _get(url: str):
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


@pytest.mark.slow
def test_the_page_opens_offline_with_examples_and_a_short_notice(page, shots):
    page.get_by_role("tab", name="Re-paint").wait_for()
    page.locator("#classify-examples").wait_for()
    notice = page.locator("#notice")
    assert "synthetic" in notice.inner_text() and len(notice.inner_text()) < 150
    _shoot(page, shots / "01-classify-opened")
    page.get_by_role("tab", name="Re-paint").click()
    page.locator("#estimate").get_by_text("Estimate: about").wait_for()
    _shoot(page, shots / "02-repaint-opened")
    assert page.outside == [], f"the page asked the internet for {page.outside}"


@pytest.mark.slow
def test_uploaded_script_files_are_never_served_back(page, server, shots, tmp_path):
    import urllib.parse

    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    for kind, data in _SCRIPTS.items():
        for name in (f"evil.{kind}", "evil.png", "evil.jpg"):
            stored = _upload(server, name, data)
            url = server.url + "gradio_api/file=" + urllib.parse.quote(stored)
            status, headers, body = _get(url)
            assert status == 403 and b"<script" not in body, (name, status, headers)
            # in the browser too: opening the URL runs nothing
            page.goto(url)
            time.sleep(0.3)
            assert dialogs == [] and page.title() != "pwned", (name, dialogs)
    # through the page: refused in one line, nothing shown
    page.goto(server.url)
    evil = tmp_path / "holiday.png"
    evil.write_bytes(_SCRIPTS["svg"])
    page.locator("#classify-file input[type=file]").set_input_files(evil)
    page.locator("#classify-status").get_by_text("is not an image").wait_for()
    assert page.locator("#classify-file img").count() == 0
    page.screenshot(path=shots / "03-svg-refused.png", full_page=True)
    # what is served is the server's own PNG, typed and sandboxed
    page.locator("#classify-examples button").first.click()
    src = page.locator("#classify-heat img").get_attribute("src")
    status, headers, body = _get(urllib.parse.urljoin(server.url, src))
    headers = {k.lower(): v for k, v in headers.items()}
    assert status == 200 and body.startswith(b"\x89PNG"), (status, headers)
    assert headers["content-type"] == "image/png" and headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in headers["content-security-policy"]


@pytest.mark.slow
def test_classify_shows_the_painting_and_the_heat_map_over_it(page, shots, tiny_baseline,
                                                             tmp_path):
    movements = _movements(tiny_baseline.repo)
    painting, aspect = _wide_painting(tmp_path)
    page.locator("#classify-file input[type=file]").set_input_files(painting)
    page.locator("#classify-status").get_by_text("Most likely").wait_for()
    label = page.locator("#classify-label").inner_text()
    assert sum(m in label for m in movements) == 3, label
    w, h = _natural_size(page.locator("#classify-file img"))  # the preview
    assert abs(w / h - aspect) < 0.02, (w, h)
    w, h = _natural_size(page.locator("#classify-heat img"))
    assert abs(w / h - aspect) < 0.02 and w == 400, (w, h)  # the painting's own size
    _shoot(page, shots / "04-classified")
    heat_src = page.locator("#classify-heat img").get_attribute("src")
    page.locator("#show-heat input").uncheck()
    page.wait_for_function("s => document.querySelector('#classify-heat img').src != s",
                           arg=heat_src)
    # an example click fills the input and classifies it
    page.locator("#classify-examples button").nth(1).click()
    page.wait_for_function("s => document.querySelector('#classify-file img') && "
                           "document.querySelector('#classify-file img').src.includes('examples')",
                           arg=None)
    page.locator("#classify-status").get_by_text("Most likely").wait_for()

    fake = tmp_path / "holiday.jpg"
    fake.write_text("this is a text file, not a photo\n")
    page.locator("#classify-file input[type=file]").set_input_files(fake)
    page.locator("#classify-status").get_by_text("is not an image").wait_for()


@pytest.mark.slow
def test_repaint_from_examples_estimate_and_honest_time(page, shots, tmp_path):
    page.get_by_role("tab", name="Re-paint").click()
    page.locator("#photo-examples button").first.click()
    page.locator("#photo-file img").wait_for()
    page.locator("#painting-examples button").first.click()
    page.locator("#painting-file img").wait_for()
    _set_slider(page, "side", 128)
    _set_slider(page, "evaluations", 20)
    page.locator("#estimate").get_by_text("20 evaluations at 128 px").wait_for()
    assert "about" in page.locator("#estimate").inner_text()
    clicked = time.monotonic()
    page.locator("#repaint").click()
    page.locator("#repaint-status").get_by_text("evaluation").wait_for()
    page.locator("#repaint-status").get_by_text("Done").wait_for()
    wall = time.monotonic() - clicked
    status = page.locator("#repaint-status").inner_text()
    done_in = float(status.split("Done in ", 1)[1].split(" s", 1)[0])
    assert abs(done_in - wall) < 3.0, (done_in, wall, status)
    assert "20 evaluations" in status and "evaluation 20 of" not in status, status
    page.locator("#verdict").get_by_text("SSIM to the photo").wait_for()
    images = page.locator("#result img")
    images.nth(1).wait_for()
    assert images.count() == 2  # before and after
    (w0, h0), (w1, h1) = _natural_size(images.nth(0)), _natural_size(images.nth(1))
    assert (w0, h0) == (w1, h1) and max(w1, h1) == 128, (w0, h0, w1, h1)
    assert "style hit" in page.locator("#verdict").inner_text()
    _shoot(page, shots / "05-repainted")
    with page.expect_download() as download:
        page.locator("#download").click()
    saved = tmp_path / "downloaded.png"
    download.value.save_as(saved)
    with Image.open(saved) as im:
        assert im.format == "PNG" and max(im.size) == 128, (im.format, im.size)


@pytest.mark.slow
def test_the_api_has_named_endpoints_usable_from_python(server, tiny_baseline, tmp_path):
    from gradio_client import Client, handle_file

    client = Client(server.url, verbose=False)
    info = client.view_api(return_format="dict", print_info=False)
    names = sorted(info["named_endpoints"])
    assert names == ["/classify", "/repaint"], names
    assert info["unnamed_endpoints"] == {}
    painting, _ = _wide_painting(tmp_path)
    _, top, heat, text = client.predict(handle_file(str(painting)), api_name="/classify")
    assert top["label"] in _movements(tiny_baseline.repo) and "Most likely" in text
    with Image.open(heat) as im:
        assert im.size == (400, 200)
    status, before_after, verdict, download = client.predict(
        handle_file(str(_photo(tmp_path))), handle_file(str(painting)), 128, 10, "vgg19", 1.0,
        api_name="/repaint")
    assert "Done" in status and "SSIM" in verdict, status
    assert len(before_after) == 2  # the photo and the result, as the slider shows them
    with Image.open(download["value"] if isinstance(download, dict) else download) as im:
        assert im.format == "PNG" and max(im.size) == 128


@pytest.mark.slow
def test_two_repaints_at_once_the_second_waits_in_line(browser, server, shots):
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
        tabs[1].locator("#repaint-status").get_by_text("Waiting in line").wait_for()
        assert "ahead of yours" in tabs[1].locator("#repaint-status").inner_text()
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


def test_no_tensorflow_retracing_warning(server):
    """Runs last in the module's server: classifying many images traced once."""
    assert "retracing" not in server.text(), server.text()[-3000:]


def test_grad_cam_traces_once_per_model():
    """Classifying one painting after another reuses the traced Grad-CAM step (no
    TensorFlow retracing warning per call, no tracing time per call)."""
    import keras

    from artstyle.patterns import gradcam

    model = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Conv2D(4, 3, name="conv"),
                              keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(3, activation="softmax")])
    gm = gradcam.gradcam_model(model)
    rng = np.random.default_rng(0)
    for n in (1, 2, 1, 3, 1, 1):
        maps, proba, _ = gradcam.grad_cam(gm, rng.uniform(0, 255, (n, 16, 16, 3)).astype("float32"))
        assert maps.shape == (n, 14, 14) and np.allclose(proba.sum(axis=1), 1, atol=1e-5)
    assert gm._steps["grad_cam"].experimental_get_tracing_count() == 1


# --------------------------------------------------------------------------- page parts


def test_the_heat_map_covers_the_painting_without_the_padding():
    """A 2:1 painting letterboxed into an 8 px square fills rows 2-5; heat only in the
    padding rows must vanish, heat in the painting's left half must stay on the left."""
    from artstyle.serve import heat_over_painting

    painting = np.full((100, 200, 3), 128, np.uint8)
    heat = np.zeros((8, 8), np.float32)
    heat[:2], heat[6:] = 1.0, 1.0           # the padding bands only
    plain = heat_over_painting(painting, np.zeros((8, 8), np.float32))
    assert plain.shape == (100, 200, 3)
    assert np.array_equal(heat_over_painting(painting, heat), plain)
    heat = np.zeros((8, 8), np.float32)
    heat[2:6, :4] = 1.0                     # the painting's left half
    shown = heat_over_painting(painting, heat).astype(int)
    changed = np.abs(shown - plain).sum(axis=2) > 0
    assert changed[:, :80].all() and not changed[:, 120:].any()
    big = heat_over_painting(np.zeros((3000, 1500, 3), np.uint8), heat)
    assert big.shape == (2048, 1024, 3)     # reduced to KEPT_SIDE, proportions kept


def test_a_classifier_without_a_network_gives_no_heat_map():
    from artstyle.members.base import TrainedClassifier
    from artstyle.serve import PageState, classify_image

    clf = TrainedClassifier("xgb", "xgboost", ["A", "B", "C"], 32, 32,
                            lambda squares: np.tile([[0.2, 0.5, 0.3]], (len(squares), 1)))
    pipeline = PageState(params=ServeParams(), model="xgb", classifier=clf)
    top, heat, text = classify_image(pipeline, np.zeros((40, 60, 3), np.uint8))
    assert list(top) == ["B", "C", "A"] and heat is None and "Most likely **B**" in text
    assert pipeline.judge(np.zeros((40, 60, 3), np.uint8)) == "B"


def test_the_file_guard_serves_only_the_servers_own_pngs(tmp_path):
    from artstyle.serve import FileGuard

    root = tmp_path / "served"
    (root / "abc").mkdir(parents=True)
    good = _png(root / "abc" / "result.png", (8, 8))
    svg = root / "abc" / "picture.png"
    svg.write_text(_SCRIPTS["svg"].decode())
    outside = _png(tmp_path / "elsewhere.png", (8, 8))
    guard = FileGuard(None, root)
    assert guard.allowed(str(good))
    assert not guard.allowed(str(svg)) and not guard.allowed(str(outside))
    assert not guard.allowed(str(root / "abc" / ".." / ".." / "elsewhere.png"))
    assert not guard.allowed("https://example.com/x.png")
    assert FileGuard.file_path("/gradio_api/file=/tmp/x.png") == "/tmp/x.png"
    assert FileGuard.file_path("/file/tmp/x.png") == "tmp/x.png"
    assert FileGuard.file_path("/gradio_api/info") is None


def test_estimates_scale_the_measured_speed_by_pixels_and_read_well():
    from artstyle.config import StylizeParams
    from artstyle.serve import Speed, repaint_plan, seconds_words

    speed = Speed()
    assert speed.estimate("vgg19", [(10_000, 10)]) is None
    # 10 000 px: 2 s to trace, then 0.5 s an evaluation
    speed.add("vgg19", [{"seconds": 2.5 + 0.5 * i, "height": 100, "width": 100}
                        for i in range(10)])
    assert speed.estimate("vgg19", [(10_000, 10)]) == pytest.approx(2.0 + 5.0)
    assert speed.estimate("vgg19", [(40_000, 10)]) == pytest.approx(2.0 + 20.0)
    assert speed.estimate("own:cnn", [(10_000, 10)]) == pytest.approx(7.0)  # vgg19's
    plan = repaint_plan(StylizeParams(scales="auto"), 256, 100, (427, 640))
    assert plan == [(256 * 171, 100)]
    assert [n for _, n in repaint_plan(StylizeParams(scales="auto"), 1024, 140, None)] == [80, 40, 20]
    assert [seconds_words(s) for s in (4.4, 95, 3725)] == ["4 s", "1 min 35 s", "1 h 02 min"]


def test_the_line_starts_jobs_in_order_and_says_the_wait():
    from artstyle.serve import JobLine

    line = JobLine(1)
    line.enter("a", 30.0)
    line.enter("b", 20.0)
    assert not line.try_start("b", timeout=0)
    assert line.try_start("a", timeout=0)
    ahead, wait = line.place("b")
    assert ahead == 1 and 29.0 < wait <= 30.0
    line.leave("a")
    assert line.try_start("b", timeout=0)
    line.leave("b")


def test_the_fast_engine_hook_shows_a_first_result_before_the_line(monkeypatch, tmp_path):
    from artstyle import serve

    def fast(content, style, side):
        assert side == 128
        return np.full((64, 96, 3), 7, np.uint8)

    monkeypatch.setattr(serve, "FAST_ENGINE", fast)
    repainter = serve.Repainter(serve.PageState(params=ServeParams()), tmp_path)
    request = serve.RepaintRequest(None, None, 128, 10, "vgg19", 1.0)
    updates = repainter.run(request, np.zeros((200, 300, 3), np.uint8),
                            np.zeros((50, 50, 3), np.uint8), None)
    first = next(updates)
    before, after = first.before_after
    assert after.shape == before.shape == (64, 96, 3) and "first result" in first.status
    updates.close()  # cancelled after the first result: nothing left in the line
    repainter.line.enter("next", 1.0)
    assert repainter.line.try_start("next", timeout=0)
