"""artstyle.classifier: one type for a trained classifier, any kind, by name or best."""

from __future__ import annotations

import json

import numpy as np
import pytest

from artstyle.classifier import (
    MissingModel,
    TrainedClassifier,
    best_member,
    folder_kind,
    load_classifier,
    trained_members,
)
from artstyle.members.base import MembersDisagree, check_same_classes, check_same_split
from artstyle.members.ensemble import mean_proba


def _member(models, name, marker, spec=None, classes=("a", "b")):
    folder = models / name
    folder.mkdir(parents=True)
    (folder / "classes.json").write_text(json.dumps(list(classes)))
    (folder / "spec.json").write_text(json.dumps(spec or {"input_size": 16}))
    if marker:
        (folder / marker).write_text("x")
    return folder


def _evaluated(reports, name, acc, f1):
    (reports / name).mkdir(parents=True)
    (reports / name / "metrics.json").write_text(
        json.dumps({"validation": {"accuracy": acc, "macro_f1": f1}, "test": {"accuracy": 0.0}}))


@pytest.fixture
def zoo(tmp_path):
    """Model folders of every kind and their validation metrics (the test split is 0)."""
    models, reports = tmp_path / "models", tmp_path / "eval"
    _member(models, "cnn", "model.keras")
    _member(models, "style_a", "head.joblib")
    _member(models, "xgb_cnn", "model.json")
    _member(models, "mean_ens", None, {"members": ["cnn", "style_a"], "method": "mean"})
    _member(models, "stack_ens", None, {"members": ["cnn", "style_a"], "method": "stack"})
    _member(models, "pretrained", None)                     # weights: no member
    (models / "pretrained" / "spec.json").unlink()
    for name, acc, f1 in [("cnn", 0.6, 0.6), ("style_a", 0.8, 0.7), ("xgb_cnn", 0.8, 0.75),
                          ("mean_ens", 0.7, 0.7), ("stack_ens", 0.99, 0.99)]:
        _evaluated(reports, name, acc, f1)
    return models, reports


def test_each_kind_is_told_by_its_folder(zoo):
    models, _ = zoo
    assert {n: folder_kind(models / n) for n in trained_members(models_dir=models)} == {
        "cnn": "neural", "style_a": "style", "xgb_cnn": "xgboost", "mean_ens": "ensemble",
        "stack_ens": "ensemble"}
    assert folder_kind(models / "pretrained") is None
    assert trained_members(("neural",), models) == ["cnn"]


def test_best_is_the_best_validation_accuracy_of_any_kind(zoo):
    models, reports = zoo
    # style_a and xgb_cnn tie on accuracy (0.8): macro-F1 decides; the stacked ensemble's
    # validation accuracy is in-sample (its stacker was fitted there) and never chosen.
    assert best_member(eval_dir=reports, models_dir=models) == "xgb_cnn"
    assert best_member(("neural", "style"), reports, models) == "style_a"
    assert best_member(("neural",), reports, models) == "cnn"
    assert best_member(eval_dir=reports, models_dir=models, names=["cnn", "mean_ens"]) == "mean_ens"
    with pytest.raises(MissingModel, match="no evaluated neural model"):
        best_member(("neural",), reports, models, names=["other"])


def test_proba_prepares_any_size_as_training_did_in_batches():
    seen = []

    def proba_squares(squares):
        seen.append(squares.shape)
        mean = squares.reshape(len(squares), -1).mean(axis=1) / 255
        return np.stack([mean, 1 - mean], axis=1).astype(np.float32)

    clf = TrainedClassifier("toy", "neural", ["bright", "dark"], 8, 8, proba_squares)
    white = np.full((30, 60, 3), 255, np.uint8)     # letterboxed: half the square is padding
    black = np.zeros((50, 50, 3), np.uint8)
    p = clf.proba([white, black, white], batch_size=2)
    assert seen == [(2, 8, 8, 3), (1, 8, 8, 3)]
    assert p.shape == (3, 2) and p.dtype == np.float32
    np.testing.assert_allclose(p[1], [0.0, 1.0])
    assert 0.5 < p[0, 0] < 1.0 and p[0, 0] == p[2, 0]       # padding: the ImageNet mean
    assert clf.top(black, 1) == [("dark", 1.0)]
    assert clf.proba([]).shape == (0, 2)


