"""Style descriptors, patch voting, heads and ensembles (issue 14's new zoo members)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from artstyle.config import ParamsError, StyleModelSpec, parse_params
from artstyle.members.ensemble import fit_stack, mean_proba, stack_proba
from artstyle.heads import fit_head, head_proba
from artstyle.models.style_features import (
    StyleDescriptor,
    gram_upper,
    mean_std,
    signed_sqrt,
)
from artstyle.patches import patch_images, vote


def test_gram_upper_of_a_hand_made_tensor():
    # 2 x 1 positions, 2 channels: F = [[1, 2], [3, 4]] -> F^T F / 2 = [[5, 7], [7, 10]]
    f = np.array([[[[1.0, 2.0]], [[3.0, 4.0]]]], np.float32)      # (1, 2, 1, 2)
    np.testing.assert_allclose(gram_upper(f), [[5.0, 7.0, 10.0]])
    np.testing.assert_allclose(mean_std(f, eps=0.0), [[2.0, 3.0, 1.0, 1.0]])
    np.testing.assert_allclose(signed_sqrt(np.array([-4.0, 9.0])), [-2.0, 3.0])


def test_gram_upper_keeps_each_pair_once():
    f = np.arange(2 * 3 * 3 * 4, dtype=np.float32).reshape(2, 3, 3, 4) / 10
    g = gram_upper(f)
    assert g.shape == (2, 4 * 5 // 2)
    full = np.einsum("bijc,bijd->bcd", f, f) / 9
    np.testing.assert_allclose(g[1, [0, 1, 4, 9]], full[1, [0, 0, 1, 3], [0, 1, 1, 3]],
                               rtol=1e-5)


@pytest.fixture(scope="module")
def descriptor():
    return StyleDescriptor(None, ["block1_conv1", "block2_conv1"], ["block1_conv1"], seed=3)


def test_features_of_a_painting_are_identical_between_runs(descriptor):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 40, 40, 3), dtype=np.uint8)
    first, _ = descriptor.describe(images, patches=5, batch_size=2)
    again = StyleDescriptor(None, ["block1_conv1", "block2_conv1"], ["block1_conv1"], seed=3)
    second, timing = again.describe(images, patches=5, batch_size=3)
    assert first.shape == (15, descriptor.dim) == (15, 2 * 64 + 2 * 128 + 64 * 65 // 2)
    np.testing.assert_array_equal(first, second)
    assert timing["images"] == 3 and timing["images_per_second"] > 0


def test_an_unknown_layer_is_refused():
    with pytest.raises(ValueError, match="block9_conv1"):
        StyleDescriptor(None, ["block9_conv1"], [])


def _quadrant_model(batch: np.ndarray) -> np.ndarray:
    """Class 0 when the patch's top-left pixel is bright, else class 1."""
    bright = batch[:, 0, 0, 0] > 127
    return np.stack([bright, ~bright], axis=1).astype(np.float32)


def predict_patches(predict, images, patches, fraction):
    return vote(predict(patch_images(images, patches, fraction)), patches)


def test_patch_voting_depends_on_where_the_patches_are():
    img = np.zeros((1, 20, 20, 3), np.uint8)
    img[0, :10, :10] = 255                         # only the top-left quadrant is bright
    # the whole painting (resized) and the top-left crop say class 0; 3 corners say 1
    np.testing.assert_allclose(predict_patches(_quadrant_model, img, 5, 0.5), [[0.4, 0.6]])
    # mirrors: only the mirrored top-left crop (whose first column was bright) says class 0
    np.testing.assert_allclose(predict_patches(_quadrant_model, img, 10, 0.5), [[0.3, 0.7]])
    np.testing.assert_allclose(predict_patches(_quadrant_model, img, 1, 0.5), [[1.0, 0.0]])
    moved = np.roll(img, 10, axis=2)                # bright quadrant now top-right
    np.testing.assert_allclose(predict_patches(_quadrant_model, moved, 5, 0.5), [[0.2, 0.8]])
    np.testing.assert_allclose(predict_patches(_quadrant_model, moved, 1, 0.5), [[0.0, 1.0]])


def test_patches_are_painting_major():
    imgs = np.stack([np.full((16, 16, 3), v, np.uint8) for v in (10, 200)])
    p = patch_images(imgs, 5, 0.5)
    assert p.shape == (10, 8, 8, 3)
    np.testing.assert_allclose(p[:5], 10, atol=0.01)
    np.testing.assert_allclose(p[5:], 200, atol=0.01)
    with pytest.raises(ValueError, match="patches"):
        patch_images(imgs, 3, 0.5)
    with pytest.raises(ValueError, match="whole number"):
        vote(np.ones((7, 2)), 5)


def _blobs(n_per_class=12, k=3, d=6, seed=0):
    rng = np.random.default_rng(seed)
    X = np.concatenate([rng.normal(3 * c, 1.0, (n_per_class, d)) for c in range(k)])
    return X.astype(np.float32), np.repeat(np.arange(k), n_per_class)


@pytest.mark.parametrize("head", ["logistic", "linear_svm", "mlp"])
def test_heads_choose_C_on_validation_and_give_probabilities(head):
    X, y = _blobs()
    Xv, yv = _blobs(seed=1)
    spec = StyleModelSpec(features="f", head=head, C=[0.01, 1.0], pca_components=3,
                          max_iter=500)
    model, info = fit_head(spec, X, y, Xv, yv, n_classes=4)
    assert info["C"] in (0.01, 1.0) and set(info["val_accuracy_by_C"]) == {"0.01", "1.0"}
    p = head_proba(model, Xv, 4)
    assert p.shape == (36, 4) and np.allclose(p.sum(1), 1, atol=1e-5) and (p[:, 3] == 0).all()
    assert (p.argmax(1) == yv).mean() > 0.9


def test_ensemble_probabilities_sum_to_one():
    rng = np.random.default_rng(0)
    members = [rng.dirichlet(np.ones(5), size=20) for _ in range(3)]
    p = mean_proba(members)
    assert p.shape == (20, 5)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-6)
    y = rng.integers(0, 4, 20)                      # class 4 never seen by the stacker
    stacker = fit_stack(members, y)
    s = stack_proba(stacker, members)
    np.testing.assert_allclose(s.sum(axis=1), 1.0, rtol=1e-6)
    assert (s[:, 4] == 0).all()
    with pytest.raises(ValueError, match="shape"):
        mean_proba([members[0], members[1][:5]])


def _params():
    import yaml

    return yaml.safe_load((Path(__file__).resolve().parents[1] / "params.yaml").read_text(
        encoding="utf-8"))


def test_params_name_unknown_members_and_feature_sets():
    raw = _params()
    raw["ensembles"] = {"ens": {"members": ["style_logreg", "nope"]}}
    with pytest.raises(ParamsError, match="nope"):
        parse_params(raw)
    raw = _params()
    raw["style_models"]["style_logreg"]["features"] = "missing_set"
    with pytest.raises(ParamsError, match="missing_set"):
        parse_params(raw)
    raw = _params()
    raw["style_features"]["vgg19_stats"]["stat_layers"] = ["block6_conv1"]
    with pytest.raises(ParamsError, match="stat_layers"):
        parse_params(raw)
