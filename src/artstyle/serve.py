"""``artstyle serve``: the study's user flow as a local web page (Gradio).

Two tabs. **Classify**: a painting's three most likely movements and where the model
looks (Grad-CAM, :func:`artstyle.patterns.explain.look`), the heat map laid over the
painting at its own proportions. **Re-paint**: a photo in the style of a painting, with an
estimate of the time before it starts, its place in the line while it waits, a live
before/after view, a cancel button, the judgement of the result as the ``stylize`` stage
judges (movement the classifier sees, style hit, SSIM to the photo) and a download of
the PNG. Both tabs have examples to click (scikit-learn's photos, and each movement's
prototype painting from ``data/prepared``). The page reads the pipeline's outputs in the
current directory (``models/``, ``data/prepared/``) and says what to run when one is
missing. Its two jobs are named API endpoints, ``/classify`` and ``/repaint``
(``gradio_client``; ``docs/serve.md``).

Files: every upload is decoded at once by the one safe loader (:mod:`artstyle.images`)
and replaced by a PNG the server encodes itself; the original is deleted. The server
serves back only PNG files of its own temporary folder (:class:`FileGuard`), with
``nosniff`` and a sandboxing content security policy, so that no uploaded file is ever
served with a type a browser runs, whatever its name or content. The folder is deleted
when the server stops (and files older than ``ServeParams.keep_files_s`` while it runs).
Closing the tab or pressing *Cancel* stops the job at its next evaluation. No outbound
network: Gradio's analytics and version check are off, its fonts are served locally.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import queue
import re
import shutil
import signal
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from artstyle import paths
from artstyle.config import ServeParams, StylizeParams
from artstyle.errors import ArtstyleError

logger = logging.getLogger(__name__)

#: The photos bundled with scikit-learn, the Re-paint tab's example photos.
EXAMPLE_PHOTOS = {"China (scikit-learn)": "sklearn:china.jpg",
                  "flower (scikit-learn)": "sklearn:flower.jpg"}
#: Longest side of the PNG an upload is kept as (the page shows it, the jobs read it).
#: Re-painting works at 1024 px at most and the classifier at its prepared side, so
#: nothing is lost; the heat map is drawn over this.
KEPT_SIDE = 2048
#: Images fill their boxes (small ones, such as the prepared squares, are enlarged).
PAGE_CSS = """
#classify-file img, #classify-heat img, #photo-file img, #painting-file img, #result img {
  width: 100%; height: 100%; object-fit: contain; }
"""
#: The only kind of file the server sends back: PNG, by its first bytes.
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

#: How each rejection reason of :class:`artstyle.images.ImageRejected` reads on the page.
REASON_WORDS = {
    "unreadable": "the file cannot be read",
    "empty": "the file is empty (0 bytes)",
    "not_an_image": "this file is not an image (give a JPEG, PNG, WebP, GIF, BMP, TIFF, "
                    "PPM or AVIF file)",
    "truncated": "the image file is incomplete (truncated: it ends early)",
    "too_large": "the image has too many pixels",
    "decode_error": "the image file is damaged (it cannot be decoded)",
    "unsupported_format": "this kind of image cannot be read",
}


class UploadRejected(ArtstyleError, ValueError):
    """An uploaded file is not usable; the message is one line for the page."""


def _too_large_words(detail: str, limit: int) -> str:
    """``too_large`` in our words: how many pixels, and the page's limit."""
    found = (re.search(r"(\d+)x(\d+) = ", detail)
             or re.search(r"Image size \((\d+) pixels\)", detail))
    if found is None:
        return f"the image has too many pixels (this page takes up to {limit / 1e6:.0f} million)"
    n = (int(found[1]) * int(found[2])) if found.re.groups == 2 else int(found[1])
    return (f"the image has too many pixels: {n / 1e6:,.0f} million, and this page takes up "
            f"to {limit / 1e6:.0f} million (scale it down first)")


def load_upload(path: str | os.PathLike, what: str, params: ServeParams = ServeParams()
                ) -> np.ndarray:
    """An uploaded image as RGB pixels, or a one-line reason why not.

    Parameters
    ----------
    path : path
        The uploaded file (any name: the format is read from the content).
    what : str
        Its role on the page ("painting", "photo"), for the message.
    params : artstyle.config.ServeParams
        ``max_pixels`` and ``min_side``.

    Returns
    -------
    ndarray of shape (H, W, 3), uint8

    Raises
    ------
    UploadRejected
        Not an image, truncated, too many pixels (Pillow's decompression-bomb refusal
        included, in the page's words), or a shorter side below ``min_side``.
    """
    from artstyle.images import ImageRejected, load_rgb_array

    try:
        rgb = load_rgb_array(path, max_pixels=params.max_pixels)
    except ImageRejected as err:
        words = (_too_large_words(err.message, params.max_pixels) if err.reason == "too_large"
                 else f"{REASON_WORDS['unreadable']}: {err.message}"
                 if err.reason == "unreadable" else REASON_WORDS[err.reason])
        raise UploadRejected(f"The {what} cannot be used: {words}.") from None
    h, w = rgb.shape[:2]
    if min(h, w) < params.min_side:
        raise UploadRejected(f"The {what} is only {w}x{h} px: give an image at least "
                             f"{params.min_side} px on its shorter side.")
    return rgb


def _fit(rgb: np.ndarray, side: int) -> np.ndarray:
    """``rgb`` reduced so that its longest side is at most ``side`` (never enlarged)."""
    from PIL import Image

    h, w = rgb.shape[:2]
    if max(h, w) <= side:
        return rgb
    k = side / max(h, w)
    size = (max(1, round(w * k)), max(1, round(h * k)))
    return np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.LANCZOS))


def pixel_key(rgb: np.ndarray) -> str:
    """A short hash of an image's pixels (finds the movement of an example painting)."""
    return hashlib.sha256(np.ascontiguousarray(rgb).tobytes()).hexdigest()[:16]


