"""A tiny end-to-end ``dvc repro`` of the whole pipeline in a temporary copy of the repository.

Runs every stage on a miniature synthetic sample (random VGG19 weights from a local file,
so no network), then checks that a second ``dvc repro`` runs nothing and that changing
only a training parameter re-runs training and evaluation but not download or prepare.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from artstyle.io import read_json
from sandbox import copy_repo, ran_stages, run_dvc, tiny_params, write_random_vgg19

pytestmark = pytest.mark.slow


def dvc(repo: Path, *args: str):
    return run_dvc(repo, *args, env={"ARTSTYLE_LOG": "WARNING"})


@pytest.fixture(scope="module")
def pipeline_repo(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    weights = write_random_vgg19(root / "vgg19_random.weights.h5")
    repo = copy_repo(root / "repo", params=lambda raw: tiny_params(raw, weights))
    params = yaml.safe_load((repo / "params.yaml").read_text())
    first = dvc(repo, "repro")
    return repo, params, first


def test_full_pipeline_runs_every_stage(pipeline_repo):
    repo, params, first = pipeline_repo
    stages = ran_stages(first.stdout)
    assert {"download", "prepare", "pretrained", "train@baseline_cnn", "evaluate@vgg19_transfer",
            "train_grid@8-0.5", "boost@best_cnn", "compare"} <= stages
    table = (repo / "reports" / "models.md").read_text()
    assert "synthetic" in table
    for name in ["baseline_cnn", "best_cnn", "balanced_cnn", "vgg19_transfer", "grid_u8_d0.5",
                 "xgb_best_cnn", "xgb_vgg19_transfer"]:
        assert f"| {name} " in table, name
        assert (repo / "reports" / "eval" / name / "confusion.png").stat().st_size > 1000
    assert (repo / "reports" / "compare" / "val_accuracy.png").exists()
    shown = dvc(repo, "metrics", "show", "--json").stdout
    assert "macro_f1" in shown and "NaN" not in shown


def test_second_repro_runs_nothing(pipeline_repo):
    repo, _, _ = pipeline_repo
    again = dvc(repo, "repro")
    assert ran_stages(again.stdout) == set(), again.stdout
    assert "up to date" in dvc(repo, "status").stdout


def test_training_param_reruns_only_training_and_evaluation(pipeline_repo):
    repo, params, _ = pipeline_repo
    changed = yaml.safe_load((repo / "params.yaml").read_text())
    changed["models"]["best_cnn"]["learning_rate"] = 0.002
    (repo / "params.yaml").write_text(yaml.safe_dump(changed, sort_keys=False))
    # A real run: `dvc repro --dry` lists only the directly changed stage, since whether
    # downstream stages run depends on the new outputs.
    stages = ran_stages(dvc(repo, "repro").stdout)
    assert {"train@best_cnn", "evaluate@best_cnn", "features@best_cnn", "compare"} <= stages
    assert not stages & {"download", "prepare", "pretrained", "train@baseline_cnn",
                         "evaluate@baseline_cnn", "train@vgg19_transfer"}


def test_stylize_stage_outputs_and_judging(pipeline_repo):
    repo, params, first = pipeline_repo
    assert "stylize" in ran_stages(first.stdout)
    metrics = read_json(repo / "reports" / "stylize" / "metrics.json")
    assert set(metrics) == {"judge", "vgg19", "own:best_cnn"}
    for backbone in ("vgg19", "own:best_cnn"):
        m = metrics[backbone]
        assert m["outputs"] == 5                       # one content x 5 per-class styles
        assert 0.0 <= m["style_hit_rate"] <= 1.0 and -1.0 <= m["ssim"] <= 1.0
    results = pd.read_csv(repo / "reports" / "stylize" / "results.csv")
    # the loss terms reported are those of the saved image (they add up to its total loss)
    np.testing.assert_allclose(results[["content_loss", "style_loss", "tv_loss"]].sum(axis=1),
                               results["total_loss"], rtol=1e-4)
    for rel in results["image"]:
        out = repo / "reports" / "stylized" / rel
        img = np.asarray(Image.open(out))
        assert img.std() > 1.0                          # never a black or constant image
        assert out.with_name(out.stem + "_panel.png").exists()
        assert out.with_name(out.stem + "_loss.png").exists()


def test_cli_classify_and_stylize(pipeline_repo, tmp_path):
    repo, _, _ = pipeline_repo
    painting = next((repo / "data" / "raw").rglob("*.jpg"))
    env = {**os.environ, "PYTHONPATH": str(repo / "src")}
    out = subprocess.run([sys.executable, "-m", "artstyle.cli", "classify", str(painting),
                          "--model", "best_cnn", "--top", "3"], cwd=repo, env=env,
                         capture_output=True, text=True, check=True).stdout.strip().splitlines()
    assert out[0] == f"{painting}: art movement by best_cnn"
    assert out[-1].startswith("note: the model was trained on") and "synthetic" in out[-1].lower()
    probs = [float(line.split("%")[0]) / 100 for line in out[1:-1]]
    assert len(probs) == 3
    assert probs == sorted(probs, reverse=True) and sum(probs) <= 1.0001
    target = tmp_path / "out.png"
    subprocess.run([sys.executable, "-m", "artstyle.cli", "stylize", "sklearn:china.jpg",
                    str(painting), "-o", str(target), "--iterations", "3", "--max-side", "40",
                    "--init", "content"],
                   cwd=repo, env=env, capture_output=True, text=True, check=True)
    img = Image.open(target)
    assert max(img.size) == 40 and img.size[0] > img.size[1]   # china.jpg is landscape
