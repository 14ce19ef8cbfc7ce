"""A tiny end-to-end ``dvc repro`` of the whole pipeline in a temporary copy of the repository.

The session fixture ``tiny_pipeline`` (``conftest.py``) runs every stage once on a
miniature synthetic sample (random VGG19 weights from a local file, so no network; two
``dvc repro`` runs: the baseline CNN first, then everything else); these tests check what
that produced and, each in its own copy of the built repository
(``pipeline_copy``), that a second ``dvc repro`` runs nothing and that changing one
model's training parameter makes only that model's training out of date.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image
from sandbox import BASELINE_STAGES, ran_stages, run_dvc

from artstyle.io import read_json

pytestmark = pytest.mark.slow


def dvc(repo: Path, *args: str):
    return run_dvc(repo, *args, env={"ARTSTYLE_LOG": "WARNING"})


def test_full_pipeline_runs_every_stage(tiny_pipeline, pipeline_copy):
    # The build's two runs: `dvc repro evaluate@baseline_cnn`, then `dvc repro`, which
    # runs every other stage and none of those the first run built.
    first, rest = (ran_stages(out) for out in tiny_pipeline.repro_outputs)
    assert first == BASELINE_STAGES
    assert not first & rest
    stages = first | rest
    assert {"download", "prepare", "pretrained", "train@baseline_cnn", "evaluate@vgg19_transfer",
            "train_grid", "boost@best_cnn", "compare", "stylize",
            "pretrained_efficientnet", "style_features@lite0_stats", "style_fit@style_lite0",
            "evaluate_style@style_lite0", "evaluate_boost@best_cnn",
            "ensemble_style_ensemble"} <= stages
    repo = pipeline_copy()
    table = (repo / "reports" / "models.md").read_text()
    assert "synthetic" in table
    for name in ["baseline_cnn", "best_cnn", "vgg19_transfer",
                 "xgb_best_cnn", "style_lite0", "style_ensemble"]:
        assert f"| {name} " in table, name
        assert (repo / "reports" / "eval" / name / "confusion.png").stat().st_size > 1000
    # The grid's cell: trained and compared on validation, never evaluated on the test split.
    assert "| grid_u8_d0.5 " in table
    assert not (repo / "reports" / "eval" / "grid_u8_d0.5").exists()
    assert (repo / "models" / "grid" / "grid_u8_d0.5" / "model.keras").is_file()
    grid = read_json(repo / "reports" / "grid" / "metrics.json")
    assert list(grid["cells"]) == ["grid_u8_d0.5"]
    assert grid["best"]["dense_units"] == 8 and grid["best"]["dropout"] == 0.5
    assert (repo / "reports" / "grid" / "val_accuracy.png").stat().st_size > 1000
    assert (repo / "reports" / "compare" / "val_accuracy.png").exists()
    shown = dvc(repo, "metrics", "show", "--json").stdout
    assert "macro_f1" in shown and "NaN" not in shown


def test_second_repro_runs_nothing(pipeline_copy):
    repo = pipeline_copy()
    again = dvc(repo, "repro")
    assert ran_stages(again.stdout) == set(), again.stdout
    assert "up to date" in dvc(repo, "status").stdout


def test_a_training_param_changes_only_that_models_training(pipeline_copy):
    """Params are scoped per stage: a new learning rate for best_cnn makes
    ``train@best_cnn`` (and through its output what is downstream of it) out of date, and
    no other stage. (``dvc status``, not a run: what follows a changed output is DVC's
    own rule; that a code change re-runs the right stages is ``test_stage_deps``.)"""
    repo = pipeline_copy()
    changed = yaml.safe_load((repo / "params.yaml").read_text())
    changed["models"]["best_cnn"]["learning_rate"] = 0.002
    (repo / "params.yaml").write_text(yaml.safe_dump(changed, sort_keys=False))
    status = json.loads(dvc(repo, "status", "--json").stdout)
    assert status == {"train@best_cnn": [
        {"changed deps": {"params.yaml": {"models.best_cnn": "modified"}}}]}


def test_stylize_stage_outputs_and_judging(tiny_pipeline):
    repo = tiny_pipeline.repo  # only files are read here
    assert "stylize" in ran_stages(tiny_pipeline.repro_outputs[-1])
    metrics = read_json(repo / "reports" / "stylize" / "metrics.json")
    assert set(metrics) == {"judge", "judge_kind", "vgg19", "own:best_cnn", "fast",
                            "variants", "seconds_per_output"}
    for engine in ("vgg19", "own:best_cnn", "fast"):
        m = metrics[engine]
        assert m["outputs"] == 5                       # one content x 5 per-class styles
        assert 0.0 <= m["style_hit_rate"] <= 1.0 and -1.0 <= m["ssim"] <= 1.0
        assert m["vgg19_style_loss"] > 0 and m["seconds"] > 0
    assert metrics["vgg19"]["compute_dtype"] == "float32"   # the same on every CPU
    # the extras of the first Gatys backbone and of the feed-forward engine
    assert {k: v["outputs"] for k, v in metrics["variants"].items()} == {
        "vgg19/preserve_colors": 1, "vgg19/blend": 1, "fast/preserve_colors": 1, "fast/blend": 1}
    results = pd.read_csv(repo / "reports" / "stylize" / "results.csv")
    assert "seconds" not in results.columns            # timings: metrics.json only
    blend = results[(results["variant"] == "blend") & (results["method"] == "gatys")].iloc[0]
    assert blend["backbone"] == "vgg19" and "+" in blend["style_movement"]
    assert len(str(blend["style_probability"]).split(" / ")) == 2
    gatys = results[results["method"] == "gatys"]
    assert (gatys["seed"] == 42).all()
    # the loss terms reported are those of the saved image (they add up to its total loss)
    np.testing.assert_allclose(gatys[["content_loss", "style_loss", "tv_loss"]].sum(axis=1),
                               gatys["total_loss"], rtol=1e-4)
    for rel, method in zip(results["image"], results["method"]):
        out = repo / "reports" / "stylized" / rel
        img = np.asarray(Image.open(out))
        assert img.std() > 1.0                          # never a black or constant image
        assert out.with_name(out.stem + "_panel.png").exists()
        assert out.with_name(out.stem + "_loss.png").exists() == (method == "gatys")
    summary = (repo / "reports" / "stylize" / "summary.md").read_text()
    assert "fast style_hit" in summary and "vgg19 style_hit" in summary


def test_cli_classify_and_stylize(pipeline_copy, tmp_path, monkeypatch, capsys):
    """``artstyle classify`` and ``artstyle stylize`` on the pipeline's outputs.

    ``main()`` runs in this process (as ``python -m artstyle.cli`` would, from the
    repository root): the same code without two more TensorFlow start-ups."""
    from artstyle.cli import main

    repo = pipeline_copy()
    monkeypatch.chdir(repo)
    painting = next((repo / "data" / "raw").rglob("*.jpg"))
    assert main(["classify", str(painting), "--model", "best_cnn", "--top", "3"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[0] == "art movement by best_cnn (neural), top 3:"
    assert out[1].startswith(f"{painting}: ")
    assert out[-1].startswith("note: the model was trained on") and "synthetic" in out[-1].lower()
    ranked = out[1][len(f"{painting}: "):].split(", ")          # "<movement> <p>%" each
    probs = [float(item.rsplit(" ", 1)[1].rstrip("%")) / 100 for item in ranked]
    assert len(probs) == 3
    assert probs == sorted(probs, reverse=True) and sum(probs) <= 1.0001
    target = tmp_path / "out.png"
    assert main(["stylize", "sklearn:china.jpg", str(painting), "-o", str(target),
                 "--max-evaluations", "3", "--max-side", "40", "--init", "content"]) == 0
    img = Image.open(target)
    assert max(img.size) == 40 and img.size[0] > img.size[1]   # china.jpg is landscape