def test_a_saved_neural_member_loads_by_name_and_classifies(tmp_path, monkeypatch):
    from artstyle.config import ModelSpec
    from artstyle.models.zoo import build_model

    monkeypatch.chdir(tmp_path)
    spec = ModelSpec(family="cnn", input_size=16, conv_filters=[4], dense_units=4)
    folder = tmp_path / "models" / "tiny"
    folder.mkdir(parents=True)
    model = build_model(spec, 3, seed=0, name="tiny")
    model.save(folder / "model.keras")
    (folder / "classes.json").write_text(json.dumps(["x", "y", "z"]))
    (folder / "spec.json").write_text(json.dumps(spec.model_dump()))
    clf = load_classifier("tiny")
    assert (clf.kind, clf.classes, clf.input_size, clf.prepared_side) == (
        "neural", ["x", "y", "z"], 16, 16)
    img = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    expected = model.predict(img[None].astype(np.float32), verbose=0)
    np.testing.assert_allclose(clf.proba([img]), expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(MissingModel, match="no trained model named 'nosuch'.*trained: tiny"):
        load_classifier("nosuch")


def test_an_ensemble_averages_its_loaded_members(tmp_path, monkeypatch):
    from artstyle.members import ensemble

    monkeypatch.chdir(tmp_path)
    _member(tmp_path / "models", "ens", None, {"members": ["m1", "m2"], "method": "mean"})

    def constant(p):
        return lambda squares: np.tile(np.asarray(p, np.float32), (len(squares), 1))

    m1 = TrainedClassifier("m1", "neural", ["a", "b"], 8, 8, constant([1.0, 0.0]))
    m2 = TrainedClassifier("m2", "style", ["a", "b"], 8, 8, constant([0.5, 0.5]))
    ens = ensemble.load("ens", [m1, m2])
    np.testing.assert_allclose(ens.proba([np.zeros((4, 4, 3), np.uint8)]), [[0.75, 0.25]])
    other = TrainedClassifier("m3", "style", ["a", "c"], 8, 8, constant([0.5, 0.5]))
    with pytest.raises(MembersDisagree, match="ens and m3 know different art movements "
                                              r"\(classes only one of them knows: b, c\); "
                                              r"run `dvc repro ensemble_ens`"):
        ensemble.load("ens", [m1, other])
    np.testing.assert_allclose(mean_proba([np.eye(2), np.ones((2, 2)) / 2]),
                               [[0.75, 0.25], [0.25, 0.75]])


def test_members_made_from_other_data_are_refused_in_one_line():
    with pytest.raises(MembersDisagree, match=r"^style_a and cnn were made from different data "
                                              r"\(the test split: 3 and 2 rows that differ\); "
                                              r"run `dvc repro x`$"):
        check_same_split("style_a", "cnn", "the test split", np.array(["1", "2", "3"]),
                         np.array(["1", "2"]), "dvc repro x")
    check_same_classes("a", ["x", "y"], "b", ["x", "y"], "fix")            # same: no error
    with pytest.raises(MembersDisagree, match="the same classes in another order"):
        check_same_classes("a", ["x", "y"], "b", ["y", "x"], "fix")


def test_a_style_member_shows_where_it_looks():
    """Grad-CAM of a style head through its frozen network (artstyle.patterns.explain.look)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from artstyle.heads import head_proba
    from artstyle.models.style_features import StyleDescriptor
    from artstyle.patterns.explain import look

    describe = StyleDescriptor(None, ["block1_conv1", "block2_conv1"], [], seed=0)
    rng = np.random.default_rng(0)
    squares = rng.integers(0, 256, (12, 32, 32, 3), dtype=np.uint8)
    squares[6:, :16, :16] = 255                      # class 1: a bright top-left quadrant
    y = np.repeat([0, 1], 6)
    head = make_pipeline(StandardScaler(), LogisticRegression(C=1.0)).fit(describe(squares), y)
    clf = TrainedClassifier(
        "style_toy", "style", ["plain", "bright-corner"], 32, 32,
        lambda sq: head_proba(head, describe(sq), 2),
        parts={"descriptor": describe, "head": head, "input_size": 32})
    assert clf.has_heat_map
    seen = look(squares[8], clf)
    assert seen.layer == "block2_conv1" and seen.heat.shape == (32, 32)
    assert 0.0 <= seen.heat.min() and 0.0 < seen.heat.max() <= 1.0
    quadrants = [seen.heat[r:r + 16, c:c + 16].sum() for r in (0, 16) for c in (0, 16)]
    assert int(np.argmax(quadrants)) == 0            # the bright corner decides the class
    np.testing.assert_allclose(seen.proba, clf.proba_squares(squares[8][None])[0], rtol=1e-5)
    plain = TrainedClassifier("x", "xgboost", ["a", "b"], 8, 8, lambda sq: np.ones((len(sq), 2)) / 2)
    assert not plain.has_heat_map and look(squares[0], plain).layer == ""
