"""Grad-CAM of style heads (``patterns.gradcam.style_head_grad_cam``) and the figure of a
style head's weights grouped by layer (``patterns.plots.plot_layer_weights``)."""

from __future__ import annotations

import numpy as np
import pytest

from artstyle.config import StyleModelSpec
from artstyle.heads import make_head
from artstyle.patterns import gradcam

SIDE = 64
HALF = SIDE // 2


def _striped_patch_images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, list]:
    """Smooth colour gradients with noise; one random quadrant holds a striped patch:
    vertical stripes (class 0) or horizontal ones (class 1). Nothing else tells the
    classes apart, so the answer depends on that quadrant only."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:SIDE, 0:SIDE] / SIDE
    stripes = ((np.arange(HALF) // 2) % 2).astype(np.float64)
    images, labels, quadrants = [], [], []
    for i in range(n):
        c0, c1 = rng.uniform(60, 190, 3), rng.uniform(60, 190, 3)
        t = rng.uniform(0, np.pi / 2)
        g = ((np.cos(t) * xx + np.sin(t) * yy) / 1.5)[..., None]
        img = c0 * (1 - g) + c1 * g + rng.normal(0, 3, (SIDE, SIDE, 3))
        cls = i % 2
        r, c = divmod(int(rng.integers(4)), 2)
        patch = (np.tile(stripes[None, :], (HALF, 1)) if cls == 0
                 else np.tile(stripes[:, None], (1, HALF)))
        img[r * HALF:(r + 1) * HALF, c * HALF:(c + 1) * HALF] = 40 + 170 * patch[..., None]
        images.append(np.clip(img, 0, 255))
        labels.append(cls)
        quadrants.append((r, c))
    return np.asarray(images, np.float32), np.asarray(labels), quadrants


def _spec(head: str) -> StyleModelSpec:
    extra = {"hidden_units": 16} if head == "mlp" else {}
    return StyleModelSpec(features="test", head=head, C=[1.0], max_iter=500, **extra)


@pytest.mark.parametrize("head_kind,pca", [("logistic", 0), ("logistic", 5), ("mlp", 0),
                                           ("linear_svm", 0)])
def test_head_scores_reproduce_the_heads_probabilities(head_kind, pca):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(90, 12)).astype(np.float32)
    y = np.repeat(np.arange(3), 30)
    X[:, 0] += 2 * y
    spec = _spec(head_kind).model_copy(update={"pca_components": pca})
    head = make_head(spec, 1.0, len(X), X.shape[1]).fit(X, y)
    scores, classes = gradcam.head_scores_fn(head)
    s = np.asarray(scores(X))
    assert s.shape == (90, 3) and classes.tolist() == [0, 1, 2]
    softmax = np.exp(s - s.max(1, keepdims=True))
    softmax /= softmax.sum(1, keepdims=True)
    np.testing.assert_allclose(softmax, head.predict_proba(X), atol=1e-4)


def test_two_class_scores_are_the_log_odds_split_in_halves():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(40, 4)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    head = make_head(_spec("logistic"), 1.0, 40, 4).fit(X, y)
    s = np.asarray(gradcam.head_scores_fn(head)[0](X))
    p1 = 1 / (1 + np.exp(-(s[:, 1] - s[:, 0])))
    np.testing.assert_allclose(p1, head.predict_proba(X)[:, 1], atol=1e-5)
    np.testing.assert_allclose(s[:, 0], -s[:, 1], atol=1e-6)


@pytest.mark.slow
def test_style_head_grad_cam_peaks_in_the_quadrant_that_decides_the_class():
    from artstyle.models.style_features import StyleDescriptor

    layers = ["block1_conv1", "block2_conv1", "block3_conv1"]
    describe = StyleDescriptor(None, layers, [], backbone="vgg19", seed=0)
    X_train, y_train, _ = _striped_patch_images(32, seed=0)
    X_test, y_test, quadrants = _striped_patch_images(8, seed=1)
    D_train = describe(X_train)
    for kind in ("logistic", "mlp"):
        head = make_head(_spec(kind), 1.0, len(D_train), describe.dim).fit(D_train, y_train)
        maps, proba, desc = gradcam.style_head_grad_cam(describe, head, X_test, y_test,
                                                        n_classes=2)
        # the deepest described layer, at 1/4 of the side for VGG19's block3
        assert maps.shape == (8, SIDE // 4, SIDE // 4) and proba.shape == (8, 2)
        assert maps.min() >= 0 and np.allclose(maps.max(axis=(1, 2)), 1.0)
        np.testing.assert_allclose(desc, describe(X_test), rtol=1e-3, atol=1e-3)
        np.testing.assert_allclose(proba, head.predict_proba(describe(X_test)), atol=1e-3)
        assert (proba.argmax(1) == y_test).all(), kind
        heat = gradcam.upsample(maps, SIDE)
        assert [gradcam.peak_cell(h) for h in heat] == quadrants, kind
    # A shallower layer: the gradient also flows through the deeper layers' statistics.
    maps, _, _ = gradcam.style_head_grad_cam(describe, head, X_test[:4], None,
                                             layer="block2_conv1")
    assert maps.shape == (4, SIDE // 2, SIDE // 2)
    assert [gradcam.peak_cell(h) for h in gradcam.upsample(maps, SIDE)] == quadrants[:4]
    with pytest.raises(ValueError, match="not described"):
        gradcam.style_head_grad_cam(describe, head, X_test[:1], layer="block5_conv1")


# ---------------------------------------------------------------------------
# The head's weights grouped by layer
# ---------------------------------------------------------------------------

def test_layer_shares_find_the_layer_that_decides_each_class(tmp_path):
    from artstyle.patterns.layer_weights import (
        descriptor_groups,
        layer_shares,
        plot_layer_weights,
    )

    # Two "layers" of 3 channels: class 1 is told by the shallow layer's standard
    # deviations, class 2 by the deep layer's means; class 0 is the rest.
    groups = descriptor_groups(["shallow", "deep"], [], {"shallow": 3, "deep": 3})
    assert [(g.label, g.start, g.stop) for g in groups] == [
        ("shallow mean", 0, 3), ("shallow std", 3, 6), ("deep mean", 6, 9), ("deep std", 9, 12)]
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 60)
    X = rng.normal(size=(180, 12))
    X[y == 1, 3:6] += 3.0
    X[y == 2, 6:9] += 3.0
    for kind, pca in (("logistic", 0), ("logistic", 8), ("mlp", 0)):
        spec = _spec(kind).model_copy(update={"pca_components": pca})
        head = make_head(spec, 1.0, len(X), 12).fit(X, y)
        shares = layer_shares(head, groups, X)
        assert shares.shape == (3, 4)
        np.testing.assert_allclose(shares.sum(axis=1), 1.0)
        assert shares[1].argmax() == 1 and shares[2].argmax() == 2, (kind, shares.round(2))
        if kind == "logistic" and pca == 0:
            assert shares[1, 1] > 0.5 and shares[2, 2] > 0.5
            no_data = layer_shares(head, groups)       # weight norms
            assert no_data[1].argmax() == 1 and no_data[2].argmax() == 2
    out = plot_layer_weights(tmp_path / "layers.png", shares, ["a", "b", "c"], groups,
                             "Which layers carry each movement")
    from PIL import Image

    with Image.open(out) as im:
        assert im.format == "PNG" and im.size[0] > 300
