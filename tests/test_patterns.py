"""The ``patterns`` stage's library and ``artstyle explain``: Grad-CAM, palettes, the map."""

from __future__ import annotations

import json

import keras
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from artstyle.cli import main
from artstyle.config import (
    ModelSpec,
    ParamsError,
    PatternsParams,
    load_params,
    parse_params,
)
from artstyle.patterns import collection, gradcam, palettes
from artstyle.members import neural
from artstyle.patterns.report import write_patterns

SIDE = 32
RED = np.array([220, 30, 30], np.uint8)


def _quadrant_images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Grey noise; class 1 also has a red 6x6 square somewhere in the top-left quadrant."""
    rng = np.random.default_rng(seed)
    grey = rng.integers(40, 200, (n, SIDE, SIDE, 1), dtype=np.uint8)
    images = np.repeat(grey, 3, axis=3)
    labels = np.arange(n) % 2
    for i in np.flatnonzero(labels == 1):
        r, c = rng.integers(0, SIDE // 2 - 6, 2)
        images[i, r:r + 6, c:c + 6] = RED
    return images, labels


@pytest.fixture(scope="module")
def quadrant_cnn():
    """A small zoo CNN trained to find the red square (two conv blocks, 32 px, few epochs)."""
    from artstyle.models.zoo import build_model

    keras.utils.set_random_seed(0)
    spec = ModelSpec(family="cnn", input_size=SIDE, conv_filters=[8, 16], dense_units=8)
    model = build_model(spec, 2, seed=0, name="quadrant")
    model.compile(optimizer=keras.optimizers.Adam(0.01),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    x, y = _quadrant_images(160, seed=1)
    model.fit(x.astype(np.float32), y, epochs=8, batch_size=32, verbose=0)
    return model, spec


def test_grad_cam_peaks_in_the_quadrant_of_the_class_cue(quadrant_cnn):
    model, _ = quadrant_cnn
    x, y = _quadrant_images(40, seed=2)
    cue = np.flatnonzero(y == 1)
    gm = gradcam.gradcam_model(model)
    assert gm.layer == "block2_conv1" and gm.kernel is not None
    maps, proba, head = gradcam.grad_cam(gm, x[cue].astype(np.float32),
                                         class_index=np.ones(cue.size, int))
    assert (proba.argmax(axis=1) == 1).mean() >= 0.9
    assert maps.shape == (cue.size, SIDE // 2, SIDE // 2) and maps.max() <= 1.0
    heat = gradcam.upsample(maps, SIDE)
    peaks = [gradcam.peak_cell(h) for h in heat]
    assert sum(p == (0, 0) for p in peaks) >= 0.9 * cue.size, peaks
    # the probabilities are the model's own; the head is its embedding
    np.testing.assert_allclose(proba, model.predict(x[cue].astype(np.float32), verbose=0),
                               atol=1e-5)
    assert head.shape == (cue.size, 8)


def test_grad_cam_reaches_into_a_nested_base_model(quadrant_cnn):
    # The same weights, the conv blocks wrapped in a nested model as VGG19 is in vgg19_transfer.
    model, _ = quadrant_cnn
    base = keras.Model(model.inputs, model.get_layer("block2_pool").output, name="base")
    inputs = keras.Input((None, None, 3))
    h = base(inputs)
    for name in ("gap", "pooled_dropout", "embedding", "dropout", "predictions"):
        h = model.get_layer(name)(h)
    nested = keras.Model(inputs, h, name="nested")
    assert gradcam.last_conv_path(nested) == ["base", "block2_conv1"]
    gm_flat, gm_nested = gradcam.gradcam_model(model), gradcam.gradcam_model(nested)
    assert gm_nested.layer == "base/block2_conv1"
    x, _ = _quadrant_images(6, seed=3)
    flat_maps, flat_p, _ = gradcam.grad_cam(gm_flat, x.astype(np.float32))
    nested_maps, nested_p, _ = gradcam.grad_cam(gm_nested, x.astype(np.float32))
    np.testing.assert_allclose(nested_maps, flat_maps, atol=1e-5)
    np.testing.assert_allclose(nested_p, flat_p, atol=1e-6)


def test_a_model_without_convolutions_has_no_feature_map():
    dense = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    with pytest.raises(gradcam.NoFeatureMap, match="no convolutional layer"):
        gradcam.gradcam_model(dense)


def test_palette_of_a_two_colour_image_is_its_two_colours_and_their_shares():
    image = np.zeros((10, 10, 3), np.uint8)
    image[:] = (30, 60, 200)
    image[:5, :5] = (250, 200, 20)                 # 25 of 100 pixels
    for k in (2, 6):                               # more colours asked than there are
        pal = palettes.dominant_colours(image, k, seed=0)
        assert pal.rgb.tolist() == [[30, 60, 200], [250, 200, 20]]
        assert pal.share.tolist() == [0.75, 0.25]
        assert pal.hex() == ["#1e3cc8", "#fac814"]


def test_colour_statistics_of_grey_and_of_pure_red():
    grey = palettes.colour_statistics(np.full((4, 4, 3), 128, np.uint8))
    assert grey["mean_saturation"] == 0.0 and grey["lightness_spread"] == pytest.approx(0.0)
    half = np.zeros((2, 1, 3), np.uint8)
    half[0] = (255, 0, 0)                          # red: S = 1, black: S = 0
    stats = palettes.colour_statistics(half)
    assert stats["mean_saturation"] == pytest.approx(0.5)
    # L* of pure red is 53.24, of black 0: the spread is half the difference
    assert stats["lightness_spread"] == pytest.approx(53.24 / 2, abs=0.01)


def test_painted_box_matches_the_letterbox_of_prepare():
    from artstyle.images import resize_to_square

    img = Image.new("RGB", (30, 12), (255, 255, 255))
    square = np.asarray(resize_to_square(img, 16))
    top, left, bottom, right = palettes.painted_box(30, 12, 16)
    assert (top, left, bottom, right) == (5, 0, 11, 16)
    assert (square[top:bottom, left:right] == 255).all()
    assert (square[:top] != 255).all() and (square[bottom:] != 255).all()


def test_the_map_has_one_point_per_painting_in_order():
    rng = np.random.default_rng(0)
    centres = np.array([[0.0] * 8, [10.0] * 8, [-10.0] * 8])
    labels = np.repeat([0, 1, 2], 12)
    X = centres[labels] + rng.normal(size=(36, 8))
    xy = collection.embedding_map(X, perplexity=30, seed=0)
    assert xy.shape == (36, 2) and np.isfinite(xy).all()
    # each point's nearest neighbour on the map belongs to its own cluster: row i is painting i
    d = np.linalg.norm(xy[:, None] - xy[None], axis=2) + np.eye(36) * 1e9
    assert (labels[d.argmin(axis=1)] == labels).all()
    assert collection.adapted_perplexity(36, 30) == pytest.approx(35 / 3)
    assert collection.embedding_map(X[:3]).shape == (3, 2)


def test_prototypes_neighbours_and_confused_pairs():
    X = np.array([[0.0], [1.0], [5.0], [10.0], [11.0], [30.0]])
    labels = np.array([0, 0, 0, 1, 1, 1])
    proto = collection.prototypes_and_outliers(X, labels, 3, 1)
    assert set(proto) == {0, 1}                                  # class 2 has no painting
    assert proto[0][0].tolist() == [1] and proto[0][1].tolist() == [2]   # mean 2
    idx, dist = collection.nearest_neighbours(np.array([[9.0]]), X, 2)
    assert idx.tolist() == [[3, 4]] and dist.tolist() == [[1.0, 2.0]]
    pairs = collection.confused_pairs(np.array([0, 0, 1, 2, 2, 1]),
                                      np.array([1, 0, 0, 2, 1, 1]), 3, 5)
    assert pairs == [(0, 1, 2), (1, 2, 1)]


def test_params_schema_owns_the_patterns_defaults_and_checks_the_model():
    params = load_params()
    assert params.patterns == PatternsParams()
    raw = params.model_dump()
    raw["patterns"]["model"] = "xgb_best_cnn"
    with pytest.raises(ParamsError, match="patterns.model names .xgb_best_cnn., not a neural or style model"):
        parse_params(raw)


@pytest.fixture
def prepared(tmp_path, quadrant_cnn):
    """A tiny prepared dataset (the quadrant images) and the trained CNN saved as a zoo model."""
    model, spec = quadrant_cnn
    root = tmp_path / "data" / "prepared"
    (root / "images").mkdir(parents=True)
    classes = ["Plain", "Red corner"]
    rows = []
    x, y = _quadrant_images(24, seed=4)
    for i, (img, label) in enumerate(zip(x, y)):
        split = "train" if i < 12 else ("validation" if i < 16 else "test")
        Image.fromarray(img).save(root / "images" / f"{i:03d}.png")
        rows.append({"path": f"images/{i:03d}.png", "class": classes[label], "artist": "",
                     "split": split, "content_hash": f"{i:03d}", "source_path": "",
                     "width": SIDE, "height": SIDE})
    pd.DataFrame(rows).to_csv(root / "manifest.csv", index=False)
    (root / "classes.json").write_text(json.dumps(classes))
    (root / "dataset.json").write_text(json.dumps({"notice": "test notice",
                                                   "image_size": SIDE}))
    folder = tmp_path / "models" / "quadrant"
    folder.mkdir(parents=True)
    model.save(folder / "model.keras")
    (folder / "classes.json").write_text(json.dumps(classes))
    (folder / "spec.json").write_text(json.dumps(spec.model_dump()))
    return tmp_path, model, classes, rows


def test_write_patterns_writes_the_page_and_every_file_it_links(prepared):
    tmp_path, model, classes, rows = prepared
    settings = PatternsParams(n_examples=2, n_thumbnails=6, n_queries=2, n_neighbours=2,
                              n_palette_colours=3, palette_pixels=2000, tsne_iterations=250)
    out = tmp_path / "reports" / "patterns"
    clf = neural.wrap(model, "quadrant", classes, SIDE, SIDE)
    m = write_patterns(out, clf, tmp_path / "data" / "prepared", settings, notice="test notice")
    assert m["layer"] == "block2_conv1" and m["paintings"] == 24
    assert set(m["colour"]) == set(classes)
    page = (out / "index.html").read_text()
    assert "test notice" in page and "block2_conv1" in page
    linked = {src for src in __import__("re").findall(r'<img src="([^"]+)"', page)}
    assert {"gradcam/plain.png", "gradcam/red-corner.png", "confused_pairs.png", "map.png",
            "map_thumbnails.png", "palettes.png", "prototypes.png"} == linked
    assert all((out / src).is_file() for src in linked)
    points = pd.read_csv(out / "embedding_map.csv", dtype={"id": str})
    order = [r["content_hash"] for s in ("train", "validation", "test")
             for r in rows if r["split"] == s]
    assert points["id"].tolist() == order                       # one point per painting
    stats = pd.read_csv(out / "colour_stats.csv")
    assert stats["movement"].tolist() == classes
    assert (stats.loc[1, "mean_saturation"] > stats.loc[0, "mean_saturation"])  # red corner
    assert not list(out.parent.glob(".patterns*"))               # no temporary folder left


def test_explain_writes_the_panel_and_prints_the_top_movements(prepared, monkeypatch, capsys):
    tmp_path, *_ = prepared
    monkeypatch.chdir(tmp_path)
    code = main(["explain", "data/prepared/images/021.png", "--model", "quadrant",
                 "-o", "out/explained.png", "--top", "2"])
    out, err = capsys.readouterr()
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "art movement by quadrant (neural), top 2:"
    assert lines[1].startswith("data/prepared/images/021.png: ") and lines[1].count("%") == 2
    assert "Grad-CAM on block2_conv1" in lines[2] and "wrote out/explained.png" in lines[2]
    assert Image.open(tmp_path / "out" / "explained.png").size[0] > 200


@pytest.mark.parametrize("content, expected", [
    (b"text, not an image", "not_an_image"),
    (None, "not found"),
])
def test_explain_on_a_bad_file_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys,
                                                      content, expected):
    monkeypatch.chdir(tmp_path)
    if content is not None:
        (tmp_path / "bad.jpg").write_bytes(content)
    code = main(["explain", "bad.jpg"])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and expected in err and "Traceback" not in err
    assert not (tmp_path / "bad_explained.png").exists()


def test_write_patterns_explains_a_style_member(prepared):
    """A style head: its gradient x activation maps, its descriptors as the map's embedding,
    and which layers carry each movement (layers.png)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from artstyle.heads import head_proba
    from artstyle.members.base import TrainedClassifier
    from artstyle.models.style_features import StyleDescriptor
    from artstyle.patterns.report import load_collection

    tmp_path, _, classes, _ = prepared
    data = load_collection(tmp_path / "data" / "prepared")
    describe = StyleDescriptor(None, ["block1_conv1", "block2_conv1"], [], seed=0)
    train = data.split == "train"
    head = make_pipeline(StandardScaler(), LogisticRegression(C=1.0)).fit(
        describe(data.images[train]), data.labels[train])
    clf = TrainedClassifier("style_toy", "style", classes, SIDE, SIDE,
                            lambda sq: head_proba(head, describe(sq), len(classes)),
                            parts={"descriptor": describe, "head": head, "input_size": SIDE})
    settings = PatternsParams(n_examples=2, n_thumbnails=6, n_queries=2, n_neighbours=2,
                              n_palette_colours=3, palette_pixels=2000, tsne_iterations=250)
    out = tmp_path / "reports" / "patterns_style"
    m = write_patterns(out, clf, tmp_path / "data" / "prepared", settings, style_member=clf,
                       style_X=describe(data.images[train]))
    assert (m["kind"], m["layer"], m["style_member"]) == ("style", "block2_conv1", "style_toy")
    page = (out / "index.html").read_text()
    assert "HiResCAM" in page and "layers.png" in page and (out / "layers.png").is_file()
    assert m["paintings"] == 24
