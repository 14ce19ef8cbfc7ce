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

from artstyle import paths
from artstyle.config import (
    METHODS,
    BackboneParams,
    ParamsError,
    StylizeParams,
    TransferParams,
)
from artstyle.errors import InvalidInput, MissingInput
from artstyle.images import (
    SKLEARN_PREFIX,
    ImageRejected,
    check_mask_aspect,
    load_image_source,
    save_image,
    style_mask,
)
from artstyle.io import WriteFailed
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
    InvalidInput
        Unknown backbone spelling.
    """
    check_backbone(backbone, weights)
    from artstyle.nst.extractor import FeatureExtractor

    if backbone == "vgg19":
        return FeatureExtractor.vgg19(weights, content_layers=layers.content_layers,
                                      style_layers=layers.style_layers)
    return FeatureExtractor.from_model(paths.keras_model_file(backbone[4:]),
                                       content_layers=layers.content_layers or None,
                                       style_layers=layers.style_layers or None)


def check_backbone(backbone: str, weights: str | Path | None) -> None:
    """The checks of :func:`build_backbone` that need no TensorFlow: spelling and files.

    Raises
    ------
    MissingModel
        The VGG19 weights or the trained model are missing (the message names the stage),
        or the model named as our own CNN is not a neural member.
    InvalidInput
        Unknown backbone spelling.
    """
    if backbone == "vgg19":
        if weights is None or not Path(weights).is_file():
            raise MissingModel(f"VGG19 weights {weights} not found: run `dvc repro pretrained`")
    elif backbone.startswith("own:"):
        name = backbone[4:]
        model = paths.keras_model_file(name)
        if not model.is_file():
            from artstyle.members.base import A_KIND, folder_kind, trained_members
            from artstyle.members.neural import build_command

            kind = folder_kind(paths.model_dir(name)) or (
                "xgboost" if name.startswith("xgb_") else None)
            why = (f"{name} is {A_KIND[kind]} member, which has no feature maps: name a "
                   "neural one" if kind else f"{model} not found: run `{build_command(name)}`")
            raise MissingModel(f"own:{name}: our own CNN as backbone is a trained neural "
                               f"model; {why}; trained neural models: "
                               f"{', '.join(trained_members(('neural',))) or 'none'}")
    else:
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
                  params_file: str | Path | None = None, weights: str | None = None,
                  panel: str | None = None, overrides: dict | None = None,
                  blend_weights: list[float] | None = None, seed: int | None = None,
                  mask: str | None = None, method: str = "gatys",
                  strength: float | None = None) -> dict:
    """The ``artstyle stylize`` command: one photo and one or several paintings to one file.

    Settings (:func:`command_settings`): the schema's command defaults
    (:class:`artstyle.config.TransferParams`; layers and loss weights of
    :class:`artstyle.config.StylizeParams`), or the ``stylize`` group of ``params_file``
    when one is given (never read implicitly: the command behaves the same in any
    folder), then ``overrides`` (``None`` values ignored), validated as params are,
    before any image or model is loaded. Several paintings are blended with
    ``blend_weights`` (one per painting, normalised to sum 1; None = equal). ``seed``
    (None = ``base.seed`` of the params file, or the schema's 42) is written with the
    settings into the output's PNG text chunks (``artstyle:seed``). ``mask``: an image
    file whose white region takes the style, the rest keeping the photo
    (:func:`artstyle.nst.stylize`'s ``mask``), of the photo's aspect ratio within 2 %
    (:func:`artstyle.images.check_mask_aspect`).

    Every option, image and file is checked before TensorFlow is imported (it takes
    tens of seconds to start): settings, blend weights, the backbone's files, the
    images and the mask's shape. Only the memory estimate needs the model. ``method``: ``gatys`` (the
    optimisation, TensorFlow) or ``fast`` (:func:`artstyle.nst.feedforward.stylize_fast`:
    onnxruntime only, TensorFlow never imported). ``strength`` (fast only, [0, 1]; None =
    the settings'): the painting's share of the style vector.

    Returns
    -------
    dict
        :meth:`artstyle.nst.StylizeResult.summary` of the run (``seed``,
        ``peak_memory_mb`` included); for ``fast``: ``method``, ``seconds``, ``width``,
        ``height``, ``strength``.

    Raises
    ------
    ParamsError
        A bad option (one line naming it).
    """
    from artstyle.config import BaseParams, load_params

    params = load_params(params_file) if params_file is not None else None
    settings = command_settings(params.stylize if params is not None else None)
    seed = seed if seed is not None else (params.base.seed if params is not None
                                          else BaseParams().seed)
    styles = [style] if isinstance(style, str) else list(style)
    if method not in METHODS:
        raise ParamsError(f"--method: one of {', '.join(METHODS)}, not {method!r}")
    overrides = {**(overrides or {}), "strength": strength}
    transfer, layers = with_overrides(settings, backbone, overrides)
    check_blend_weights(blend_weights, len(styles))
    content_img = load_role_image("content", content)
    style_imgs = [load_role_image("style", s) for s in styles]
    mask_img = None
    if mask is not None:
        mask_img = style_mask(load_role_image("mask", mask))   # InvalidInput: all black
        check_mask_aspect(mask_img.shape, content_img.shape[:2])
    if method == "fast":
        return _stylize_fast_files(content_img, style_imgs, output, transfer, transfer.strength,
                                   blend_weights=blend_weights, mask=mask_img, panel=panel,
                                   content=content, styles=styles)
    check_backbone(backbone, weights or paths.VGG19_WEIGHTS)
    from artstyle.nst.optimise import (  # TensorFlow: only once the inputs are good
        repeatable_threads,
        stylize,
    )
    from artstyle.nst.outputs import save_panel

    repeatable_threads()  # the same seed gives the same bytes (before TensorFlow's first op)

    extractor = build_backbone(backbone, weights=weights or paths.VGG19_WEIGHTS, layers=layers)
    result = stylize(content_img, style_imgs[0] if len(style_imgs) == 1 else style_imgs,
                     extractor=extractor, settings=transfer, weights=layers, seed=seed,
                     blend_weights=blend_weights, mask=mask_img, progress=True,
                     on_divergence="raise")
    save_image(result.image, output,
               metadata=output_metadata(result, content=content, styles=styles, backbone=backbone))
    if panel:
        try:
            save_panel(content_img, style_imgs[0], result.image, panel,
                       titles=("content", "style" if len(styles) == 1 else
                               f"style 1 of {len(styles)} (blended)", "result"))
        except WriteFailed as err:   # say that the result itself is complete
            raise err.also_kept(f"the result {output} was written completely and is "
                                "kept") from err
    return {"method": "gatys", **result.summary()}


def command_settings(stage: StylizeParams | None = None) -> StylizeParams:
    """The settings ``artstyle stylize`` starts from.

    Without ``stage``: :class:`artstyle.config.TransferParams`' defaults (the command's
    and the page's: 512 px, 150 evaluations, ``compute_dtype: auto``) with the layers and
    loss weights of :class:`artstyle.config.StylizeParams`. With it (a params file's
    ``stylize`` group, given explicitly): that group as it is.
    """
    if stage is not None:
        return stage
    return StylizeParams.model_validate(TransferParams().model_dump())


def _stylize_fast_files(content_img, style_imgs, output, transfer: TransferParams,
                        strength: float, *, blend_weights, mask, panel, content, styles) -> dict:
    """The ``fast`` branch of :func:`stylize_files` (no TensorFlow import)."""
    import json
    import time

    from artstyle.nst.feedforward import load_engine, stylize_fast

    start = time.perf_counter()
    engine = load_engine()
    loaded = time.perf_counter()
    image = stylize_fast(content_img, style_imgs, weights=blend_weights, strength=strength,
                         preserve_colors=transfer.preserve_colors, mask=mask,
                         max_side=transfer.max_side, engine=engine)
    seconds = time.perf_counter() - loaded
    settings = {"method": "fast", "strength": strength, "preserve_colors": transfer.preserve_colors,
                "blend_weights": blend_weights, "mask": mask is not None,
                "max_side": transfer.max_side}
    save_image(image, output, metadata={
        "Software": "artstyle", "artstyle:content": content,
        "artstyle:styles": json.dumps(styles), "artstyle:method": "fast",
        "artstyle:settings": json.dumps(settings)})
    if panel:
        from artstyle.nst.outputs import save_panel

        try:
            save_panel(content_img, style_imgs[0], image, panel,
                       titles=("content", "style" if len(styles) == 1 else
                               f"style 1 of {len(styles)} (blended)", "result"))
        except WriteFailed as err:   # say that the result itself is complete
            raise err.also_kept(f"the result {output} was written completely and is "
                                "kept") from err
    return {**settings, "seconds": round(seconds, 3), "load_seconds": round(loaded - start, 3),
            "height": int(image.shape[0]), "width": int(image.shape[1])}


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


def stage_engines(s: StylizeParams) -> list[tuple[str, str]]:
    """``(engine, backbone)`` of each engine the stage runs, in order: ``("vgg19",
    "vgg19")``, ``("own:<model>", "own:<model>")`` for Gatys (``stylize.backbones``), then
    ``("fast", "")`` (``stylize.methods``)."""
    out = []
    for method in s.methods:
        if method == "gatys":
            out += [(b, b) for b in (f"own:{s.own_model}" if b == "own" else b
                                     for b in s.backbones)]
        else:
            out.append(("fast", ""))
    return out


def run_stylize_stage(params):
    """The DVC stage ``stylize``: every content x style with each engine, judged alike.

    Engines (:func:`stage_engines`): Gatys with each backbone and the feed-forward
    network (:func:`artstyle.nst.feedforward.stylize_fast`). Every output is judged the
    same way: the judge's style hit, SSIM to the photo, and the VGG19 Gram style loss on
    the ``stylize.vgg19`` layers (:func:`artstyle.nst.losses.loss_terms`, float32 always).
    Writes ``reports/stylized/<engine>/<content>__<style>{.png,_panel.png[,_loss.png]}``
    and ``reports/stylize/{metrics.json,results.csv,summary.md}`` (each folder
    atomically). Seconds and the compute dtype used go to ``metrics.json`` only.

    Returns
    -------
    pandas.DataFrame
        One row per output: engine, method, backbone, variant, content, style, style
        movement, predicted movement, style hit, the judge's probability of each style
        movement, SSIM, ``vgg19_style_loss`` (the common referee), the engine's own loss
        terms and evaluations (Gatys), size, seed. The extras (:func:`stage_variants`):
        ``preserve_colors`` is a hit when the judge names the painting's movement;
        ``blend`` when it names either painting's.
    """
    import time

    import pandas as pd

    from artstyle.data.dataset import dataset_notice, load_manifest
    from artstyle.io import atomic_dir, write_csv, write_json
    from artstyle.members.base import check_same_classes
    from artstyle.nst.feedforward import load_engine, stylize_fast
    from artstyle.nst.losses import loss_terms
    from artstyle.nst.optimise import stylize
    from artstyle.nst.outputs import plot_losses, save_panel, ssim_to_content

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
    referee = build_backbone("vgg19", weights=paths.VGG19_WEIGHTS, layers=s.vgg19)
    rows, seconds, dtypes = [], {}, {}
    with atomic_dir(paths.STYLIZED) as out_dir:
        for e_index, (engine, backbone) in enumerate(stage_engines(s)):
            if engine == "fast":
                net = load_engine()
            else:
                layers = backbone_params("own" if backbone.startswith("own:") else backbone, s)
                extractor = (referee if backbone == "vgg19" else
                             build_backbone(backbone, weights=paths.VGG19_WEIGHTS, layers=layers))
            folder = out_dir / _slug(engine)
            folder.mkdir()
            plain_results = {}      # (content, style) -> this engine's plain StylizeResult
            first = e_index == 0 or engine == "fast"
            for c_key, c_src in contents.items():
                content = load_image_source(c_src)
                for variant in stage_variants(styles, s, first_backbone=first):
                    style_imgs = [load_image_source(st.source) for st in variant.styles]
                    settings = (s.model_copy(update={"preserve_colors": True})
                                if variant.name == "preserve_colors" else s)
                    blend = list(variant.weights) or None
                    logger.info("stylize %s x %s with %s", c_key, variant.key, engine)
                    stem = folder / f"{c_key}__{variant.key}"
                    own = {}
                    if engine == "fast":
                        t0 = time.perf_counter()
                        image = stylize_fast(content, style_imgs, weights=blend,
                                             strength=s.strength,
                                             preserve_colors=settings.preserve_colors,
                                             max_side=s.max_side, engine=net)
                        took = time.perf_counter() - t0
                        save_image(image, stem.with_suffix(".png"), metadata={
                            "Software": "artstyle", "artstyle:method": "fast",
                            "artstyle:content": c_src, "artstyle:strength": str(s.strength)})
                    else:
                        plain = plain_results.get((c_key, variant.styles[0].key))
                        if variant.name == "preserve_colors" and plain is not None:
                            # The same optimisation as the plain output: colours are kept after it.
                            r = plain.with_photo_colours(content)
                        else:
                            r = stylize(content, style_imgs[0] if len(style_imgs) == 1
                                        else style_imgs, extractor=extractor, settings=settings,
                                        weights=layers, seed=params.base.seed,
                                        on_divergence="raise", blend_weights=blend)
                        if variant.name == "plain":
                            plain_results[(c_key, variant.styles[0].key)] = r
                        image, took = r.image, r.seconds
                        dtypes[engine] = r.extra["compute_dtype"]
                        save_image(image, stem.with_suffix(".png"), metadata=output_metadata(
                            r, content=c_src, styles=[st.source for st in variant.styles],
                            backbone=backbone))
                        plot_losses(r.history, f"{stem}_loss.png")
                        best = r.best_record  # the loss terms of the image that was saved
                        own = {"content_loss": best.get("content"), "style_loss": best.get("style"),
                               "tv_loss": best.get("tv"), "total_loss": best.get("total"),
                               "evaluations": r.evaluations, "seed": int(r.extra["seed"])}
                    save_panel(content, style_imgs[0], image, f"{stem}_panel.png",
                               titles=("content", "style" if len(style_imgs) == 1
                                       else f"style 1 of {len(style_imgs)} (blended)",
                                       variant.name if variant.name != "plain" else engine))
                    (proba,) = judge.proba([image])
                    predicted = classes[int(np.argmax(proba))]
                    movements = [st.movement for st in variant.styles]
                    referee_terms = loss_terms(referee, image, content, style_imgs, s.vgg19,
                                               blend_weights=blend, compute_dtype="float32")
                    image_name = str(stem.with_suffix(".png").relative_to(out_dir))
                    seconds[image_name] = round(took, 3)
                    rows.append({
                        "engine": engine, "method": "fast" if engine == "fast" else "gatys",
                        "backbone": backbone, "variant": variant.name, "content": c_key,
                        "style": variant.key, "style_movement": "+".join(movements),
                        "predicted_movement": predicted,
                        "style_hit": int(predicted in movements),
                        "style_probability": " / ".join(
                            f"{float(proba[classes.index(m)]):.3f}" if m in classes else "nan"
                            for m in movements),
                        "ssim": ssim_to_content(image, content),
                        "vgg19_style_loss": referee_terms["style"],
                        **own,
                        "width": int(image.shape[1]), "height": int(image.shape[0]),
                        "image": image_name,
                    })
    table = pd.DataFrame(rows)
    plain = table[table["variant"] == "plain"]
    took = pd.Series([seconds[i] for i in table["image"]], index=table.index)
    per_engine = {
        eng: {"style_hit_rate": float(df["style_hit"].mean()), "ssim": float(df["ssim"].mean()),
              "vgg19_style_loss": float(df["vgg19_style_loss"].mean()),
              "outputs": len(df), "seconds": float(took[df.index].mean()),
              **({"compute_dtype": dtypes[eng],
                  "seconds_per_evaluation": float((took[df.index] / df["evaluations"]).mean()),
                  **{k: float(df[k].mean()) for k in ("content_loss", "style_loss", "tv_loss")}}
                 if eng in dtypes else {})}
        for eng, df in plain.groupby("engine", sort=False)}
    variants = {
        f"{eng}/{name}": {"style_hit_rate": float(df["style_hit"].mean()),
                          "ssim": float(df["ssim"].mean()), "outputs": len(df)}
        for (eng, name), df in table[table["variant"] != "plain"].groupby(
            ["engine", "variant"], sort=False)}
    notice = dataset_notice(paths.PREPARED)
    with atomic_dir(paths.STYLIZE_REPORT) as rep:
        write_json(rep / "metrics.json", {"judge": judge.name, "judge_kind": judge.kind,
                                          **per_engine,
                                          **({"variants": variants} if variants else {}),
                                          "seconds_per_output": seconds})
        write_csv(table, rep / "results.csv", index=False)
        (rep / "summary.md").write_text(stage_summary(table, per_engine, judge, s.judge, notice),
                                        encoding="utf-8")
    return table


def stage_summary(table, per_engine: dict, judge: TrainedClassifier, judge_param: str,
                  notice: str | None) -> str:
    """``reports/stylize/summary.md``: the engines side by side (no timings: those are in
    ``metrics.json``)."""
    import pandas as pd

    quality = ("style_hit_rate", "ssim", "vgg19_style_loss", "outputs")
    summary = pd.DataFrame({e: {k: m[k] for k in quality} for e, m in per_engine.items()}).T
    side = table.pivot_table(index=["content", "style", "variant"], columns="engine",
                             values=["style_hit", "ssim", "vgg19_style_loss"], sort=False)
    side.columns = [f"{engine} {what}" for what, engine in side.columns]
    side = side[sorted(side.columns, key=lambda c: (c.split(" ")[0] != "fast", c))].reset_index()
    intro = (
        f"Judge: `{judge.name}` ({judge.kind} member; params `stylize.judge: {judge_param}`). "
        "Style hit: the judge's predicted movement of the output equals "
        "the style painting's movement. SSIM: output vs content image. VGG19 style loss: "
        "the Gram-matrix style term on the `stylize.vgg19` layers and weights, in float32, "
        "for every engine (lower = closer to the painting's textures). Engines: `vgg19` and "
        "`own:*` are Gatys' optimisation with that backbone; `fast` is the feed-forward "
        "network (Ghiasi et al. 2017). The first table averages the plain outputs (one "
        "painting each); the second puts the engines side by side per output, the third "
        "lists every output (variant `preserve_colors`: the photo's colours kept; `blend`: "
        "paintings blended, a hit when the judge names either movement). Seconds: "
        "`metrics.json`.")
    lines = ["# Style transfer: Gatys and the feed-forward network side by side", "",
             *([f"> **{notice}**", ""] if notice else []), intro, "",
             summary.reset_index(names="engine").to_markdown(index=False, floatfmt=".3f"), "",
             side.to_markdown(index=False, floatfmt=".3f"), "",
             table.drop(columns=["image"]).to_markdown(index=False, floatfmt=".3f"), ""]
    return "\n".join(lines)
