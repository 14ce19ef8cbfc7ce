"""The ``patterns`` stage's outputs: what a trained member looks at, and the collection.

:func:`write_patterns` writes, into a temporary folder swapped in for
``reports/patterns/`` when complete:

=========================  ================================================================
``gradcam/<movement>.png`` Grad-CAM over the movement's most confidently right test
                           paintings (first row) and its misclassified ones (second row),
                           each explaining the *predicted* movement
``confused_pairs.png``     the most confused pairs of the test confusion matrix, with the
                           mistaken paintings
``map.png``                t-SNE of every painting's embedding, test paintings marked
``map_thumbnails.png``     the same map with thumbnails of a stratified subset
``palettes.png``           dominant colours per movement (k-means in CIELAB)
``prototypes.png``         per movement the training paintings closest to and farthest
                           from its mean embedding; test paintings and their nearest
                           training paintings
``colour_stats.csv``       per movement: mean saturation, lightness, lightness spread, chroma
``palettes.csv``           per movement and colour: hex, share, CIELAB
``embedding_map.csv``      per painting: id, split, movement, t-SNE x, y (the map's points)
``confused_pairs.csv``     movement pairs and their mistakes
``metrics.json``           model, layer, test accuracy, colour statistics per movement
``index.html``             the page of all of the above
=========================  ================================================================
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from artstyle import paths
from artstyle.config import PatternsParams
from artstyle.errors import ArtstyleError
from artstyle.io import atomic_dir, read_csv, write_csv, write_json
from artstyle.patterns import collection, gradcam, palettes, plots
from artstyle.patterns.page import Section, write_page

logger = logging.getLogger(__name__)


class PatternsError(ArtstyleError, ValueError):
    """No model to explain, or a model that does not fit the prepared data."""


#: Member kinds the patterns page can explain: a Keras network (Grad-CAM, its penultimate
#: embedding) or a style head (its gradient x activation map, its standardised descriptors).
PATTERN_KINDS = ("neural", "style")


def slug(text: str) -> str:
    """A file-name-safe form of a movement name (``Abstract Expressionism`` ->
    ``abstract-expressionism``)."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "movement"


@dataclass(frozen=True)
class Collection:
    """Every prepared painting, in split order train, validation, test.

    Attributes
    ----------
    images : ndarray of shape (n, S, S, 3), uint8
    labels : ndarray of shape (n,), int
    split : ndarray of shape (n,), str
    ids : ndarray of shape (n,), str
    boxes : list of n (top, left, bottom, right)
        The painted area of each square (letterbox padding left out).
    classes : list of str
    """

    images: np.ndarray
    labels: np.ndarray
    split: np.ndarray
    ids: np.ndarray
    boxes: list
    classes: list


def load_collection(prepared_dir: str | Path) -> Collection:
    """Read every split of a prepared dataset (:func:`artstyle.data.dataset.load_split`)."""
    from artstyle.data.dataset import load_manifest, load_split

    manifest, classes = load_manifest(prepared_dir)
    sizes = dict(zip(manifest["content_hash"], zip(manifest["width"], manifest["height"])))
    parts = [(s, *load_split(prepared_dir, s)) for s in paths.SPLITS]
    images = np.concatenate([d.images for _, d, _ in parts])
    side = images.shape[1]
    ids = np.concatenate([d.ids for _, d, _ in parts])
    boxes = [palettes.painted_box(*sizes.get(i, (side, side)), side) for i in ids]
    return Collection(images, np.concatenate([d.labels for _, d, _ in parts]),
                      np.concatenate([[s] * len(d) for s, d, _ in parts]).astype(str),
                      ids, boxes, classes)


def embed(gm: gradcam.GradCamModel, model, x: np.ndarray) -> np.ndarray:
    """Embeddings ``(n, d)`` of images ``x`` (float, input size): the input of the final
    ``Dense`` layer, as :func:`artstyle.embeddings.embedding_model` defines them."""
    if gm.kernel is not None:   # the Grad-CAM model already ends there
        return gradcam.head_outputs(gm, x)
    from artstyle.embeddings import extract_embeddings

    return extract_embeddings(model, x, progress=False)


class _Clock:
    """Logs the seconds each part of the stage took."""

    def __init__(self) -> None:
        self.t = time.perf_counter()

    def lap(self, what: str) -> None:
        now = time.perf_counter()
        logger.info("%s: %.1f s", what, now - self.t)
        self.t = now