# --------------------------------------------------------------------------- served files


class FileGuard:
    """ASGI middleware: the page's file routes serve only PNGs of the server's folder.

    Gradio serves files under ``/gradio_api/file=<path>``, with a type guessed from the
    name. Here every such request (and the older ``/file=``, ``/file/`` forms) is answered
    only when the path lies in ``root`` and the file starts with the PNG signature (all
    the page shows are PNGs the server encoded: uploads are decoded and re-encoded at
    once); the reply is ``image/png`` with ``X-Content-Type-Options: nosniff`` and
    ``Content-Security-Policy: sandbox``. Anything else (an SVG, HTML or XML file under
    any name, a URL, a path elsewhere) gets ``403``.
    """

    def __init__(self, app, root: str | os.PathLike):
        self.app = app
        self.root = os.path.realpath(root)

    @staticmethod
    def file_path(path: str) -> str | None:
        """The file a request path asks for, or None when it is not a file route."""
        if "/file=" in path:
            return path.split("/file=", 1)[1]
        for prefix in ("/gradio_api/file/", "/file/"):
            if path.startswith(prefix):
                return path[len(prefix):]
        return None

    def allowed(self, wanted: str) -> bool:
        """Whether ``wanted`` is a PNG file inside the server's folder."""
        real = os.path.realpath(wanted)
        if os.path.commonpath([real, self.root]) != self.root or not os.path.isfile(real):
            return False
        try:
            with open(real, "rb") as fh:
                return fh.read(len(PNG_SIGNATURE)) == PNG_SIGNATURE
        except OSError:
            return False

    async def __call__(self, scope, receive, send):
        wanted = self.file_path(scope.get("path", "")) if scope["type"] == "http" else None
        if wanted is None:
            await self.app(scope, receive, send)
            return
        if not self.allowed(wanted):
            logger.info("refused to serve %s (not a PNG of the server's folder)", wanted)
            body = b"Not served: this server sends back only the PNG images it made.\n"
            await send({"type": "http.response.start", "status": 403, "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                (b"x-content-type-options", b"nosniff")]})
            await send({"type": "http.response.body", "body": body})
            return

        async def send_png(message):
            if message["type"] == "http.response.start":
                drop = {b"content-type", b"content-disposition", b"x-content-type-options",
                        b"content-security-policy"}
                headers = [(k, v) for k, v in message.get("headers", [])
                           if k.lower() not in drop]
                headers += [(b"content-type", b"image/png"),
                            (b"content-disposition", b"inline"),
                            (b"x-content-type-options", b"nosniff"),
                            (b"content-security-policy", b"default-src 'none'; sandbox")]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_png)


def keep_as_png(rgb: np.ndarray, folder: Path, stem: str) -> str:
    """Save pixels the page shows as a PNG the server encoded; returns its path."""
    from artstyle.images import save_image

    folder.mkdir(parents=True, exist_ok=True)
    out = folder / f"{stem}-{uuid.uuid4().hex[:10]}.png"
    save_image(rgb, out)
    return str(out)


def _payload_path(value) -> str | None:
    """The file path of an image input as Gradio hands it over without preprocessing."""
    if value is None:
        return None
    if isinstance(value, dict):
        return value.get("path")
    return str(getattr(value, "path", value))


# --------------------------------------------------------------------------- the pipeline


@dataclass
class PageState:
    """What the page uses from the pipeline's outputs, loaded once and shared by users.

    Attributes
    ----------
    params : ServeParams
    model : str
        The classifier's name ("" when none could be loaded).
    classifier : artstyle.classifier.TrainedClassifier or None
        :func:`artstyle.classifier.load_classifier`'s member (any kind: ``--model``,
        default the best validated one).
    missing : list of str
        What is missing, each with the command that builds it.
    notice : str
        The prepared dataset's notice (e.g. that it is synthetic).
    stylize : StylizeParams
        The command's settings (:func:`artstyle.stylize.command_settings`: ``compute_dtype
        auto``), with the layers and loss weights of each backbone from ``params.yaml``'s
        ``stylize`` group when there is one.
    fast : callable or None
        ``(content, style, max_side) -> (h, w, 3) uint8``: the feed-forward engine
        (:func:`artstyle.nst.feedforward.stylize_fast`) when its networks are built
        (``dvc repro pretrained_feedforward``); a re-paint then shows its result at once and
        the optimisation refines it (``init: fast``).
    backbones : list of str
        ``vgg19`` and ``own:<model>`` for every trained neural member.
    """

    params: ServeParams
    model: str = ""
    classifier: object | None = None
    missing: list[str] = field(default_factory=list)
    notice: str = ""
    stylize: StylizeParams = field(default_factory=StylizeParams)
    backbones: list[str] = field(default_factory=list)
    fast: Callable[[np.ndarray, np.ndarray, int], np.ndarray] | None = None
    _gm: object = None
    _extractors: dict = field(default_factory=dict)
    _prototypes: dict | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def load(cls, params: ServeParams) -> PageState:
        """Load the classifier and read what exists; never raises for a missing output."""
        from artstyle.config import load_params
        from artstyle.data.dataset import dataset_notice

        from artstyle.stylize import command_settings

        p = cls(params)
        p.stylize = command_settings()
        if paths.PARAMS.exists():
            group = load_params(paths.PARAMS).stylize
            p.stylize = p.stylize.model_copy(update={"vgg19": group.vgg19, "own": group.own})
        p.fast = _fast_engine()
        from artstyle.classifier import trained_members

        p.backbones = ["vgg19"] + [f"own:{m}" for m in trained_members(("neural",))]
        if not paths.VGG19_WEIGHTS.exists():
            p.missing.append("the VGG19 weights for re-painting: run `dvc repro pretrained`")
        if not (paths.PREPARED / paths.MANIFEST_NAME).exists():
            p.missing.append("the prepared paintings (movement prototypes): run "
                             "`dvc repro prepare`")
        p.notice = dataset_notice(paths.PREPARED)
        try:
            from artstyle.classifier import load_classifier
            from artstyle.patterns import gradcam

            p.classifier = load_classifier(params.model)
            p.model = p.classifier.name
            if p.classifier.keras_model is not None:  # Grad-CAM needs a network
                p._gm = gradcam.gradcam_model(p.classifier.keras_model)
        except (ArtstyleError, FileNotFoundError) as err:
            p.model, p.classifier = "", None
            p.missing.append(f"a trained classifier ({err}): run `dvc repro`")
        except Exception as err:
            logger.warning("cannot load the model %s: %s", p.model, err, exc_info=True)
            p.missing.append(f"a classifier that loads (`{p.model}` fails: "
                             f"{type(err).__name__}): run `dvc repro train@{p.model}`")
            p.model, p.classifier = "", None
        return p

    @property
    def classes(self) -> list[str]:
        """The movements the classifier knows (empty without one)."""
        return list(self.classifier.classes) if self.classifier else []

    @property
    def heat_maps(self) -> bool:
        """Whether Grad-CAM can show where the classifier looks (a neural or style member)."""
        return self.classifier is not None and self.classifier.has_heat_map

    def look(self, rgb: np.ndarray, top: int = 3):
        """:func:`artstyle.patterns.explain.look` with the page's classifier."""
        from artstyle.patterns.explain import look

        return look(rgb, self.classifier, self._gm, top=top)

    def judge(self, rgb: np.ndarray) -> str:
        """The movement the classifier sees in an image (as the ``stylize`` stage judges)."""
        clf = self.classifier
        return clf.classes[int(clf.proba([rgb])[0].argmax())]

    def extractor(self, backbone: str):
        """The feature extractor of a backbone, built once (Keras is not thread-safe).

        Raises
        ------
        artstyle.stylize.MissingModel
            Its weights or model are missing; the message names the stage to run.
        """
        from artstyle.stylize import backbone_params, build_backbone

        with self._lock:
            if backbone not in self._extractors:
                self._extractors[backbone] = build_backbone(
                    backbone, weights=paths.VGG19_WEIGHTS,
                    layers=backbone_params(backbone, self.stylize))
            return self._extractors[backbone]

    def prototypes(self) -> dict[str, str]:
        """Per movement, the training painting closest to its mean embedding.

        Returns
        -------
        dict of str to str
            Movement -> image file: the original under ``data/raw`` when it is there,
            else the prepared square. Empty without a classifier or prepared data. With a
            classifier that has no network embedding (not neural), each movement's first
            training painting.
        """
        with self._lock:
            if self._prototypes is None:
                self._prototypes = self._find_prototypes()
            return self._prototypes

    def _find_prototypes(self) -> dict[str, str]:
        if self.classifier is None or not (paths.PREPARED / paths.MANIFEST_NAME).exists():
            return {}
        from artstyle.data.dataset import load_manifest, load_split, resize_batch
        from artstyle.patterns import collection
        from artstyle.patterns.report import embed

        train, classes = load_split(paths.PREPARED, "train")
        manifest, _ = load_manifest(paths.PREPARED)
        rows = manifest[manifest["split"] == "train"].reset_index(drop=True)
        if self._gm is None:
            chosen = {c: int(np.flatnonzero(train.labels == c)[0])
                      for c in np.unique(train.labels)}
        else:
            model, input_size = self.classifier.keras_model, self.classifier.input_size
            emb = embed(self._gm, model, resize_batch(train.images, input_size))
            chosen = {c: int(closest[0]) for c, (closest, _, _) in
                      collection.prototypes_and_outliers(emb, train.labels, len(classes),
                                                         1).items()}
        found = {}
        for c, i in chosen.items():
            row = rows.loc[i]
            raw = paths.RAW / str(row.get("source_path", ""))
            found[classes[c]] = str(raw if raw.is_file() else paths.PREPARED / row["path"])
        return found


# --------------------------------------------------------------------------- classify


def heat_over_painting(rgb: np.ndarray, heat_square: np.ndarray, *, side: int = KEPT_SIDE
                       ) -> np.ndarray:
    """A Grad-CAM map of the letterboxed square laid over the whole painting.

    Parameters
    ----------
    rgb : ndarray of shape (H, W, 3), uint8
        The painting as uploaded.
    heat_square : ndarray of shape (S, S), float in [0, 1]
        The map over the square the model saw: the painting letterboxed by
        :func:`artstyle.images.resize_to_square` (longer side scaled to ``S``, the other
        centred and padded).
    side : int
        Longest side of the result (the painting is never enlarged).

    Returns
    -------
    ndarray of shape (h, w, 3), uint8
        The painting (reduced to ``side`` when larger) with the heat map over it: the
        square's padding is cut off and the rest resized (bilinear) to the painting, so
        ``h / w`` is the painting's aspect ratio.
    """
    from PIL import Image

    from artstyle.patterns.gradcam import overlay

    h, w = rgb.shape[:2]
    s = heat_square.shape[0]
    ratio = s / max(w, h)  # as resize_to_square letterboxes
    new_w, new_h = min(s, max(1, round(w * ratio))), min(s, max(1, round(h * ratio)))
    left, top = (s - new_w) // 2, (s - new_h) // 2
    shown = _fit(rgb, side)
    # Cut first, then resize: the filter then never reads the padding.
    inside = np.ascontiguousarray(heat_square[top:top + new_h, left:left + new_w], np.float32)
    heat = Image.fromarray(inside).resize((shown.shape[1], shown.shape[0]),
                                          Image.Resampling.BILINEAR)
    return overlay(shown, np.clip(np.asarray(heat), 0.0, 1.0))


def classify_image(pipeline: PageState, rgb: np.ndarray):
    """Movements, the heat map over the painting and one line of text.

    Returns
    -------
    (dict of str to float, ndarray (h, w, 3) uint8 or None, str)
        For ``gr.Label``, the heat map (:func:`heat_over_painting`; None when the
        classifier is not a network) and the page.
    """
    seen = pipeline.look(rgb)
    (best, p), = seen.top[:1]
    text = f"Most likely **{best}** ({p:.0%}), by the model `{pipeline.model}`."
    if not pipeline.heat_maps:
        return {m: q for m, q in seen.top}, None, text
    text += (f" The heat map shows where it looks for {best} (Grad-CAM on `{seen.layer}`, "
             "computed at the model's input size and laid over the whole painting).")
    return {m: q for m, q in seen.top}, heat_over_painting(rgb, seen.heat), text


def _missing_text(pipeline: PageState) -> str:
    return "**Missing:** " + "; ".join(pipeline.missing) + "."


# --------------------------------------------------------------------------- time


@dataclass
class Speed:
    """Measured seconds per loss-and-gradient evaluation on this machine, per backbone.

    Each re-paint (and the short measurement at start) adds ``(pixels, seconds per
    evaluation, set-up seconds)``; an estimate scales the measurement nearest in pixel
    count by the pixel ratio (the cost of an evaluation grows with the pixels).
    """

    measured: dict = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, backbone: str, history: list[dict]) -> None:
        """Learn from a job's evaluation records (``seconds``, ``height``, ``width``)."""
        if len(history) < 3:
            return
        last = history[-1]
        # The first evaluation of a size traces the model: set-up, not per evaluation.
        same = [r for r in history if (r["height"], r["width"]) == (last["height"],
                                                                   last["width"])]
        if len(same) < 3:
            return
        per = (same[-1]["seconds"] - same[1]["seconds"]) / (len(same) - 2)
        setup = max(0.0, history[0]["seconds"] - per)
        with self._lock:
            self.measured.setdefault(backbone, {})[last["height"] * last["width"]] = (per, setup)

    def estimate(self, backbone: str, plan: list[tuple[int, int]]) -> float | None:
        """Seconds for ``plan``: (pixels, evaluations) per scale; None before any measure."""
        with self._lock:
            known = dict(self.measured.get(backbone) or self.measured.get("vgg19") or {})
        if not known:
            return None
        total = 0.0
        for pixels, evaluations in plan:
            near = min(known, key=lambda p: abs(math.log(p / pixels)))
            per, setup = known[near]
            total += setup + evaluations * per * pixels / near
        return total


