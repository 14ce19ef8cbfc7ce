"""``artstyle serve``: the study's user flow as a local web page (Gradio).

Two tabs. **Classify**: a painting's three most likely movements and where the model
looks (Grad-CAM, :func:`artstyle.patterns.explain.look`). **Re-paint**: a photo (or a
bundled example) in the style of a painting (or of a movement's prototype painting from
``data/prepared``), with live progress, a cancel button, the judgement of the result as
the ``stylize`` stage judges (movement the classifier sees, style hit, SSIM to the
photo) and a download of the PNG. The page reads the pipeline's outputs in the current
directory (``models/``, ``data/prepared/``) and says what to run when one is missing.

Every upload goes through the one safe loader (:mod:`artstyle.images`); a file that is
not a usable image gives a one-line message on the page. Uploads and results live in
one temporary folder, deleted when the server stops (and files older than
``ServeParams.keep_files_s`` while it runs). Closing the tab or pressing *Cancel* stops
the job at its next evaluation. No outbound network: Gradio's analytics and version
check are off, its fonts are served locally.
"""

from __future__ import annotations

import logging
import os
import queue
import shutil
import signal
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from artstyle import paths
from artstyle.config import ServeParams, StylizeParams
from artstyle.errors import ArtstyleError

logger = logging.getLogger(__name__)

#: The photos bundled with scikit-learn, offered when no photo is uploaded.
EXAMPLE_PHOTOS = {"example: China (scikit-learn)": "sklearn:china.jpg",
                  "example: flower (scikit-learn)": "sklearn:flower.jpg"}
UPLOADED = "my upload"
PROTOTYPE = "prototype of "

#: How each rejection reason of :class:`artstyle.images.ImageRejected` reads on the page.
REASON_WORDS = {
    "unreadable": "the file cannot be read",
    "empty": "the file is empty",
    "not_an_image": "this file is not an image (JPEG, PNG, WebP, GIF, BMP, TIFF, PPM or AVIF)",
    "truncated": "the image file is incomplete (truncated)",
    "too_large": "the image has too many pixels",
    "decode_error": "the image file is damaged",
    "unsupported_format": "this kind of image cannot be read",
}


