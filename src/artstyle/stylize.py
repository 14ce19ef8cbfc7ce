"""Style transfer as a pipeline step: choosing styles, running backbones, judging outputs.

The optimisation itself lives in :mod:`artstyle.style_transfer`; this module wires it to
the pipeline (params, trained models, prepared data) and to the command line. Judging
follows the study's "stage 2": the judge classifier predicts the art movement of each
stylised output; the **style-hit rate** is the share of outputs whose predicted movement
equals the style painting's movement, and **content fidelity** is the SSIM between output
and content image (Wang et al. 2004, via scikit-image).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from artstyle import paths
from artstyle.images import load_rgb_array, resize_to_square

logger = logging.getLogger(__name__)

SKLEARN_PREFIX = "sklearn:"


def load_image_source(source: str, *, max_pixels: int = 60_000_000) -> np.ndarray:
    """Load a content or style image given as a path or ``sklearn:<name>``.

    Parameters
    ----------
    source : str
        A file path (read by the safe loader :func:`artstyle.images.load_rgb_array`:
        EXIF orientation, alpha on white, greyscale/CMYK to RGB), or
        ``sklearn:china.jpg`` / ``sklearn:flower.jpg`` (images bundled with scikit-learn).

    Returns
    -------
    ndarray of shape (H, W, 3), uint8

    Raises
    ------
    FileNotFoundError
        The path does not exist.
    artstyle.images.ImageRejected
        The file is not a usable image.
    """
    if source.startswith(SKLEARN_PREFIX):
        from sklearn.datasets import load_sample_image

        return np.ascontiguousarray(load_sample_image(source[len(SKLEARN_PREFIX):]))
    if not Path(source).exists():
        raise FileNotFoundError(f"image {source} not found")
    return load_rgb_array(source, max_pixels=max_pixels)


def build_backbone(backbone: str, *, weights: str | Path | None, content_layers: list[str],
                   style_layers: list[str]):
    """A feature extractor for ``vgg19`` (ImageNet weights file) or ``own:<model>``.

    Raises
    ------
    FileNotFoundError
        The weights or the trained model are missing (run ``dvc repro`` first).
    ValueError
        Unknown backbone spelling.
    """
    from artstyle.style_transfer import FeatureExtractor

    if backbone == "vgg19":
        if weights is None or not Path(weights).exists():
            raise FileNotFoundError(f"VGG19 weights {weights} not found: run `dvc repro pretrained`")
        return FeatureExtractor.vgg19(weights, content_layers=content_layers,
                                      style_layers=style_layers)
    if backbone.startswith("own:"):
        model = paths.keras_model_file(backbone[4:])
        if not model.exists():
            raise FileNotFoundError(f"{model} not found: run `dvc repro train@{backbone[4:]}`")
        return FeatureExtractor.from_model(model, content_layers=content_layers or None,
                                           style_layers=style_layers or None)
    raise ValueError(f"backbone must be 'vgg19' or 'own:<model>', not {backbone!r}")


def backbone_settings(backbone: str, settings):
    """The ``stylize.vgg19`` or ``stylize.own`` params group of a backbone name."""
    return settings.vgg19 if backbone == "vgg19" else settings.own


def optimiser_kwargs(settings, backbone: str, overrides: dict | None = None) -> dict:
    """Keyword arguments of :func:`artstyle.style_transfer.stylize` from params (+ overrides)."""
    b = backbone_settings(backbone, settings)
    kw = dict(content_weight=b.content_weight, style_weight=b.style_weight,
              tv_weight=b.tv_weight, optimizer=settings.optimizer,
              iterations=settings.iterations, max_side=settings.max_side,
              init=settings.init, schedule=tuple(settings.schedule) or None,
              fourier_exponent=settings.fourier_exponent,
              learning_rate=settings.learning_rate)
    kw.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return kw


def stylize_files(content: str, style: str, output: str, *, backbone: str = "vgg19",
                  params_file: str | Path = "params.yaml", weights: str | None = None,
                  panel: str | None = None, overrides: dict | None = None) -> dict:
    """The ``artstyle stylize`` command: one content/style pair to one output file.

    Settings come from the ``stylize`` group of ``params_file`` (validated) and
    ``overrides`` (``None`` values ignored).

    Returns
    -------
    dict
        :meth:`artstyle.style_transfer.StylizeResult.summary` of the run.
    """
    from artstyle.config import load_params
    from artstyle.style_transfer import save_image, save_panel, stylize

    settings = load_params(params_file).stylize
    content_img, style_img = load_image_source(content), load_image_source(style)
    b = backbone_settings(backbone, settings)
    extractor = build_backbone(backbone, weights=weights or paths.VGG19_WEIGHTS,
                               content_layers=b.content_layers, style_layers=b.style_layers)
    result = stylize(content_img, style_img, extractor=extractor, progress=True,
                     on_divergence="raise", **optimiser_kwargs(settings, backbone, overrides))
    save_image(result.image, output)
    if panel:
        save_panel(content_img, style_img, result.image, panel)
    return result.summary()


@dataclass(frozen=True)
class StyleChoice:
    """One style image of the ``stylize`` stage and the art movement it stands for."""

    key: str          # short file-name-safe id
    source: str       # path or sklearn:<name>
    movement: str     # known class (per_class) or the judge's prediction


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "image"


def per_class_styles(judge, judge_input_size: int) -> list[StyleChoice]:
    """For each class, the test-split painting the judge is most confident about.

    Confidence is the judge's probability of the painting's true class; the original
    full-size file under ``data/raw/`` is used as the style image.
    """
    from artstyle.data.catalogue import load_manifest
    from artstyle.data.dataset import load_split
    from artstyle.predict import predict_proba

    manifest, classes = load_manifest(paths.PREPARED)
    test, _ = load_split(paths.PREPARED, "test")
    proba = predict_proba(judge, test.images, judge_input_size)
    rows = manifest[manifest["split"] == "test"].reset_index(drop=True)
    choices = []
    for c, cls in enumerate(classes):
        idx = np.flatnonzero(test.labels == c)
        if len(idx) == 0:
            logger.warning("no test painting of %s: no per-class style for it", cls)
            continue
        best = idx[np.argmax(proba[idx, c])]
        choices.append(StyleChoice(_slug(cls), str(paths.RAW / rows.loc[best, "source_path"]), cls))
    return choices


def judge_images(judge, judge_input_size: int, images: list[np.ndarray], image_size: int,
                 classes: list[str]) -> list[str]:
    """The judge's predicted movement of each image, prepared as training images were."""
    from PIL import Image

    from artstyle.predict import predict_proba

    batch = np.stack([np.asarray(resize_to_square(Image.fromarray(im), image_size))
                      for im in images])
    return [classes[i] for i in predict_proba(judge, batch, judge_input_size).argmax(axis=1)]