def repaint_plan(settings: StylizeParams, side: int, evaluations: int,
                 shape: tuple[int, int] | None) -> list[tuple[int, int]]:
    """(pixels, evaluations) of each scale of a re-paint, as :func:`artstyle.nst.stylize`
    splits them (``shape``: the photo's (H, W); None = a square)."""
    from artstyle.nst.optimise import _split_budget, auto_scales

    h, w = shape or (side, side)
    k = min(1.0, side / max(h, w))
    h, w = max(1, round(h * k)), max(1, round(w * k))
    scales = settings.scales
    scales = auto_scales(max(h, w)) if scales == "auto" else (list(scales) or [1.0])
    try:
        shares = _split_budget(evaluations, scales)
    except ValueError:
        shares = [evaluations] + [0] * (len(scales) - 1)
    return [(max(1, round(h * s) * round(w * s)), n) for s, n in zip(scales, shares) if n]


def seconds_words(s: float) -> str:
    """Seconds as a person reads them: '45 s', '3 min 20 s', '1 h 5 min'."""
    s = max(0, round(s))
    if s < 90:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


class JobLine:
    """The re-paint jobs: at most ``slots`` run, the others wait in order of arrival.

    Each job waits inside its own request (so that its page can say its place and the
    wait in words, and "Done in" counts from the click).
    """

    def __init__(self, slots: int):
        self.slots = slots
        self._cond = threading.Condition()
        self._waiting: list[str] = []
        self._running: dict[str, tuple[float, float]] = {}  # job -> (start, estimate)
        self._estimates: dict[str, float] = {}

    def enter(self, job: str, estimate: float | None) -> None:
        with self._cond:
            self._waiting.append(job)
            self._estimates[job] = estimate or 0.0

    def try_start(self, job: str, timeout: float = 0.5) -> bool:
        """Start ``job`` when it is first in line and a slot is free (waits ``timeout``)."""
        with self._cond:
            ready = lambda: self._waiting[:1] == [job] and len(self._running) < self.slots
            if not ready():
                self._cond.wait(timeout)
            if not ready():
                return False
            self._waiting.pop(0)
            self._running[job] = (time.monotonic(), self._estimates.get(job, 0.0))
            return True

    def place(self, job: str) -> tuple[int, float]:
        """(jobs ahead of ``job``, estimated seconds until it starts)."""
        with self._cond:
            ahead = self._waiting[:self._waiting.index(job)] if job in self._waiting else []
            now = time.monotonic()
            left = sorted(max(0.0, est - (now - t0)) for t0, est in self._running.values())
            # the running jobs end in turn, then those ahead, one slot at a time
            wait = (left[0] if len(left) >= self.slots else 0.0) + sum(
                self._estimates.get(j, 0.0) for j in ahead) / self.slots
            return len(ahead) + len(self._running), wait

    def leave(self, job: str) -> None:
        with self._cond:
            if job in self._waiting:
                self._waiting.remove(job)
            self._running.pop(job, None)
            self._estimates.pop(job, None)
            self._cond.notify_all()


