"""Tests for artstyle.boosting: device choice, tree-method mapping, fit, persistence."""

from __future__ import annotations

import glob
import json
import logging

import numpy as np
import pytest

from artstyle.boosting import (
    booster_device,
    fit_booster,
    load_booster,
    normalise_tree_method,
    save_booster,
    select_device,
    xgboost_sees_gpu,
)
from artstyle.config import BoosterParams

CLASSES = ["Romanticism", "Baroque", "Cubism"]  # deliberately not sorted


def _no_call():
    raise AssertionError("the GPU probe must not be called here")


# --------------------------------------------------------------------------- device


def test_auto_picks_a_device_xgboost_really_trains_on(toy):
    """``auto`` never names a device XGBoost would fall back from: a booster fitted on the
    chosen device reports that device (read back from the trained booster)."""
    device = select_device("auto")
    if not glob.glob("/dev/nvidia[0-9]*"):  # no NVIDIA device node: no usable GPU here
        assert device == "cpu"
    X_tr, y_tr, X_val, y_val, *_ = toy
    _, info = fit_booster(X_tr, y_tr, X_val, y_val,
                          **{**FIT, "device": device, "params": _booster(n_estimators=3)})
    assert info["device"] == device in ("cpu", "cuda")


def test_auto_picks_cuda_when_build_and_probe_say_so():
    assert select_device("auto", probe=lambda: True,
                         build_info=lambda: {"USE_CUDA": True}) == "cuda"


def test_auto_picks_cpu_without_visible_gpu():
    assert select_device("auto", probe=lambda: False,
                         build_info=lambda: {"USE_CUDA": True}) == "cpu"


def test_auto_picks_cpu_on_cpu_only_build_without_probing():
    assert select_device("AUTO ", probe=_no_call,
                         build_info=lambda: {"USE_CUDA": False}) == "cpu"


def test_forcing_cpu_never_probes():
    assert select_device("cpu", probe=_no_call, build_info=_no_call) == "cpu"


def test_forcing_cuda_with_support_and_gpu():
    fake = {"probe": lambda: True, "build_info": lambda: {"USE_CUDA": True}}
    assert select_device("cuda", **fake) == "cuda"
    assert select_device("cuda:1", **fake) == "cuda:1"


def test_forcing_cuda_on_cpu_only_build_is_a_clear_error():
    with pytest.raises(RuntimeError, match=r"without CUDA.*USE_CUDA"):
        select_device("cuda", probe=lambda: True, build_info=lambda: {"USE_CUDA": False})


def test_forcing_cuda_without_gpu_is_a_clear_error():
    with pytest.raises(RuntimeError, match="no usable CUDA GPU"):
        select_device("cuda", probe=lambda: False, build_info=lambda: {"USE_CUDA": True})


@pytest.mark.parametrize("bad", ["gpu", "cuda:x", "tpu", ""])
def test_unknown_device_request_rejected(bad):
    with pytest.raises(ValueError, match="device must be"):
        select_device(bad, probe=_no_call, build_info=_no_call)


# --------------------------------------------------------------------------- tree method


