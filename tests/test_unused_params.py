"""A params key never does nothing silently: ``data.classes`` with ``source: sample`` is
honoured (misspelt names refused in one line); a key without effect in the chosen
configuration is refused in one line, naming it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from artstyle.config import ParamsError, parse_params
from artstyle.data.sample import (
    SAMPLE_CLASSES,
    SampleClassError,
    generate_sample,
    sample_notice,
    select_sample_classes,
)

REPO = Path(__file__).resolve().parents[1]


def _raw() -> dict:
    return yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))


def test_the_repository_params_pass():
    parse_params(_raw())


def test_sample_classes_are_chosen_case_insensitively_in_label_order():
    assert select_sample_classes([]) == SAMPLE_CLASSES
    assert select_sample_classes(["watercolour", "Pointillism", "MOSAIC"]) == (
        "Pointillism", "Mosaic", "Watercolour")
    with pytest.raises(SampleClassError) as err:
        select_sample_classes(["Pointillism", "Watercolor", "Cubism"])
    assert str(err.value) == (
        "unknown class(es) 'Watercolor', 'Cubism' in data.classes for data.source: sample "
        "('Watercolor': did you mean 'Watercolour'?); the sample's classes are Pointillism, "
        "Posterised-outline, Brush-strokes, Mosaic, Watercolour; fix data.classes, or [] "
        "for all")
    assert sample_notice(["Mosaic", "Pointillism"]).startswith(
        "synthetic sample dataset: not real paintings. 2 classes (Pointillism, Mosaic), each "
        "a procedural painting technique (dots, SLIC mosaic) rendered")


def test_a_chosen_class_has_the_same_images_as_in_the_whole_sample(tmp_path):
    args = {"images_per_class": 1, "side": 32, "seed": 0, "progress": False}
    assert generate_sample(tmp_path / "some", classes=["Mosaic", "pointillism"], **args) == {
        "Pointillism": 1, "Mosaic": 1}
    assert sorted(p.name for p in (tmp_path / "some").iterdir()) == ["Mosaic", "Pointillism"]
    generate_sample(tmp_path / "all", **args)
    for name in ("Mosaic/Mosaic_000.jpg", "Pointillism/Pointillism_000.jpg"):
        assert (tmp_path / "some" / name).read_bytes() == (tmp_path / "all" / name).read_bytes()


def _download_stage(tmp_path, classes) -> subprocess.CompletedProcess:
    raw = _raw()
    raw["data"]["classes"] = classes
    raw["data"]["sample"].update(images_per_class=4, imbalance=1.0, side=32)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw), encoding="utf-8")
    return subprocess.run([sys.executable, str(REPO / "stages" / "download.py")], cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(REPO / "src")},
                          capture_output=True, text=True, timeout=300, check=False)


@pytest.mark.slow
def test_the_download_stage_generates_only_the_chosen_sample_classes(tmp_path):
    run = _download_stage(tmp_path, ["Pointillism", "Mosaic", "Watercolour"])
    assert run.returncode == 0, run.stderr
    assert sorted(p.name for p in (tmp_path / "data" / "raw").iterdir()) == [
        "Mosaic", "Pointillism", "Watercolour"]
    assert "3 classes, 12 images" in run.stdout + run.stderr
    run = _download_stage(tmp_path / "data", ["Pointillism", "Watercolor"])
    assert run.returncode == 2
    assert run.stderr.strip().splitlines()[-1].endswith(
        "the sample's classes are Pointillism, Posterised-outline, Brush-strokes, Mosaic, "
        "Watercolour; fix data.classes, or [] for all")


@pytest.mark.parametrize("change, expected", [
    (lambda r: r["data"].update(path="paintings/"),
     "data.path has no effect with data.source: sample"),
    (lambda r: r["data"].update(url="https://example.org/x.zip", sha256="a" * 64),
     "data.url, data.sha256 have no effect with data.source: sample"),
    (lambda r: r["data"].update(retries=5),
     "data.retries has no effect with data.source: sample"),
    (lambda r: r["data"].update(source="folder", path="x", timeout_s=5),
     "data.timeout_s has no effect with data.source: folder (nothing is downloaded)"),
    (lambda r: (r["data"].update(source="pandora7k"), r["data"]["sample"].update(side=48)),
     "data.sample has no effect with data.source: pandora7k"),
    (lambda r: r["models"]["best_cnn"].update(fine_tune_blocks=1, fine_tune_epochs=2),
     "fine_tune_blocks, fine_tune_epochs have no effect for family cnn"),
    (lambda r: r["models"]["vgg19_transfer"].update(conv_filters=[8]),
     "conv_filters has no effect for family vgg19_transfer"),
    (lambda r: r["models"]["vgg19_transfer"].update(fine_tune_epochs=0),
     "fine_tune_blocks and fine_tune_epochs work together"),
    (lambda r: r["models"]["vgg19_transfer"].update(fine_tune_blocks=0, fine_tune_epochs=0,
                                                     fine_tune_learning_rate=1e-4),
     "fine_tune_learning_rate has no effect without fine-tuning"),
    (lambda r: r["style_models"]["style_logreg"].update(hidden_units=64),
     "hidden_units has no effect for head logistic (mlp only)"),
    (lambda r: r["style_features"]["vgg19_stats"].update(patch_fraction=0.5),
     "patch_fraction has no effect with patches: 1"),
    (lambda r: r["ensembles"]["style_ensemble"].update(C=0.1),
     "C has no effect for method mean (stack only)"),
])
def test_a_key_without_effect_is_refused_naming_it(change, expected):
    raw = _raw()
    change(raw)
    with pytest.raises(ParamsError) as err:
        parse_params(raw)
    assert expected in str(err.value)


@pytest.mark.parametrize("change", [
    lambda r: r["data"].update(source="folder", path="x"),         # retries 3, timeout 60: defaults
    lambda r: r["data"].update(source="pandora7k", retries=5),     # applies: a download
    lambda r: r["style_models"]["style_logreg"].update(head="mlp", hidden_units=64),
    lambda r: r["style_features"]["vgg19_stats"].update(patches=5, patch_fraction=0.5),
    lambda r: r["ensembles"]["style_ensemble"].update(method="stack", C=0.1),
])
def test_keys_that_apply_or_keep_their_default_pass(change):
    raw = _raw()
    change(raw)
    parse_params(raw)