def _queries(test: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray, n: int,
             seed: int) -> np.ndarray:
    """Up to ``n`` test paintings to show with neighbours: mistakes first, then a
    stratified pick of the rest (indices into the collection)."""
    wrong = np.flatnonzero(y_true != y_pred)[:n]
    right = np.flatnonzero(y_true == y_pred)
    picked = right[collection.stratified_subset(y_true[right], n - wrong.size, seed)] \
        if n > wrong.size else np.zeros(0, int)
    return test[np.concatenate([wrong, picked]).astype(int)]


def _caption(classes: list[str], true: int, pred: int, p: float) -> str:
    return f"true: {classes[true]}\npred: {classes[pred]} {p:.0%}"


def _neural_looks(classifier, x: np.ndarray, test: np.ndarray):
    """Grad-CAM maps and probabilities of the test paintings, embeddings of all (a network)."""
    model = classifier.keras_model
    gm = gradcam.gradcam_model(model)
    maps, proba, head = gradcam.grad_cam(gm, x[test])
    if gm.kernel is not None:   # the head is the embedding: one pass per painting
        emb = np.zeros((len(x), head.shape[1]), np.float32)
        emb[test] = head
        rest = np.setdiff1d(np.arange(len(x)), test)
        emb[rest] = embed(gm, model, x[rest])
    else:
        emb = embed(gm, model, x)
    method = ("Grad-CAM (Selvaraju et al., ICCV 2017) on the output of its last "
              "convolutional layer, after its ReLU: the feature maps weighted by the spatially "
              "averaged gradient of the predicted movement's logit")
    return maps, proba, emb, gm.layer, method, "the input of its final classification layer"


def _style_looks(classifier, squares: np.ndarray, test: np.ndarray, batch_size: int = 16):
    """The same for a style member: gradient x activation maps through its head on the
    whole painting, its probabilities as scored (patches averaged), and the standardised
    descriptors the head reads as the embedding."""
    from artstyle.data.dataset import resize_batch

    parts = classifier.parts
    describe, head = parts["descriptor"], parts["head"]
    proba = classifier.proba_squares(squares[test])
    x = resize_batch(squares, parts["input_size"])
    maps = np.concatenate([gradcam.style_head_grad_cam(
        describe, head, x[test[i:i + batch_size]],
        class_index=proba[i:i + batch_size].argmax(axis=1), n_classes=proba.shape[1])[0]
        for i in range(0, test.size, batch_size)])
    emb = np.concatenate([head[:-1].transform(describe(x[i:i + batch_size]))
                          for i in range(0, len(x), batch_size)]).astype(np.float32)
    method = ("gradient x activation (HiResCAM, Draelos & Carin 2020) of the predicted "
              "movement's score through the head and the per-channel statistics it reads, "
              "on the whole painting")
    return maps, proba, emb, describe.deepest, method, "the standardised style descriptors its head reads"