class UploadRejected(ArtstyleError, ValueError):
    """An uploaded file is not usable; the message is one line for the page."""


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
        Not an image, truncated, too many pixels, or a shorter side below ``min_side``.
    """
    from artstyle.images import ImageRejected, load_rgb_array

    try:
        rgb = load_rgb_array(path, max_pixels=params.max_pixels)
    except ImageRejected as err:
        raise UploadRejected(f"The {what} cannot be used: {REASON_WORDS[err.reason]} "
                             f"({err.message}).") from None
    h, w = rgb.shape[:2]
    if min(h, w) < params.min_side:
        raise UploadRejected(f"The {what} is only {w}x{h} px: give an image at least "
                             f"{params.min_side} px on its shorter side.")
    return rgb


@dataclass
class Pipeline:
    """What the page uses from the pipeline's outputs, loaded once and shared by users.

    Attributes
    ----------
    params : ServeParams
    model : str
        The classifier's name ("" when none could be loaded).
    classifier : TrainedClassifier or None
        :func:`artstyle.classifier.load_classifier`'s member (any kind).
    missing : list of str
        What is missing, each with the command that builds it.
    notice : str
        The prepared dataset's notice (e.g. that it is synthetic).
    stylize : StylizeParams
        The ``stylize`` group of ``params.yaml`` (defaults without it): optimiser, layers
        and loss weights of each backbone.
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
    _gm: object = None
    _extractors: dict = field(default_factory=dict)
    _prototypes: dict | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def load(cls, params: ServeParams) -> Pipeline:
        """Load the classifier and read what exists; never raises for a missing output."""
        from artstyle.config import load_params
        from artstyle.data.dataset import dataset_notice

        p = cls(params)
        if paths.PARAMS.exists():
            p.stylize = load_params(paths.PARAMS).stylize
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
            if p.classifier.keras_model is not None:
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

    def look(self, rgb: np.ndarray, top: int = 3):
        """:func:`artstyle.patterns.explain.look` with the page's classifier."""
        from artstyle.patterns.explain import look

        return look(rgb, self.classifier, self._gm, top=top)

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
            else the prepared square. Empty without a classifier or prepared data.
        """
        with self._lock:
            if self._prototypes is None:
                self._prototypes = self._find_prototypes()
            return self._prototypes

    def _find_prototypes(self) -> dict[str, str]:
        if (self.classifier is None or self._gm is None
                or not (paths.PREPARED / paths.MANIFEST_NAME).exists()):
            return {}
        from artstyle.data.dataset import load_manifest, load_split, resize_batch
        from artstyle.patterns import collection
        from artstyle.patterns.report import embed

        model, input_size = self.classifier.keras_model, self.classifier.input_size
        train, classes = load_split(paths.PREPARED, "train")
        manifest, _ = load_manifest(paths.PREPARED)
        rows = manifest[manifest["split"] == "train"].reset_index(drop=True)
        emb = embed(self._gm, model, resize_batch(train.images, input_size))
        found = {}
        for c, (closest, _, _) in collection.prototypes_and_outliers(
                emb, train.labels, len(classes), 1).items():
            row = rows.loc[int(closest[0])]
            raw = paths.RAW / str(row.get("source_path", ""))
            found[classes[c]] = str(raw if raw.is_file() else paths.PREPARED / row["path"])
        return found


# --------------------------------------------------------------------------- the two tabs


def classify_upload(pipeline: Pipeline, path: str | None):
    """The Classify tab: (movements for ``gr.Label``, heat map, message)."""
    if not path:
        return None, None, "Upload or drop a painting above."
    if pipeline.classifier is None:
        return None, None, _missing_text(pipeline)
    try:
        rgb = load_upload(path, "painting", pipeline.params)
    except UploadRejected as err:
        return None, None, f"**{err}**"
    seen = pipeline.look(rgb)
    (best, p), = seen.top[:1]
    text = f"Most likely **{best}** ({p:.0%}), by the model `{pipeline.model}`."
    if not seen.layer:
        return {m: q for m, q in seen.top}, None, text + " (No heat map: Grad-CAM needs a neural model.)"
    text += f" The heat map shows where it looks for {best} (Grad-CAM on `{seen.layer}`)."
    return {m: q for m, q in seen.top}, _display(seen.overlay), text


def _display(rgb: np.ndarray, side: int = 256) -> np.ndarray:
    """Small images (the prepared squares) enlarged for the page, pixels kept sharp."""
    from PIL import Image

    h, w = rgb.shape[:2]
    if max(h, w) >= side:
        return rgb
    k = max(1, side // max(h, w))
    return np.asarray(Image.fromarray(rgb).resize((w * k, h * k), Image.Resampling.NEAREST))


def _missing_text(pipeline: Pipeline) -> str:
    return "**Missing:** " + "; ".join(pipeline.missing) + "."


@dataclass
class RepaintRequest:
    """The Re-paint tab's inputs."""

    photo_choice: str
    photo_file: str | None
    painting_choice: str
    painting_file: str | None
    side: int
    evaluations: int
    backbone: str
    style_factor: float