# --------------------------------------------------------------------------- re-paint


#: A stand-in for the feed-forward engine (tests): ``(content_rgb, style_rgb, max_side) ->
#: (h, w, 3) uint8``. None: :attr:`PageState.fast`, the real engine when it is built. With
#: either, a re-paint shows the engine's result at once (before waiting in line), and the
#: Gatys optimisation then refines it, starting from it (``init: fast``).
FAST_ENGINE: Callable[[np.ndarray, np.ndarray, int], np.ndarray] | None = None


def _fast_engine() -> Callable[[np.ndarray, np.ndarray, int], np.ndarray] | None:
    """The feed-forward engine as the page calls it, or None (logged) when it is not built."""
    try:
        from artstyle.nst.feedforward import load_engine, stylize_fast

        engine = load_engine()
    except ArtstyleError as err:
        logger.info("no feed-forward first result: %s", err)
        return None
    return lambda content, style, side: stylize_fast(content, style, max_side=side,
                                                     engine=engine)


@dataclass
class RepaintRequest:
    """The Re-paint tab's inputs: image files (the page's PNGs or uploads) and settings."""

    photo_file: str | None
    painting_file: str | None
    side: int
    evaluations: int
    backbone: str
    style_factor: float


@dataclass
class Update:
    """One update of the Re-paint tab (None: leave as is)."""

    status: str
    before_after: tuple[np.ndarray, np.ndarray] | None = None
    verdict: str | None = None
    download: str | None = None


