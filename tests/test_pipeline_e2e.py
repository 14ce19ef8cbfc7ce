"""A tiny end-to-end ``dvc repro`` of the whole pipeline in a temporary copy of the repository.

Runs every stage on a miniature synthetic sample (random VGG19 weights from a local file,
so no network), then checks that a second ``dvc repro`` runs nothing and that changing
only a training parameter re-runs training and evaluation but not download or prepare.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from artstyle.sandbox import copy_repo, ran_stages, run_dvc, tiny_params, write_random_vgg19

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
    try:
        dry = dvc(repo, "repro", "--dry")
        stages = ran_stages(dry.stdout)
        assert {"train@best_cnn", "evaluate@best_cnn", "compare"} <= stages
        assert not stages & {"download", "prepare", "pretrained", "train@baseline_cnn"}
    finally:
        (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