def run_stylize_stage(params) -> pd.DataFrame:
    """The DVC stage ``stylize``: every content x style x backbone, judged.

    Writes ``reports/stylized/<backbone>/<content>__<style>{.png,_panel.png,_loss.png}``
    and ``reports/stylize/{metrics.json,results.csv,summary.md}`` (each folder
    atomically).

    Returns
    -------
    pandas.DataFrame
        One row per output: backbone, content, style, style movement, predicted
        movement, style hit, SSIM, losses, iterations, seconds, size.
    """
    from artstyle.data.catalogue import dataset_notice, load_manifest
    from artstyle.io import atomic_dir, write_json
    from artstyle.models.zoo import load_model
    from artstyle.style_transfer import (plot_losses, save_image, save_panel, ssim_to_content,
                                         stylize)

    s = params.stylize
    _, classes = load_manifest(paths.PREPARED)
    judge_spec = params.model(s.judge)
    judge = load_model(paths.keras_model_file(s.judge))
    if s.styles == "per_class":
        styles = per_class_styles(judge, judge_spec.input_size)
    else:
        imgs = [load_image_source(src) for src in s.styles]
        predicted = judge_images(judge, judge_spec.input_size, imgs, params.base.image_size,
                                 classes)
        styles = [StyleChoice(_slug(Path(src).stem), src, mov)
                  for src, mov in zip(s.styles, predicted)]
    contents = {_slug(Path(c.removeprefix(SKLEARN_PREFIX)).stem): c for c in s.contents}
    rows = []
    with atomic_dir(paths.STYLIZED) as out_dir:
        for backbone in s.backbones:
            b = backbone_settings(backbone, s)
            kwargs = optimiser_kwargs(s, backbone)
            if backbone == "own":
                backbone = f"own:{s.own_model}"
            extractor = build_backbone(backbone, weights=paths.VGG19_WEIGHTS,
                                       content_layers=b.content_layers,
                                       style_layers=b.style_layers)
            folder = out_dir / _slug(backbone)
            folder.mkdir()
            for c_key, c_src in contents.items():
                content = load_image_source(c_src)
                for style in styles:
                    style_img = load_image_source(style.source)
                    logger.info("stylize %s x %s with %s", c_key, style.key, backbone)
                    r = stylize(content, style_img, extractor=extractor, seed=params.base.seed,
                                on_divergence="raise", **kwargs)
                    stem = folder / f"{c_key}__{style.key}"
                    save_image(r.image, stem.with_suffix(".png"))
                    save_panel(content, style_img, r.image, f"{stem}_panel.png")
                    plot_losses(r.history, f"{stem}_loss.png")
                    (predicted,) = judge_images(judge, judge_spec.input_size, [r.image],
                                                params.base.image_size, classes)
                    best = r.best_record  # the loss terms of the image that was saved
                    rows.append({
                        "backbone": backbone, "content": c_key, "style": style.key,
                        "style_movement": style.movement, "predicted_movement": predicted,
                        "style_hit": int(predicted == style.movement),
                        "ssim": ssim_to_content(r.image, content),
                        "content_loss": best.get("content"), "style_loss": best.get("style"),
                        "tv_loss": best.get("tv"), "total_loss": best.get("total"),
                        "iterations": r.iterations, "seconds": round(r.seconds, 2),
                        "seconds_per_iteration": round(r.seconds / max(r.iterations, 1), 4),
                        "width": int(r.image.shape[1]), "height": int(r.image.shape[0]),
                        "image": str(stem.with_suffix(".png").relative_to(out_dir)),
                    })
    table = pd.DataFrame(rows)
    per_backbone = {
        bb: {"style_hit_rate": float(df["style_hit"].mean()), "ssim": float(df["ssim"].mean()),
             "outputs": int(len(df)), "seconds": float(df["seconds"].mean()),
             "seconds_per_iteration": float(df["seconds_per_iteration"].mean()),
             "content_loss": float(df["content_loss"].mean()),
             "style_loss": float(df["style_loss"].mean()), "tv_loss": float(df["tv_loss"].mean())}
        for bb, df in table.groupby("backbone", sort=False)}
    notice = dataset_notice(paths.PREPARED)
    with atomic_dir(paths.STYLIZE_REPORT) as rep:
        write_json(rep / "metrics.json", {"judge": s.judge, **per_backbone})
        table.to_csv(rep / "results.csv", index=False)
        summary = pd.DataFrame(per_backbone).T.reset_index(names="backbone")
        lines = ["# Style transfer", ""] + ([f"> **{notice}**", ""] if notice else []) + [
            f"Judge: `{s.judge}`. Style hit: the judge's predicted movement of the output "
            "equals the style painting's movement. SSIM: output vs content image.", "",
            summary.to_markdown(index=False, floatfmt=".3f"), "",
            table.drop(columns=["image"]).to_markdown(index=False, floatfmt=".3f"), ""]
        (rep / "summary.md").write_text("\n".join(lines), encoding="utf-8")
    return table