def repaint(pipeline: Pipeline, request: RepaintRequest, workdir: Path):
    """The Re-paint tab: a generator of page updates while the photo is re-painted.

    Yields
    ------
    tuple
        (progress text, preview, result, judgement text, download path), ``None`` for
        what is not there yet. The optimisation runs in a thread; closing this
        generator (Cancel, or the tab closed) stops it at its next evaluation.
    """
    from artstyle.images import load_image_source, save_image
    from artstyle.stylize import backbone_params, with_overrides

    try:
        if request.photo_choice == UPLOADED:
            if not request.photo_file:
                raise UploadRejected("Upload a photo first, or pick an example photo.")
            content = load_upload(request.photo_file, "photo", pipeline.params)
        else:
            content = load_image_source(EXAMPLE_PHOTOS.get(request.photo_choice,
                                                           "sklearn:china.jpg"))
        if request.painting_choice == UPLOADED:
            if not request.painting_file:
                raise UploadRejected("Upload a painting first, or pick a movement.")
            style = load_upload(request.painting_file, "painting", pipeline.params)
            movement = pipeline.look(style).top[0][0] if pipeline.classifier else None
        else:
            movement = request.painting_choice.removeprefix(PROTOTYPE)
            source = pipeline.prototypes().get(movement)
            if source is None:
                raise UploadRejected(f"No prototype painting of {movement!r}: "
                                     + (_missing_text(pipeline) if pipeline.missing
                                        else "pick another movement."))
            style = load_image_source(source)
        base = backbone_params(request.backbone, pipeline.stylize)
        transfer, layers = with_overrides(pipeline.stylize, request.backbone, {
            "max_side": int(request.side), "max_evaluations": int(request.evaluations),
            "style_weight": base.style_weight * float(request.style_factor)})
        yield f"Preparing the {request.backbone} feature extractor...", None, None, None, None
        extractor = pipeline.extractor(request.backbone)
    except (ArtstyleError, FileNotFoundError, ValueError) as err:
        yield f"**{err}**", None, None, None, None
        return

    from artstyle.nst import ssim_to_content, stylize

    events: queue.Queue = queue.Queue()
    stop = threading.Event()
    every = pipeline.params.preview_every

    def on_evaluation(record: dict) -> bool:
        events.put(("evaluation", record))
        return stop.is_set()

    def run() -> None:
        try:
            result = stylize(content, style, extractor=extractor, settings=transfer,
                             weights=layers, callback=on_evaluation,
                             preview=lambda img: events.put(("preview", img)),
                             preview_every=every)
            events.put(("done", result))
        except Exception as err:
            logger.exception("re-paint failed")
            events.put(("error", err))

    job = uuid.uuid4().hex[:8]
    worker = threading.Thread(target=run, name=f"repaint-{job}", daemon=True)
    started = time.perf_counter()
    logger.info("re-paint %s started: %s, %d px, %d evaluations", job, request.backbone,
                request.side, request.evaluations)
    worker.start()
    status, done = "Re-painting: starting (the first evaluation traces the model)...", None
    try:
        while done is None:
            preview = None
            deadline = time.monotonic() + 0.5
            while time.monotonic() < deadline:
                try:
                    kind, payload = events.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if kind == "evaluation":
                    status = (f"Re-painting: evaluation {payload['step']} of "
                              f"{request.evaluations}, loss {payload['total']:.4g}, "
                              f"{payload['seconds']:.0f} s")
                elif kind == "preview":
                    preview = payload
                else:
                    done = (kind, payload)
                    break
            if done is None:
                yield status, preview, None, None, None
        kind, result = done
        if kind == "error":
            message = str(result) if isinstance(result, ArtstyleError) else (
                f"{type(result).__name__}: {result}")
            yield f"**The re-paint failed:** {message}", None, None, None, None
            return
        out = workdir / f"repainted-{job}-{result.image.shape[1]}x{result.image.shape[0]}.png"
        save_image(result.image, out)
        ssim = ssim_to_content(result.image, content)
        seconds = time.perf_counter() - started
        logger.info("re-paint %s done: %d evaluations in %.1f s", job, result.evaluations,
                    seconds)
        verdict = [f"**Done** in {seconds:.1f} s: {result.evaluations} evaluations, "
                   f"{result.image.shape[1]}x{result.image.shape[0]} px"
                   + (" (diverged: the last good image is shown)" if result.diverged else ".")]
        if pipeline.classifier is not None:
            clf = pipeline.classifier
            seen = clf.classes[int(clf.proba([result.image])[0].argmax())]
            hit = "yes" if seen == movement else "no"
            verdict.append(f"The classifier `{pipeline.model}` sees **{seen}** in the result; "
                           f"the painting's movement is {movement}: style hit **{hit}**.")
        verdict.append(f"SSIM to the photo: **{ssim:.3f}** (1 = the photo's structure "
                       "unchanged).")
        yield status, None, result.image, "\n\n".join(verdict), str(out)
    finally:
        if worker.is_alive():
            stop.set()
            logger.info("re-paint %s stopped (cancelled or the page was closed)", job)


# --------------------------------------------------------------------------- the page