def write_patterns(out_dir: str | Path, classifier, prepared_dir: str | Path,
                   settings: PatternsParams | None = None, *, seed: int = 0,
                   notice: str = "", style_member=None, style_X: np.ndarray | None = None) -> dict:
    """Write every output of the ``patterns`` stage (see the module's table), atomically.

    Parameters
    ----------
    out_dir : path
        ``reports/patterns/``; replaced as a whole when complete.
    classifier : artstyle.members.base.TrainedClassifier
        A trained member of a kind in :data:`PATTERN_KINDS` (a Keras classifier with a
        convolutional layer, or a style head); its classes must equal the prepared
        dataset's.
    prepared_dir : path
        Output of ``prepare``.
    settings : PatternsParams, optional
        Default: the schema's defaults.
    seed : int
    notice : str
        The dataset notice, on every figure and on the page.
    style_member : artstyle.members.base.TrainedClassifier, optional
        A style member (the best validated one): ``layers.png`` shows which layers'
        statistics carry each movement in its head (:mod:`artstyle.patterns.layer_weights`).
    style_X : ndarray of shape (n, d), optional
        Its training descriptors: the shares are then the spreads of the partial scores
        over them, otherwise the weights' norms.

    Returns
    -------
    dict
        The metrics written to ``metrics.json``.

    Raises
    ------
    PatternsError
        The model's classes differ from the dataset's, or the test split is empty.
    artstyle.patterns.gradcam.NoFeatureMap
        The model has no convolutional layer.
    """
    from artstyle.data.dataset import resize_batch

    from artstyle.members.base import A_KIND, check_same_classes

    if classifier.keras_model is None and "descriptor" not in classifier.parts:
        raise PatternsError(f"{classifier.name} is {A_KIND[classifier.kind]} member: the patterns "
                            f"page explains {', '.join(PATTERN_KINDS)} members (set "
                            "patterns.model to one, or best)")
    name, classes = classifier.name, classifier.classes
    settings = settings or PatternsParams()
    clock = _Clock()
    data = load_collection(prepared_dir)
    check_same_classes(name, classes, str(prepared_dir), data.classes, "dvc repro patterns")
    test = np.flatnonzero(data.split == "test")
    train = np.flatnonzero(data.split == "train")
    if test.size == 0 or train.size == 0:
        raise PatternsError("the prepared data has no test or no training paintings")
    k, n_ex = len(classes), settings.n_examples

    if classifier.keras_model is not None:
        looks = _neural_looks(classifier, resize_batch(data.images, classifier.input_size), test)
    else:
        looks = _style_looks(classifier, data.images, test)
    maps, proba, emb, layer, method, embedding = looks
    heat = gradcam.upsample(maps, data.images.shape[1:3])
    y_true, y_pred = data.labels[test], proba.argmax(axis=1)
    conf = proba.max(axis=1)
    clock.lap(f"{name}: heat maps on {layer} {maps.shape[1:]} of {test.size} test "
              f"paintings, embeddings {emb.shape}")

    colours = plots.movement_colours(classes)
    figures: dict[str, list[str]] = {}
    with atomic_dir(out_dir) as tmp:
        # 1. Grad-CAM per movement
        (tmp / "gradcam").mkdir()
        figures["gradcam"] = []
        for c, movement in enumerate(classes):
            right = [j for j in np.argsort(-conf, kind="stable")
                     if y_true[j] == c and y_pred[j] == c][:n_ex]
            wrong = [j for j in np.argsort(-conf, kind="stable")
                     if y_true[j] == c and y_pred[j] != c][:n_ex]
            cells = {kind: [plots.Cell(gradcam.overlay(data.images[test[j]], heat[j]),
                                       _caption(classes, y_true[j], y_pred[j], conf[j]))
                            for j in rows] for kind, rows in (("right", right), ("wrong", wrong))}
            rel = f"gradcam/{slug(movement)}.png"
            plots.image_grid(tmp / rel, [
                ("most confidently right", cells["right"],
                 f"no {movement} test painting was recognised"),
                ("misclassified", cells["wrong"],
                 f"every {movement} test painting was recognised")],
                f"Where {name} looks: {movement} test paintings, Grad-CAM of the predicted "
                f"movement on {layer}", notice)
            figures["gradcam"].append(rel)

        clock.lap("Grad-CAM grids")
        # 2. Confused pairs
        pairs = collection.confused_pairs(y_true, y_pred, k, settings.n_confused_pairs)
        rows, pair_rows = [], []
        for a, b, count in pairs:
            mistaken = [j for j in range(test.size)
                        if {y_true[j], y_pred[j]} == {a, b} and y_true[j] != y_pred[j]]
            rows.append((f"{classes[a]} / {classes[b]}: {count}", [
                plots.Cell(data.images[test[j]], _caption(classes, y_true[j], y_pred[j],
                                                          conf[j]), colours[classes[y_pred[j]]])
                for j in mistaken[:2 * n_ex]], ""))
            pair_rows.append({"movement_a": classes[a], "movement_b": classes[b],
                              "mistakes": count,
                              "a_taken_for_b": int(sum((y_true == a) & (y_pred == b))),
                              "b_taken_for_a": int(sum((y_true == b) & (y_pred == a)))})
        if not rows:
            rows = [("", [], "no test painting was misclassified")]
        plots.image_grid(tmp / "confused_pairs.png", rows,
                         f"What {name} confuses: the most confused movement pairs of the "
                         f"test split ({int((y_true != y_pred).sum())} mistakes in "
                         f"{test.size}), frames in the predicted movement's colour", notice,
                         min_cols=n_ex, caption_lines=3)
        write_csv(pd.DataFrame(pair_rows, columns=["movement_a", "movement_b", "mistakes",
                                                   "a_taken_for_b", "b_taken_for_a"]),
                  tmp / "confused_pairs.csv", index=False)

        clock.lap("confused pairs")
        # 3. The map
        perplexity = collection.adapted_perplexity(len(emb), settings.tsne_perplexity)
        xy = collection.embedding_map(emb, perplexity=settings.tsne_perplexity, seed=seed,
                                      max_iter=settings.tsne_iterations)
        write_csv(pd.DataFrame({"id": data.ids, "split": data.split,
                                "movement": [classes[i] for i in data.labels],
                                "x": xy[:, 0], "y": xy[:, 1]}),
                  tmp / "embedding_map.csv", index=False)
        plots.plot_embedding_map(
            tmp / "map.png", xy, data.labels, data.split == "test", classes,
            f"The collection as {name} sees it: t-SNE of {len(xy)} paintings' embeddings "
            f"(perplexity {perplexity:.1f})", notice)
        subset = collection.stratified_subset(data.labels, settings.n_thumbnails, seed)
        plots.plot_embedding_thumbnails(
            tmp / "map_thumbnails.png", xy, data.labels, data.images, subset, classes,
            f"The same map with {subset.size} paintings as thumbnails", notice)

        clock.lap("t-SNE map")
        # 4. Palettes
        pals, stats, pal_rows = {}, {}, []
        for c, movement in enumerate(classes):
            rows_c = np.flatnonzero(data.labels == c)
            if rows_c.size == 0:
                continue
            px = palettes.movement_pixels(data.images[rows_c], [data.boxes[i] for i in rows_c],
                                          settings.palette_pixels, seed + c)
            pals[movement] = palettes.dominant_colours(px, settings.n_palette_colours,
                                                       seed=seed)
            stats[movement] = {"n_paintings": int(rows_c.size),
                               **palettes.colour_statistics(px)}
            for rank, (hexa, share, lab) in enumerate(zip(pals[movement].hex(),
                                                          pals[movement].share,
                                                          pals[movement].lab), start=1):
                pal_rows.append({"movement": movement, "rank": rank, "hex": hexa,
                                 "share": round(float(share), 4), "L": round(float(lab[0]), 2),
                                 "a": round(float(lab[1]), 2), "b": round(float(lab[2]), 2)})
        stats_table = pd.DataFrame([{"movement": m, **s} for m, s in stats.items()])
        write_csv(stats_table, tmp / "colour_stats.csv", index=False, float_format="%.4f")
        write_csv(pd.DataFrame(pal_rows), tmp / "palettes.csv", index=False)
        plots.plot_palettes(tmp / "palettes.png", pals, stats,
                            f"Palettes: the {settings.n_palette_colours} dominant colours of "
                            "each movement (k-means in CIELAB, widths = share of pixels)",
                            notice)

        clock.lap("palettes")
        # 5. Prototypes, outliers, neighbours
        proto = collection.prototypes_and_outliers(emb[train], data.labels[train], k, n_ex)
        rows = []
        for c, (close, far, dist) in proto.items():
            cells = [plots.Cell(data.images[train[i]], f"prototype\nd={dist[i]:.2f}",
                                colours[classes[c]]) for i in close]
            cells += [None] + [plots.Cell(data.images[train[i]], f"outlier\nd={dist[i]:.2f}",
                                          colours[classes[c]]) for i in far]
            rows.append((classes[c], cells, ""))
        queries = _queries(test, y_true, y_pred, settings.n_queries, seed)
        if queries.size:
            nn, nd = collection.nearest_neighbours(emb[queries], emb[train],
                                                   settings.n_neighbours)
            for qi, q in enumerate(queries):
                j = np.flatnonzero(test == q)[0]
                cells = [plots.Cell(data.images[q], _caption(classes, y_true[j], y_pred[j],
                                                             conf[j]), "black"), None]
                cells += [plots.Cell(data.images[train[i]], f"{classes[data.labels[train[i]]]}"
                                     f"\nd={d:.2f}", colours[classes[data.labels[train[i]]]])
                          for i, d in zip(nn[qi], nd[qi])]
                rows.append((f"test painting {qi + 1}: nearest training paintings",
                             cells, ""))
        plots.image_grid(tmp / "prototypes.png", rows,
                         f"Prototypes and outliers: training paintings closest to and farthest "
                         f"from their movement's mean {name} embedding (d: distance); below, "
                         f"test paintings (mistakes first) and their nearest training "
                         f"paintings", notice, cell=1.15, caption_lines=3)

        clock.lap("prototypes and neighbours")
        metrics = {
            "model": name, "kind": classifier.kind, "layer": layer,
            "feature_map": f"{maps.shape[1]}x{maps.shape[2]}",
            "test_accuracy": float((y_true == y_pred).mean()),
            "test_mistakes": int((y_true != y_pred).sum()),
            "paintings": len(xy), "tsne_perplexity": perplexity,
            "colour": {m: {key: s[key] for key in ("mean_saturation", "lightness_spread",
                                                    "mean_lightness", "mean_chroma")}
                       for m, s in stats.items()},
        }
        if style_member is not None:
            from artstyle.patterns import layer_weights

            d = style_member.parts["descriptor"]
            groups = layer_weights.descriptor_groups(d.stat_layers, d.gram_layers, d.channels)
            shares = layer_weights.layer_shares(style_member.parts["head"], groups, style_X)
            layer_weights.plot_layer_weights(
                tmp / "layers.png", shares, style_member.classes, groups,
                f"Which layers' statistics carry each movement in {style_member.name} "
                f"({d.backbone}; shallow = fine texture, deep = composition)", notice)
            metrics["style_member"] = style_member.name
            figures["layers"] = ["layers.png"]
        else:                             # the declared output says why it is empty
            plots.note_figure(tmp / "layers.png", "No style member is trained (style_models "
                              "in params.yaml): no layer weights to show.", notice)
        write_json(tmp / "metrics.json", metrics)
        _write_index(tmp / "index.html", name, layer, maps.shape[1:], metrics, figures,
                     stats_table, read_csv(tmp / "confused_pairs.csv"), settings, notice,
                     method, embedding)
    return metrics


