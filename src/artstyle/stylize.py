"""Style transfer as a pipeline step: choosing styles, running backbones, judging outputs.

The optimisation itself lives in :mod:`artstyle.nst`; this module wires it to
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
from artstyle.config import BackboneParams, ParamsError, StylizeParams, TransferParams
from artstyle.errors import InvalidInput, MissingInput
from artstyle.images import (
    SKLEARN_PREFIX,
    ImageRejected,
    load_image_source,
    save_image,
)
from artstyle.members.base import MissingModel, TrainedClassifier

logger = logging.getLogger(__name__)


def load_role_image(role: str, source: str) -> np.ndarray:
    """:func:`artstyle.images.load_image_source`, its errors naming the image's role.

    Raises
    ------
    FileNotFoundError, artstyle.images.ImageRejected
        As the loader, with ``role`` ("content", "style") in the message.
    """
    try:
        return load_image_source(source)
    except FileNotFoundError:
        raise MissingInput(f"{role} image {source} not found") from None
    except ImageRejected as err:
        raise ImageRejected(err.reason, f"the {role} image is not usable: {err.message}",
                            err.source) from None


def build_backbone(backbone: str, *, weights: str | Path | None, layers: BackboneParams):
    """A feature extractor for ``vgg19`` (ImageNet weights file) or ``own:<model>``.

    Parameters
    ----------
    backbone : str
        ``"vgg19"`` or ``"own:<name>"`` with ``<name>`` a neural model of the zoo.
    weights : path or None
        The VGG19 no-top weights (``vgg19`` only).
    layers : artstyle.config.BackboneParams
        Content and style layers (empty lists: the own CNN's defaults).

    Raises
    ------
    MissingModel
        The weights or the trained model are missing (the message names the stage).
    ValueError
        Unknown backbone spelling.
    """
    from artstyle.nst import FeatureExtractor

    if backbone == "vgg19":
        if weights is None or not Path(weights).exists():
            raise MissingModel(f"VGG19 weights {weights} not found: run `dvc repro pretrained`")
        return FeatureExtractor.vgg19(weights, content_layers=layers.content_layers,
                                      style_layers=layers.style_layers)
    if backbone.startswith("own:"):
        name = backbone[4:]
        model = paths.keras_model_file(name)
        if not model.exists():
            from artstyle.members.base import A_KIND, folder_kind, trained_members
            from artstyle.members.neural import build_command

            kind = folder_kind(paths.model_dir(name)) or (
                "xgboost" if name.startswith("xgb_") else None)
            why = (f"{name} is {A_KIND[kind]} member, which has no feature maps: name a "
                   "neural one"
                   if kind else f"{model} not found: run `{build_command(name)}`")
            raise MissingModel(f"own:{name}: our own CNN as backbone is a trained neural "
                               f"model; {why}; trained neural models: "
                               f"{', '.join(trained_members(('neural',))) or 'none'}")
        return FeatureExtractor.from_model(model, content_layers=layers.content_layers or None,
                                           style_layers=layers.style_layers or None)
    raise InvalidInput(f"backbone must be 'vgg19' or 'own:<model>', not {backbone!r}")


def backbone_params(backbone: str, settings: StylizeParams) -> BackboneParams:
    """The ``stylize.vgg19`` or ``stylize.own`` params group of a backbone name."""
    return settings.vgg19 if backbone == "vgg19" else settings.own


def with_overrides(settings: StylizeParams, backbone: str,
                   overrides: dict | None = None) -> tuple[TransferParams, BackboneParams]:
    """The transfer settings and loss weights of ``settings`` with ``overrides`` applied.

    Overrides (``None`` values ignored) go through the same schema as ``params.yaml``,
    so the command line accepts exactly what the params file accepts.

    Raises
    ------
    ParamsError
        An override is out of range; the message names the option.
    """
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    layers = backbone_params(backbone, settings)
    transfer_keys = set(TransferParams.model_fields)
    try:
        transfer = TransferParams.model_validate(
            {**settings.model_dump(include=transfer_keys),
             **{k: v for k, v in given.items() if k in transfer_keys}})
        layers = BackboneParams.model_validate(
            {**layers.model_dump(), **{k: v for k, v in given.items() if k not in transfer_keys}})
    except ValueError as err:
        errors = getattr(err, "errors", list)()
        what = "; ".join(f"--{'-'.join(str(e['loc'][0]).split('_'))}: {e['msg']}" for e in errors)
        raise ParamsError(what or str(err)) from None
    return transfer, layers


def check_blend_weights(blend_weights: list[float] | None, n_styles: int) -> None:
    """One finite weight >= 0 per style image, not all 0 (None: equal weights).

    Raises
    ------
    ParamsError
        One line naming ``--blend-weights``.
    """
    if blend_weights is None:
        return
    if len(blend_weights) != n_styles:
        raise ParamsError(f"--blend-weights: {len(blend_weights)} weights for {n_styles} style "
                          "images; give one per style image")
    if not all(np.isfinite(w) and w >= 0 for w in blend_weights) or not sum(blend_weights) > 0:
        raise ParamsError("--blend-weights: weights must be finite, >= 0 and not all 0")


def output_metadata(result, *, content: str, styles: list[str], backbone: str) -> dict[str, str]:
    """PNG text chunks recording how an output was made (seed, settings, inputs)."""
    import json

    summary = result.summary()
    return {"Software": "artstyle", "artstyle:seed": str(summary.get("seed")),
            "artstyle:content": content, "artstyle:styles": json.dumps(styles),
            "artstyle:backbone": backbone,
            "artstyle:settings": json.dumps({k: summary[k] for k in (
                "optimizer", "evaluations", "preserve_colors", "blend_weights", "mask",
                "compute_dtype", "seed")
                if k in summary})}


def stylize_files(content: str, style: str | list[str], output: str, *, backbone: str = "vgg19",
                  params_file: str | Path = "params.yaml", weights: str | None = None,
                  panel: str | None = None, overrides: dict | None = None,
                  blend_weights: list[float] | None = None, seed: int | None = None,
                  mask: str | None = None) -> dict:
    """The ``artstyle stylize`` command: one photo and one or several paintings to one file.

    Settings come from the ``stylize`` group of ``params_file`` when it exists (else
    the schema's defaults) and ``overrides`` (``None`` values ignored), validated as
    params are, before any image or model is loaded. Several paintings are blended with
    ``blend_weights`` (one per painting, normalised to sum 1; None = equal). ``seed``
    (None = ``base.seed`` of the params file, or the schema's 42) is written with the
    settings into the output's PNG text chunks (``artstyle:seed``). ``mask``: an image
    file whose white region takes the style, the rest keeping the photo
    (:func:`artstyle.nst.stylize`'s ``mask``).

    Returns
    -------
    dict
        :meth:`artstyle.nst.StylizeResult.summary` of the run (``seed``,
        ``peak_memory_mb`` included).
    """
    from artstyle.config import BaseParams, load_params

    params = load_params(params_file) if Path(params_file).exists() else None
    settings = params.stylize if params is not None else StylizeParams()
    seed = seed if seed is not None else (params.base.seed if params is not None
                                          else BaseParams().seed)
    styles = [style] if isinstance(style, str) else list(style)
    transfer, layers = with_overrides(settings, backbone, overrides)
    check_blend_weights(blend_weights, len(styles))
    content_img = load_role_image("content", content)
    style_imgs = [load_role_image("style", s) for s in styles]
    mask_img = None
    if mask is not None:
        from artstyle.nst.inputs import style_mask

        mask_img = style_mask(load_role_image("mask", mask))   # ValueError: all black
    from artstyle.nst import (  # TensorFlow: only once the inputs are good
        save_panel,
        stylize,
    )

    extractor = build_backbone(backbone, weights=weights or paths.VGG19_WEIGHTS, layers=layers)
    result = stylize(content_img, style_imgs[0] if len(style_imgs) == 1 else style_imgs,
                     extractor=extractor, settings=transfer, weights=layers, seed=seed,
                     blend_weights=blend_weights, mask=mask_img, progress=True,
                     on_divergence="raise")
    save_image(result.image, output,
               metadata=output_metadata(result, content=content, styles=styles, backbone=backbone))
    if panel:
        save_panel(content_img, style_imgs[0], result.image, panel,
                   titles=("content", "style" if len(styles) == 1 else
                           f"style 1 of {len(styles)} (blended)", "result"))
    return result.summary()


@dataclass(frozen=True)
class StyleChoice:
    """One style image of the ``stylize`` stage and the art movement it stands for."""

    key: str          # short file-name-safe id
    source: str       # path or sklearn:<name>
    movement: str     # known class (per_class) or the judge's prediction


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "image"


#: Member kinds the ``stylize`` stage can judge with (DVC knows their files).
JUDGE_KINDS = ("neural", "style")


def load_judge(name: str, names: list[str] | None = None) -> TrainedClassifier:
    """The ``stylize`` stage's judge: a neural or style member, or ``best`` of them.

    Parameters
    ----------
    name : str
        A member name or ``best`` (:func:`artstyle.members.base.best_member`).
    names : list of str, optional
        For ``best``: the members of ``params.yaml`` to choose from.

    Raises
    ------
    MissingModel
        The member is not trained, or of a kind the stage cannot judge with (the
        command line and the web page judge with any kind).
    """
    from artstyle.members import neural, style
    from artstyle.members.base import A_KIND, best_member, folder_kind

    if name == "best":
        name = best_member(JUDGE_KINDS, names=names)
    kind = folder_kind(paths.model_dir(name))
    if kind == "neural":
        return neural.load(name)
    if kind == "style":
        return style.load(name)
    raise MissingModel(f"the judge {name} is {'not trained' if kind is None else A_KIND[kind]}"
                       f": the stylize stage judges with a trained neural or style member "
                       f"({', '.join(JUDGE_KINDS)}), or best of them")


def per_class_styles(judge: TrainedClassifier) -> list[StyleChoice]:
    """For each class, the test-split painting the judge is most confident about.

    Confidence is the judge's probability of the painting's true class; the original
    full-size file under ``data/raw/`` is used as the style image.
    """
    from artstyle.data.dataset import load_manifest, load_split

    manifest, classes = load_manifest(paths.PREPARED)
    test, _ = load_split(paths.PREPARED, "test")
    proba = judge.proba_squares(test.images)   # the prepared squares, as in training
    rows = manifest[manifest["split"] == "test"].reset_index(drop=True)
    choices = []
    for c, cls in enumerate(classes):
        idx = np.flatnonzero(test.labels == c)
        if len(idx) == 0:
            logger.warning("no test painting of %s: no per-class style for it", cls)
            continue
        best = idx[np.argmax(proba[idx, judge.classes.index(cls)])]
        choices.append(StyleChoice(_slug(cls), str(paths.RAW / rows.loc[best, "source_path"]), cls))
    return choices


@dataclass(frozen=True)
class Variant:
    """One output of the ``stylize`` stage for a content: its styles and options."""

    name: str                   # plain | preserve_colors | blend
    styles: tuple               # StyleChoice, one or several (blend)
    weights: tuple = ()         # blend weights (blend only)

    @property
    def key(self) -> str:
        keys = "+".join(st.key for st in self.styles)
        return keys if self.name == "plain" else f"{keys}__{self.name.replace('_', '-')}"


def stage_variants(styles: list[StyleChoice], s: StylizeParams, first_backbone: bool) -> list[Variant]:
    """The outputs per content: every style alone, and for the first backbone the extras of
    ``colour_kept_output`` (the first style, photo's colours) and ``blend`` (the first
    ``len(blend)`` styles blended)."""
    out = [Variant("plain", (st,)) for st in styles]
    if first_backbone and styles and s.colour_kept_output and not s.preserve_colors:
        out.append(Variant("preserve_colors", (styles[0],)))
    if first_backbone and s.blend and len(styles) >= len(s.blend):
        out.append(Variant("blend", tuple(styles[:len(s.blend)]), tuple(s.blend)))
    elif first_backbone and s.blend:
        logger.warning("blend needs %d styles; only %d: no blend output", len(s.blend), len(styles))
    return out


def run_stylize_stage(params) -> pd.DataFrame:
    """The DVC stage ``stylize``: every content x style x backbone, judged.

    Writes ``reports/stylized/<backbone>/<content>__<style>{.png,_panel.png,_loss.png}``
    and ``reports/stylize/{metrics.json,results.csv,summary.md}`` (each folder
    atomically).

    Returns
    -------
    pandas.DataFrame
        One row per output: backbone, variant, content, style, style movement, predicted
        movement, style hit, the judge's probability of each style movement, SSIM,
        losses, evaluations, seconds, size, seed. The extras (:func:`stage_variants`):
        ``preserve_colors`` is a hit when the judge names the painting's movement;
        ``blend`` when it names either painting's, and its ``style_probability`` lists
        the judge's probability of each blended movement (compare them with the plain
        outputs of each painting alone). ``metrics.json`` averages the plain outputs per
        backbone as before, and reports the extras under ``variants``.
    """
    from artstyle.data.dataset import dataset_notice, load_manifest
    from artstyle.io import atomic_dir, write_json
    from artstyle.members.base import check_same_classes
    from artstyle.nst import plot_losses, save_panel, ssim_to_content, stylize

    s = params.stylize
    _, classes = load_manifest(paths.PREPARED)
    judge = load_judge(s.judge, names=[*params.all_models(), *params.style_models])
    check_same_classes(judge.name, judge.classes, str(paths.PREPARED), classes,
                       "dvc repro stylize")
    if s.styles == "per_class":
        styles = per_class_styles(judge)
    else:
        imgs = [load_image_source(src) for src in s.styles]
        predicted = [judge.classes[i] for i in judge.proba(imgs).argmax(axis=1)]
        styles = [StyleChoice(_slug(Path(src).stem), src, mov)
                  for src, mov in zip(s.styles, predicted)]
    contents = {_slug(Path(c.removeprefix(SKLEARN_PREFIX)).stem): c for c in s.contents}
    rows = []
    with atomic_dir(paths.STYLIZED) as out_dir:
        for b_index, backbone in enumerate(s.backbones):
            layers = backbone_params(backbone, s)
            if backbone == "own":
                backbone = f"own:{s.own_model}"
            extractor = build_backbone(backbone, weights=paths.VGG19_WEIGHTS, layers=layers)
            folder = out_dir / _slug(backbone)
            folder.mkdir()
            for c_key, c_src in contents.items():
                content = load_image_source(c_src)
                for variant in stage_variants(styles, s, first_backbone=b_index == 0):
                    style_imgs = [load_image_source(st.source) for st in variant.styles]
                    settings = (s.model_copy(update={"preserve_colors": True})
                                if variant.name == "preserve_colors" else s)
                    logger.info("stylize %s x %s with %s", c_key, variant.key, backbone)
                    r = stylize(content, style_imgs[0] if len(style_imgs) == 1 else style_imgs,
                                extractor=extractor, settings=settings, weights=layers,
                                seed=params.base.seed, on_divergence="raise",
                                blend_weights=list(variant.weights) or None)
                    stem = folder / f"{c_key}__{variant.key}"
                    save_image(r.image, stem.with_suffix(".png"), metadata=output_metadata(
                        r, content=c_src, styles=[st.source for st in variant.styles],
                        backbone=backbone))
                    save_panel(content, style_imgs[0], r.image, f"{stem}_panel.png",
                               titles=("content", "style" if len(style_imgs) == 1
                                       else f"style 1 of {len(style_imgs)} (blended)",
                                       variant.name if variant.name != "plain" else "result"))
                    plot_losses(r.history, f"{stem}_loss.png")
                    (proba,) = judge.proba([r.image])
                    predicted = classes[int(np.argmax(proba))]
                    movements = [st.movement for st in variant.styles]
                    best = r.best_record  # the loss terms of the image that was saved
                    rows.append({
                        "backbone": backbone, "variant": variant.name, "content": c_key,
                        "style": variant.key, "style_movement": "+".join(movements),
                        "predicted_movement": predicted,
                        "style_hit": int(predicted in movements),
                        "style_probability": " / ".join(
                            f"{float(proba[classes.index(m)]):.3f}" if m in classes else "nan"
                            for m in movements),
                        "ssim": ssim_to_content(r.image, content),
                        "content_loss": best.get("content"), "style_loss": best.get("style"),
                        "tv_loss": best.get("tv"), "total_loss": best.get("total"),
                        "evaluations": r.evaluations, "seconds": round(r.seconds, 2),
                        "seconds_per_evaluation": round(r.seconds / max(r.evaluations, 1), 4),
                        "width": int(r.image.shape[1]), "height": int(r.image.shape[0]),
                        "seed": int(r.extra["seed"]),
                        "image": str(stem.with_suffix(".png").relative_to(out_dir)),
                    })
    table = pd.DataFrame(rows)
    plain = table[table["variant"] == "plain"]
    per_backbone = {
        bb: {"style_hit_rate": float(df["style_hit"].mean()), "ssim": float(df["ssim"].mean()),
             "outputs": len(df), "seconds": float(df["seconds"].mean()),
             "seconds_per_evaluation": float(df["seconds_per_evaluation"].mean()),
             "content_loss": float(df["content_loss"].mean()),
             "style_loss": float(df["style_loss"].mean()), "tv_loss": float(df["tv_loss"].mean())}
        for bb, df in plain.groupby("backbone", sort=False)}
    variants = {
        name: {"style_hit_rate": float(df["style_hit"].mean()), "ssim": float(df["ssim"].mean()),
               "outputs": len(df)}
        for name, df in table[table["variant"] != "plain"].groupby("variant", sort=False)}
    notice = dataset_notice(paths.PREPARED)
    with atomic_dir(paths.STYLIZE_REPORT) as rep:
        write_json(rep / "metrics.json", {"judge": judge.name, **per_backbone,
                                          **({"variants": variants} if variants else {})})
        table.to_csv(rep / "results.csv", index=False)
        summary = pd.DataFrame(per_backbone).T.reset_index(names="backbone")
        lines = ["# Style transfer", ""] + ([f"> **{notice}**", ""] if notice else []) + [
            f"Judge: `{judge.name}` ({judge.kind} member, params `stylize.judge: {s.judge}`). "
            "Style hit: the judge's predicted movement of the output equals the style "
            "painting's movement. SSIM: output vs content image. The "
            "table averages the plain outputs (one painting each); the extra outputs "
            "(variant `preserve_colors`: the photo's colours kept; `blend`: paintings "
            "blended, a hit when the judge names either movement; `style_probability`: the "
            "judge's probability of each painting's movement) are listed below.", "",
            summary.to_markdown(index=False, floatfmt=".3f"), "",
            table.drop(columns=["image"]).to_markdown(index=False, floatfmt=".3f"), ""]
        (rep / "summary.md").write_text("\n".join(lines), encoding="utf-8")
    return table