class Repainter:
    """Runs re-paint jobs one after another (:class:`JobLine`), learning their speed."""

    def __init__(self, pipeline: PageState, workdir: Path):
        self.pipeline = pipeline
        self.workdir = workdir
        self.line = JobLine(pipeline.params.concurrent_jobs)
        self.speed = Speed()
        self.examples: dict[str, str] = {}  # pixel_key of a prototype painting -> movement
        self.measured = threading.Event()

    # ------------------------------------------------------------------- time

    def measure(self, side: int = 128, evaluations: int = 8) -> None:
        """Time a few evaluations of the first backbone on this machine (at start)."""
        from artstyle.images import load_image_source

        try:
            photo = _fit(load_image_source("sklearn:china.jpg"), side)
            request = RepaintRequest(None, None, side, evaluations, self.pipeline.backbones[0],
                                     1.0)
            for _ in self.run(request, photo, photo[::-1], None, job="measure"):
                pass
        except Exception:
            logger.warning("could not measure the re-paint speed", exc_info=True)
        finally:
            self.measured.set()

    def estimate(self, request: RepaintRequest, shape: tuple[int, int] | None) -> float | None:
        plan = repaint_plan(self.pipeline.stylize, request.side, request.evaluations, shape)
        return self.speed.estimate(request.backbone, plan)

    def estimate_text(self, request: RepaintRequest, shape: tuple[int, int] | None) -> str:
        """The estimate shown before a run, in words."""
        seconds = self.estimate(request, shape)
        if seconds is None:
            return ("**Estimate:** measuring this computer's speed... (a few seconds after "
                    "the page starts)")
        size = "the photo's proportions" if shape else "a square photo"
        source = ("the speed measured on this computer" if request.backbone in
                  self.speed.measured else f"the speed of {next(iter(self.speed.measured))} "
                  f"measured on this computer ({request.backbone} is not measured yet)")
        return (f"**Estimate:** about **{seconds_words(seconds)}** for {request.evaluations} "
                f"evaluations at {request.side} px ({size}, {request.backbone}), from "
                f"{source}.")

    # ------------------------------------------------------------------- a job

    def inputs(self, request: RepaintRequest):
        """(photo, painting, painting's movement or None), read by the safe loader."""
        params = self.pipeline.params
        if not request.photo_file:
            raise UploadRejected("Give a photo first: upload one, or click an example photo.")
        if not request.painting_file:
            raise UploadRejected("Give a painting first: upload one, or click a movement's "
                                 "prototype painting.")
        try:
            content = load_upload(request.photo_file, "photo", params)
            style = load_upload(request.painting_file, "painting", params)
        finally:  # an upload through the API: decoded, so deleted (not served back)
            _forget(request.photo_file, self.workdir)
            _forget(request.painting_file, self.workdir)
        movement = self.examples.get(pixel_key(style))
        if movement is None and self.pipeline.classifier is not None:
            movement = self.pipeline.judge(style)
        return content, style, movement

    def __call__(self, request: RepaintRequest) -> Iterator[Update]:
        """A re-paint for the page: waits its turn, then yields updates until done.

        Closing this generator (Cancel, or the tab closed) leaves the line, or stops the
        optimisation at its next evaluation.
        """
        clicked = time.perf_counter()
        try:
            content, style, movement = self.inputs(request)
        except (ArtstyleError, FileNotFoundError, ValueError) as err:
            yield Update(f"**{err}**")
            return
        yield from self.run(request, content, style, movement, clicked=clicked)

    def run(self, request: RepaintRequest, content: np.ndarray, style: np.ndarray,
            movement: str | None, *, clicked: float | None = None,
            job: str | None = None) -> Iterator[Update]:
        from artstyle.images import save_image
        from artstyle.nst import ssim_to_content, stylize
        from artstyle.stylize import backbone_params, with_overrides

        clicked = clicked or time.perf_counter()
        pipeline = self.pipeline
        job = job or uuid.uuid4().hex[:8]
        estimate = self.estimate(request, content.shape[:2])
        fast_engine = FAST_ENGINE or pipeline.fast
        if fast_engine is not None and job != "measure":  # see the hook's comment
            fast = fast_engine(content, style, int(request.side))
            yield Update("A first result (feed-forward, one pass); refining it with the "
                         "optimisation...", before_after=(_photo_at(content, fast.shape[1],
                                                                    fast.shape[0]), fast))
        self.line.enter(job, estimate)
        events: queue.Queue = queue.Queue()
        stop = threading.Event()
        worker = None
        try:
            while not self.line.try_start(job):
                ahead, wait = self.line.place(job)
                yield Update(f"**Waiting in line:** {ahead} job{'s' if ahead != 1 else ''} "
                             f"ahead of yours, about **{seconds_words(wait)}** before yours "
                             f"starts ({seconds_words(time.perf_counter() - clicked)} so far).")
            waited = time.perf_counter() - clicked
            try:
                base = backbone_params(request.backbone, pipeline.stylize)
                transfer, layers = with_overrides(pipeline.stylize, request.backbone, {
                    "max_side": int(request.side), "max_evaluations": int(request.evaluations),
                    "style_weight": base.style_weight * float(request.style_factor),
                    # Refine the feed-forward result the page showed first.
                    **({"init": "fast"} if FAST_ENGINE is None and pipeline.fast else {})})
                yield Update(f"Preparing the {request.backbone} feature extractor...")
                extractor = pipeline.extractor(request.backbone)
            except (ArtstyleError, FileNotFoundError, ValueError) as err:
                yield Update(f"**{err}**")
                return

            def on_evaluation(record: dict) -> bool:
                events.put(("evaluation", record))
                return stop.is_set()

            def work() -> None:
                try:
                    result = stylize(content, style, extractor=extractor, settings=transfer,
                                     weights=layers, callback=on_evaluation,
                                     preview=lambda img: events.put(("preview", img)),
                                     preview_every=pipeline.params.preview_every)
                    events.put(("done", result))
                except Exception as err:
                    logger.exception("re-paint failed")
                    events.put(("error", err))

            worker = threading.Thread(target=work, name=f"repaint-{job}", daemon=True)
            logger.info("re-paint %s started: %s, %d px, %d evaluations", job,
                        request.backbone, request.side, request.evaluations)
            worker.start()
            started = time.perf_counter()
            yield from self._follow(request, events, content, estimate, started)
            kind, result = events.get()
            if kind == "error":
                message = str(result) if isinstance(result, ArtstyleError) else (
                    f"{type(result).__name__}: {result}")
                yield Update(f"**The re-paint failed:** {message}")
                return
            self.speed.add(request.backbone, result.history)
            image = result.image
            h, w = image.shape[:2]
            out = self.workdir / "results" / f"repainted-{job}-{w}x{h}.png"
            out.parent.mkdir(parents=True, exist_ok=True)
            save_image(image, out)
            ssim = ssim_to_content(image, content)
            seconds = time.perf_counter() - clicked
            logger.info("re-paint %s done: %d evaluations in %.1f s", job, result.evaluations,
                        seconds)
            verdict = []
            if pipeline.classifier is not None and movement is not None:
                seen = pipeline.judge(image)
                hit = "yes" if seen == movement else "no"
                verdict.append(f"The classifier `{pipeline.model}` sees **{seen}** in the "
                               f"result; the painting's movement is {movement}: style hit "
                               f"**{hit}**.")
            verdict.append(f"SSIM to the photo: **{ssim:.3f}** (1 = the photo's structure "
                           "unchanged).")
            status = (f"**Done** in **{seconds:.1f} s** from your click ("
                      f"{waited:.1f} s waiting, {time.perf_counter() - clicked - waited:.1f} s "
                      f"working): {result.evaluations} evaluations, {w}x{h} px"
                      + (" (diverged: the last good image is shown)." if result.diverged
                         else "."))
            yield Update(status, before_after=(_photo_at(content, w, h), image),
                         verdict="\n\n".join(verdict), download=str(out))
        finally:
            if worker is not None and worker.is_alive():
                stop.set()
                logger.info("re-paint %s stopped (cancelled or the page was closed)", job)
            self.line.leave(job)

    def _follow(self, request: RepaintRequest, events: queue.Queue, content: np.ndarray,
                estimate: float | None, started: float) -> Iterator[Update]:
        """Updates while the worker runs; leaves the final event in ``events``."""
        status = "Re-painting: starting (the first evaluation traces the model)..."
        while True:
            preview = None
            deadline = time.monotonic() + 0.5
            while time.monotonic() < deadline:
                try:
                    kind, payload = events.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if kind == "evaluation":
                    spent = time.perf_counter() - started
                    step = payload["step"]
                    left = (estimate - spent if estimate and step < 3 else
                            spent / step * (request.evaluations - step))
                    status = (f"Re-painting: evaluation {step} of {request.evaluations}, "
                              f"{seconds_words(spent)} so far, about "
                              f"{seconds_words(max(0.0, left))} left.")
                elif kind == "preview":
                    preview = payload
                else:
                    events.put((kind, payload))
                    return
            yield Update(status, before_after=None if preview is None else (
                _photo_at(content, preview.shape[1], preview.shape[0]), preview))