@pytest.mark.parametrize("device", ["cuda", "cpu"])
def test_gpu_hist_maps_to_hist_with_warning(device, caplog):
    with caplog.at_level(logging.WARNING, logger="artstyle.boosting"):
        with pytest.warns(DeprecationWarning, match="gpu_hist"):
            assert normalise_tree_method("gpu_hist", device) == ("hist", device)
    assert any("gpu_hist" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("tm", ["hist", "approx", "exact", "HIST"])
def test_supported_tree_methods_pass_on_cpu(tm):
    assert normalise_tree_method(tm, "cpu") == (tm.lower(), "cpu")


def test_exact_has_no_gpu_version_and_falls_back_to_cpu(caplog):
    with caplog.at_level(logging.WARNING, logger="artstyle.boosting"):
        assert normalise_tree_method("exact", "cuda:0") == ("exact", "cpu")
    assert "exact" in caplog.text


@pytest.mark.parametrize("tm", ["gpu_exact", "auto", "lossguide"])
def test_other_tree_methods_rejected(tm):
    with pytest.raises(ValueError, match="tree_method must be one of"):
        normalise_tree_method(tm, "cpu")


def test_unresolved_device_rejected():
    with pytest.raises(ValueError, match="select_device"):
        normalise_tree_method("hist", "auto")


# --------------------------------------------------------------------------- fitting


def _blobs(n_per_class: int, seed: int, classes=(0, 1, 2), d: int = 6):
    """Well-separated Gaussian blobs: class c centred at 4·e_c."""
    rng = np.random.default_rng(seed)
    X, y = [], []
    for c in classes:
        centre = np.zeros(d)
        centre[c] = 4.0
        X.append(centre + rng.normal(size=(n_per_class, d)))
        y += [c] * n_per_class
    return np.vstack(X).astype(np.float32), np.array(y)


BOOSTER = BoosterParams(n_estimators=60, max_depth=3, learning_rate=0.3, subsample=0.8,
                        colsample_bytree=0.8, early_stopping_rounds=5)
FIT = dict(n_classes=3, device="cpu", seed=7, n_jobs=1, classes=CLASSES, params=BOOSTER)


def _booster(**changes) -> BoosterParams:
    return BOOSTER.model_copy(update=changes)


@pytest.fixture(scope="module")
def toy():
    X_tr, y_tr = _blobs(30, seed=0)
    X_val, y_val = _blobs(10, seed=1, classes=(0, 2))  # validation lacks class 1: fine
    X_te, y_te = _blobs(20, seed=2)
    return X_tr, y_tr, X_val, y_val, X_te, y_te


@pytest.fixture(scope="module")
def fitted(toy):
    X_tr, y_tr, X_val, y_val, *_ = toy
    return fit_booster(X_tr, y_tr, X_val, y_val, **FIT)


def test_fit_is_accurate_and_records_info(toy, fitted):
    *_, X_te, y_te = toy
    model, info = fitted
    proba = model.predict_proba(X_te)
    assert proba.shape == (60, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    assert (proba.argmax(axis=1) == y_te).mean() >= 0.9
    assert info["device"] == booster_device(model.get_booster())
    assert info["device"] == "cpu" and info["device_requested"] == "cpu"
    assert info["tree_method"] == "hist"
    assert 0 <= info["best_iteration"] < info["n_rounds"] <= 60
    assert info["best_score"] == pytest.approx(min(info["val_mlogloss"]))
    assert len(info["val_mlogloss"]) == info["n_rounds"]
    assert (info["n_train"], info["n_val"], info["n_features"]) == (90, 20, 6)
    assert info["fit_seconds"] > 0
    json.dumps(info)  # the record is JSON-serialisable


def test_same_seed_gives_identical_predictions(toy, fitted):
    X_tr, y_tr, X_val, y_val, X_te, _ = toy
    again, info = fit_booster(X_tr, y_tr, X_val, y_val, **FIT)
    np.testing.assert_array_equal(again.predict_proba(X_te), fitted[0].predict_proba(X_te))
    assert info["best_iteration"] == fitted[1]["best_iteration"]


def test_fit_refuses_training_split_missing_a_class(toy):
    X_tr, y_tr, X_val, y_val, *_ = toy
    keep = y_tr != 1
    with pytest.raises(ValueError, match="'Baroque'"):
        fit_booster(X_tr[keep], y_tr[keep], X_val, y_val, **FIT)


def test_fit_without_validation_uses_all_rounds(toy):
    X_tr, y_tr, *_ = toy
    params = {**FIT, "params": _booster(early_stopping_rounds=None, n_estimators=8)}
    model, info = fit_booster(X_tr, y_tr, None, None, **params)
    assert info["n_rounds"] == 8 and info["best_iteration"] == 7
    assert info["best_score"] is None and info["val_mlogloss"] == []
    with pytest.raises(ValueError, match="validation"):
        fit_booster(X_tr, y_tr, None, None, **FIT)


def test_fit_maps_gpu_hist(toy):
    X_tr, y_tr, X_val, y_val, *_ = toy
    with pytest.warns(DeprecationWarning):
        _, info = fit_booster(X_tr, y_tr, X_val, y_val,
                              **{**FIT, "params": _booster(n_estimators=3,
                                                           tree_method="gpu_hist")})
    assert info["tree_method"] == "hist"


def test_actual_device_is_read_back_after_xgboost_falls_back(toy):
    if xgboost_sees_gpu():
        pytest.skip("a usable GPU is present; XGBoost will not fall back to the CPU")
    X_tr, y_tr, X_val, y_val, *_ = toy
    with pytest.warns(UserWarning):  # XGBoost's own "No visible GPU" warning
        _, info = fit_booster(X_tr, y_tr, X_val, y_val,
                              **{**FIT, "device": "cuda", "params": _booster(n_estimators=3)})
    assert info["device_requested"] == "cuda"
    assert info["device"] == "cpu"


def test_json_round_trip_gives_identical_probabilities(toy, fitted, tmp_path):
    *_, X_te, _ = toy
    model, info = fitted
    path = save_booster(model, tmp_path / "sub" / "xgb.json")
    assert json.loads(path.read_text())["learner"]["attributes"]["best_iteration"] == str(
        info["best_iteration"])
    assert sorted(p.name for p in path.parent.iterdir()) == ["xgb.json"]  # no temp left
    loaded = load_booster(path)
    assert loaded.n_classes_ == 3
    assert loaded.best_iteration == info["best_iteration"]
    np.testing.assert_array_equal(loaded.predict_proba(X_te), model.predict_proba(X_te))


def test_save_booster_requires_json_suffix(fitted, tmp_path):
    with pytest.raises(ValueError, match=".json"):
        save_booster(fitted[0], tmp_path / "xgb.ubj")
    with pytest.raises(FileNotFoundError):
        load_booster(tmp_path / "missing.json")