def build_page(pipeline: Pipeline, workdir: Path):
    """The Gradio page (``gr.Blocks``) of :func:`run_server`, queue configured."""
    import gradio as gr

    prm = pipeline.params
    header = ["# artstyle: the movement of a painting, a photo re-painted",
              "**Classify** a painting, or **re-paint** a photo in the style of a painting "
              "or of a movement. Everything runs on this computer."]
    if pipeline.notice:
        header.append(f"> {pipeline.notice}")
    if pipeline.missing:
        header.append(_missing_text(pipeline))
    movements = sorted(pipeline.classifier.classes) if pipeline.classifier else []

    with gr.Blocks(title="artstyle", delete_cache=(max(60, prm.keep_files_s // 4),
                                                   prm.keep_files_s)) as page:
        gr.Markdown("\n\n".join(header))
        with gr.Tab("Classify"):
            with gr.Row():
                with gr.Column():
                    painting = gr.File(label="Painting (drop or click)", file_types=["image"],
                                       elem_id="classify-file")
                    c_status = gr.Markdown("Upload or drop a painting above.",
                                           elem_id="classify-status")
                with gr.Column():
                    label = gr.Label(num_top_classes=3, label="Most likely movements",
                                     elem_id="classify-label")
                    heat = gr.Image(label="Where the model looks (Grad-CAM)",
                                    interactive=False, elem_id="classify-heat")
            painting.change(lambda f: classify_upload(pipeline, f), painting,
                            [label, heat, c_status])
        with gr.Tab("Re-paint"):
            with gr.Row():
                with gr.Column():
                    photo_choice = gr.Radio([UPLOADED, *EXAMPLE_PHOTOS],
                                            value=next(iter(EXAMPLE_PHOTOS)), label="Photo",
                                            elem_id="photo-choice")
                    photo = gr.File(label="Photo (drop or click)", file_types=["image"],
                                    elem_id="photo-file")
                    painting_choice = gr.Dropdown(
                        [UPLOADED, *(PROTOTYPE + m for m in movements)],
                        value=(PROTOTYPE + movements[0]) if movements else UPLOADED,
                        label="Style: my painting, or a movement's prototype painting",
                        elem_id="painting-choice")
                    style_file = gr.File(label="Painting (drop or click)", file_types=["image"],
                                         elem_id="painting-file")
                    side = gr.Slider(*prm.side_range, value=prm.side, step=32,
                                     label="Output size (longest side, px)", elem_id="side")
                    evaluations = gr.Slider(*prm.evaluations_range, value=prm.evaluations,
                                            step=10, label="Iterations (loss evaluations)",
                                            elem_id="evaluations")
                    backbone = gr.Dropdown(pipeline.backbones, value=pipeline.backbones[0],
                                           label="Backbone (feature extractor)",
                                           elem_id="backbone")
                    factor = gr.Slider(*prm.style_factor_range, value=1.0, step=0.1,
                                       label="Style weight (x the backbone's default)",
                                       elem_id="style-factor")
                    with gr.Row():
                        go = gr.Button("Re-paint", variant="primary", elem_id="repaint")
                        stop = gr.Button("Cancel", elem_id="cancel")
                with gr.Column():
                    r_status = gr.Markdown("Pick a photo and a style, then press Re-paint.",
                                           elem_id="repaint-status")
                    preview = gr.Image(label="Preview (updates while it works)",
                                       interactive=False, elem_id="preview")
                    result = gr.Image(label="Result", interactive=False, format="png",
                                      elem_id="result")
                    verdict = gr.Markdown(elem_id="verdict")
                    download = gr.DownloadButton("Download full-size PNG", visible=False,
                                                 elem_id="download")
            photo.upload(lambda f: UPLOADED, photo, photo_choice)
            style_file.upload(lambda f: UPLOADED, style_file, painting_choice)

            def run(pc, pf, sc, sf, sd, ev, bb, fa):
                job = RepaintRequest(pc, pf, sc, sf, int(sd), int(ev), bb, float(fa))
                for text, prev, res, judged, path in repaint(pipeline, job, workdir):
                    yield (text, gr.skip() if prev is None else prev, res,
                           judged, gr.DownloadButton(value=path, visible=True) if path
                           else gr.DownloadButton(visible=False))

            job = go.click(run, [photo_choice, photo, painting_choice, style_file, side,
                                 evaluations, backbone, factor],
                           [r_status, preview, result, verdict, download],
                           concurrency_limit=prm.concurrent_jobs, concurrency_id="repaint")
            stop.click(lambda: "Cancelled.", None, r_status, cancels=[job])
    page.queue(default_concurrency_limit=prm.concurrent_jobs)
    return page


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
        pipeline = Pipeline.load(params)
        page = build_page(pipeline, workdir)
        page.launch(server_name=params.host, server_port=params.port, share=False,
                    prevent_thread_lock=True, quiet=True, show_error=False, ssr_mode=False,
                    max_file_size=f"{params.max_upload_mb}mb", allowed_paths=[str(workdir)],
                    footer_links=[])
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
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