def _photo_at(content: np.ndarray, w: int, h: int) -> np.ndarray:
    from artstyle.images import resize_image

    return content if content.shape[:2] == (h, w) else resize_image(content, h, w)


# --------------------------------------------------------------------------- the page


def _notice_lines(notice: str) -> tuple[str, str]:
    """(a short line, the full notice)."""
    short = notice.split(". ", 1)[0]
    return (short if len(short) <= 100 else short[:99] + "…").rstrip("."), notice


def example_files(pipeline: PageState, repainter: Repainter, workdir: Path
                  ) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """The examples as PNGs the server encoded: (label, path) of photos and paintings."""
    from artstyle.images import load_image_source

    folder = workdir / "examples"
    photos, paintings = [], []
    for name, source in EXAMPLE_PHOTOS.items():
        try:
            photos.append((name, keep_as_png(_fit(load_image_source(source), 1024), folder,
                                             "photo")))
        except Exception:
            logger.warning("example photo %s unavailable", source, exc_info=True)
    for movement, source in sorted(pipeline.prototypes().items()):
        try:
            rgb = _fit(load_image_source(source), 1024)
        except Exception:
            logger.warning("prototype %s unavailable", source, exc_info=True)
            continue
        repainter.examples[pixel_key(rgb)] = movement
        paintings.append((movement, keep_as_png(rgb, folder, "prototype")))
    return photos, paintings