def _write_index(path: Path, name: str, layer: str, fmap_shape, metrics: dict,
                 figures: dict, stats_table: pd.DataFrame, pairs: pd.DataFrame,
                 settings: PatternsParams, notice: str, method: str, embedding: str) -> None:
    h, w = fmap_shape
    sections = [
        Section("Where the model looks (Grad-CAM)",
                f"Where {name} looks: {method}, on {layer} ({h} x {w} cells at the model's "
                "input size), kept where positive, scaled to a maximum "
                "of 1 and resized over the painting (red: most weight). First row of each "
                "grid: the movement's most confidently right test paintings; second row: "
                "its misclassified ones.", figures["gradcam"]),
        Section("What gets confused",
                f"The most confused pairs of movements in the test confusion matrix (mistakes "
                f"both ways; test accuracy {metrics['test_accuracy']:.1%}, "
                f"{metrics['test_mistakes']} mistakes), with the mistaken paintings.",
                ["confused_pairs.png"], pairs if len(pairs) else None),
        Section("A map of the collection",
                f"t-SNE (scikit-learn, perplexity {metrics['tsne_perplexity']:.1f}) of the "
                f"{metrics['paintings']} paintings' embeddings: {embedding} ({name}). "
                "Paintings the model finds alike lie close; triangles "
                "are test paintings. Distances between far-apart groups mean little in "
                "t-SNE. Coordinates: embedding_map.csv.",
                ["map.png", "map_thumbnails.png"]),
        Section("Palettes",
                f"The {settings.n_palette_colours} dominant colours of each movement: k-means "
                f"in CIELAB over {settings.palette_pixels} pixels sampled from its paintings "
                "(letterbox padding left out), each colour weighted by its pixels. Mean "
                "saturation is HSV's S (0-1); lightness spread is the standard deviation of "
                "CIELAB L* (0-100). Colours: palettes.csv; statistics: colour_stats.csv.",
                ["palettes.png"], stats_table),
        Section("Prototypes and outliers",
                f"Per movement, the training paintings closest to (prototypes) and farthest "
                f"from (outliers) the movement's mean {name} embedding; below, test paintings "
                "with their nearest training paintings in that embedding.",
                ["prototypes.png"]),
    ]
    if "layers" in figures:
        sections.append(Section(
            f"Which layers carry each movement ({metrics['style_member']})",
            f"The style member {metrics['style_member']} classifies a painting from the "
            "per-channel mean and standard deviation of a frozen ImageNet network's layers. "
            "Each row is one movement; each column one layer's statistics, shallow (fine "
            "texture, brush strokes) to deep (shapes, composition); the colour is that "
            "group's share of the movement's score across the training paintings "
            "(rows sum to one).", figures["layers"]))
    write_page(path, f"Patterns: {name}", notice,
               f"What {name} (the model named by params patterns.model: "
               f"{settings.model}) has learnt, and what the collection looks like.", sections)