def build_page(pipeline: PageState, workdir: Path, repainter: Repainter | None = None):
    """The Gradio page (``gr.Blocks``) of :func:`run_server`, queue configured."""
    import gradio as gr

    prm = pipeline.params
    repainter = repainter or Repainter(pipeline, workdir)
    uploads = workdir / "kept"
    photos, paintings = example_files(pipeline, repainter, workdir)
    header = ["# artstyle: the movement of a painting, a photo re-painted",
              ("**Classify** a painting, or **re-paint** a photo in the style of a painting. "
               "Everything runs on this computer. "
               "[Use it from Python](?view=api) (`gradio_client`: `/classify`, `/repaint`).")]
    short, full = _notice_lines(pipeline.notice)
    if pipeline.missing:
        header.append(_missing_text(pipeline))

    def keep_upload(value, what: str):
        """Decode an upload at once, delete the original, show the server's own PNG."""
        path = _payload_path(value)
        if not path:
            return None, ""
        try:
            rgb = load_upload(path, what, prm)
        except UploadRejected as err:
            return None, f"**{err}**"
        finally:
            _forget(path, workdir)
        return keep_as_png(_fit(rgb, KEPT_SIDE), uploads, what), ""

    def classify(value, upload: bool = True):
        """The Classify tab's one job (the `/classify` endpoint); ``upload``: the file is
        an upload (deleted once decoded), not an example."""
        path = _payload_path(value)
        if not path:
            return None, None, None, "Upload or drop a painting, or click an example.", None
        if pipeline.classifier is None:
            return None, None, None, _missing_text(pipeline), None
        try:
            rgb = load_upload(path, "painting", prm)
        except UploadRejected as err:
            if upload:
                _forget(path, workdir)
            return None, None, None, f"**{err}**", None
        if upload:
            _forget(path, workdir)
            path = keep_as_png(_fit(rgb, KEPT_SIDE), uploads, "painting")
        else:
            path = gr.skip()
        top, heat, text = classify_image(pipeline, rgb)
        return path, top, heat, text, None if heat is None else [heat, _fit(rgb, KEPT_SIDE)]

    with gr.Blocks(title="artstyle", delete_cache=(max(60, prm.keep_files_s // 4),
                                                   prm.keep_files_s)) as page:
        gr.Markdown("\n\n".join(header), elem_id="header")
        if pipeline.notice:
            with gr.Accordion(f"About the dataset: {short}", open=False, elem_id="notice"):
                gr.Markdown(full)
        with gr.Tab("Classify"):
            with gr.Row():
                with gr.Column() as left:
                    painting = gr.Image(label="Painting (drop, click or paste)", type="filepath",
                                        sources=["upload", "clipboard"], format="png",
                                        elem_id="classify-file", height=360)
                    c_status = gr.Markdown("Upload or drop a painting, or click an example.",
                                           elem_id="classify-status")
                with gr.Column():
                    label = gr.Label(num_top_classes=3, label="Most likely movements",
                                     elem_id="classify-label")
                    heat = gr.Image(label="Where the model looks (Grad-CAM over the painting)",
                                    interactive=False, format="png", elem_id="classify-heat",
                                    height=360, visible=pipeline.heat_maps)
                    show_heat = gr.Checkbox(True, label="Show the heat map",
                                            elem_id="show-heat", visible=pipeline.heat_maps)
                    if pipeline.classifier is not None and not pipeline.heat_maps:
                        gr.Markdown(f"No heat map: the page's classifier `{pipeline.model}` "
                                    f"is a {pipeline.classifier.kind} member, and Grad-CAM "
                                    "needs a network's feature map (a neural or style "
                                    "member).",
                                    elem_id="no-heat")
            views = gr.State(None)
            if paintings:
                # An example click sets the painting without an upload: classify it too.
                with left:  # under the painting (seen first on a phone), now that outputs exist
                    gr.Examples([[p] for _, p in paintings], painting,
                                [painting, label, heat, c_status, views],
                                lambda v: classify(v, upload=False), run_on_click=True,
                                cache_examples=False, preprocess=False,
                                label="Examples: the prototype painting of each movement",
                                elem_id="classify-examples", api_visibility="private",
                                examples_per_page=20)
            painting.upload(classify, painting, [painting, label, heat, c_status, views],
                            preprocess=False, api_name="classify", concurrency_id="classify",
                            concurrency_limit=2)
            show_heat.change(lambda on, v: gr.skip() if not v else v[0 if on else 1],
                             [show_heat, views], heat, api_visibility="private", queue=False)

        with gr.Tab("Re-paint"):
            with gr.Row():
                with gr.Column():
                    with gr.Row():
                        photo = gr.Image(label="Photo", type="filepath", format="png",
                                         sources=["upload", "clipboard"], elem_id="photo-file",
                                         height=260)
                        style_file = gr.Image(label="Painting (its style)", type="filepath",
                                              format="png", sources=["upload", "clipboard"],
                                              elem_id="painting-file", height=260)
                    with gr.Row():
                        if photos:
                            gr.Examples([[p] for _, p in photos], photo,
                                        label="Example photos",
                                        elem_id="photo-examples", api_visibility="private")
                        if paintings:
                            gr.Examples([[p] for _, p in paintings], style_file,
                                        label="Example paintings: the prototype of "
                                              + ", ".join(m for m, _ in paintings),
                                        elem_id="painting-examples", api_visibility="private",
                                        examples_per_page=20)
                    side = gr.Slider(*prm.side_range, value=prm.side, step=32,
                                     label="Output size (longest side, px)", elem_id="side")
                    evaluations = gr.Slider(*prm.evaluations_range, value=prm.evaluations,
                                            step=10, label="Evaluations (loss and gradient)",
                                            elem_id="evaluations")
                    with gr.Accordion("More settings", open=False):
                        backbone = gr.Dropdown(pipeline.backbones, value=pipeline.backbones[0],
                                               label="Backbone (feature extractor)",
                                               elem_id="backbone")
                        factor = gr.Slider(*prm.style_factor_range, value=1.0, step=0.1,
                                           label="Style weight (x the backbone's default)",
                                           elem_id="style-factor")
                    estimate = gr.Markdown("**Estimate:** measuring this computer's speed...",
                                           elem_id="estimate")
                    with gr.Row():
                        go = gr.Button("Re-paint", variant="primary", elem_id="repaint")
                        stop = gr.Button("Cancel", elem_id="cancel")
                with gr.Column():
                    r_status = gr.Markdown("Pick a photo and a painting (or click the "
                                           "examples), then press Re-paint.",
                                           elem_id="repaint-status")
                    slider = gr.ImageSlider(label="Before / after (drag the handle)",
                                            format="png", interactive=False,
                                            elem_id="result", max_height=600)
                    verdict = gr.Markdown(elem_id="verdict")
                    download = gr.DownloadButton("Download full-size PNG", visible=False,
                                                 elem_id="download")

            def kept(value, what):
                path, message = keep_upload(value, what)
                return path, message or gr.skip()

            photo.upload(lambda v: kept(v, "photo"), photo, [photo, r_status],
                         preprocess=False, api_visibility="private", queue=False)
            style_file.upload(lambda v: kept(v, "painting"), style_file,
                              [style_file, r_status], preprocess=False,
                              api_visibility="private", queue=False)

            def estimate_text(photo_value, sd, ev, bb):
                path = _payload_path(photo_value)
                shape = _image_shape(path) if path else None
                request = RepaintRequest(path, None, int(sd), int(ev), bb, 1.0)
                return repainter.estimate_text(request, shape)

            def wait_for_measure(photo_value, sd, ev, bb):
                repainter.measured.wait(120)
                return estimate_text(photo_value, sd, ev, bb)

            for control in (side, evaluations, backbone):
                control.change(estimate_text, [photo, side, evaluations, backbone], estimate,
                               preprocess=False, api_visibility="private", queue=False,
                               trigger_mode="always_last")
            photo.change(estimate_text, [photo, side, evaluations, backbone], estimate,
                         preprocess=False, api_visibility="private", queue=False)
            page.load(wait_for_measure, [photo, side, evaluations, backbone], estimate,
                      preprocess=False, api_visibility="private", concurrency_id="estimate",
                      concurrency_limit=None)

            def run(pf, sf, sd, ev, bb, fa):
                """The Re-paint tab's one job (the `/repaint` endpoint)."""
                request = RepaintRequest(_payload_path(pf), _payload_path(sf), int(sd),
                                         int(ev), bb, float(fa))
                for u in repainter(request):
                    yield (u.status, gr.skip() if u.before_after is None else u.before_after,
                           gr.skip() if u.verdict is None else u.verdict,
                           gr.DownloadButton(value=u.download, visible=True) if u.download
                           else gr.skip())

            def clear():
                return (None, "", gr.DownloadButton(visible=False))

            go.click(clear, None, [slider, verdict, download], api_visibility="private",
                     queue=False)
            job = go.click(run, [photo, style_file, side, evaluations, backbone, factor],
                           [r_status, slider, verdict, download], preprocess=False,
                           api_name="repaint", concurrency_limit=prm.concurrent_jobs + 16,
                           concurrency_id="repaint", show_progress="minimal")
            stop.click(lambda: "**Cancelled.**", None, r_status, cancels=[job],
                       api_visibility="private", queue=False)
    page.queue(default_concurrency_limit=prm.concurrent_jobs)
    return page


def _image_shape(path: str) -> tuple[int, int] | None:
    """(H, W) of a PNG the page keeps, from its header; None when unreadable."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return im.size[1], im.size[0]
    except (OSError, ValueError):
        return None


def _forget(path: str, workdir: Path) -> None:
    """Delete an uploaded original (inside the server's folder, not one of its PNGs)."""
    real = os.path.realpath(path)
    root = os.path.realpath(workdir)
    keep = (os.path.join(root, "examples"), os.path.join(root, "kept"),
            os.path.join(root, "results"))
    if os.path.commonpath([real, root]) == root and not real.startswith(keep):
        try:
            os.remove(real)
        except OSError:
            pass


def run_server(params: ServeParams = ServeParams(), *, block: bool = True):
    """Start the page on ``params.host:params.port`` (``artstyle serve``).

    Parameters
    ----------
    params : artstyle.config.ServeParams
    block : bool
        Serve until Ctrl+C or SIGTERM, then stop and delete the temporary folder;
        ``False`` returns ``(page, temporary folder)`` at once (the caller closes both).

    Raises
    ------
    OSError
        The port is taken.
    """
    workdir = Path(tempfile.mkdtemp(prefix="artstyle-serve-"))
    # Before gradio is imported: it reads these once. No analytics, no version check.
    os.environ["GRADIO_TEMP_DIR"] = str(workdir)
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    logging.getLogger(__name__).setLevel(logging.INFO)
    try:
        from starlette.middleware import Middleware

        pipeline = PageState.load(params)
        repainter = Repainter(pipeline, workdir)
        page = build_page(pipeline, workdir, repainter)
        # No allowed_paths: Gradio then serves only its own folder (uploads, results),
        # and FileGuard only the PNGs in it.
        page.launch(server_name=params.host, server_port=params.port, share=False,
                    prevent_thread_lock=True, quiet=True, show_error=False, ssr_mode=False,
                    max_file_size=f"{params.max_upload_mb}mb", footer_links=["api"], css=PAGE_CSS,
                    app_kwargs={"middleware": [Middleware(FileGuard, root=workdir)]})
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    threading.Thread(target=repainter.measure, name="measure-speed", daemon=True).start()
    print(f"artstyle serve: http://{params.host}:{params.port} (model {pipeline.model or 'none'}"
          f"; uploads in {workdir}, deleted at exit; Ctrl+C stops)", flush=True)
    for line in pipeline.missing:
        print(f"artstyle serve: missing {line}", flush=True)
    if not block:
        return page, workdir

    def _terminate(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)
    try:
        while True:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        page.close()
        shutil.rmtree(workdir, ignore_errors=True)
        print("artstyle serve: stopped", flush=True)
