"""params.yaml schema: fails fast naming the key; dvc.yaml only names keys that exist."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml
from conftest import REPO_ROOT

from artstyle import paths
from artstyle.config import ParamsError, load_params, parse_params

RAW = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())


def test_repository_params_are_valid():
    params = load_params(REPO_ROOT / "params.yaml")
    assert params.data.source == "sample"
    models = params.all_models()
    assert {"baseline_cnn", "best_cnn", "balanced_cnn", "vgg19_transfer"} <= set(models)
    grid = [n for n in models if n.startswith("grid_")]
    assert sorted(grid) == ["grid_u16_d0.0", "grid_u16_d0.5", "grid_u8_d0.0", "grid_u8_d0.5"]
    assert models["grid_u16_d0.5"].dense_units == 16
    assert models["grid_u16_d0.5"].dropout == 0.5
    assert list(params.grid_cells()) == ["grid_u8_d0.0", "grid_u8_d0.5", "grid_u16_d0.0",
                                         "grid_u16_d0.5"]


def test_grid_cells_live_in_the_grid_folders():
    assert paths.model_dir("grid_u8_d0.5") == Path("models/grid/grid_u8_d0.5")
    assert paths.train_report("grid_u8_d0.5") == Path("reports/grid/cells/grid_u8_d0.5")
    assert paths.model_dir("best_cnn") == Path("models/best_cnn")
    assert paths.train_report("best_cnn") == Path("reports/train/best_cnn")


@pytest.mark.parametrize("mutate, key, message", [
    (lambda r: r["base"].update(sed=1), "base.sed", "unknown key"),
    (lambda r: r["models"]["best_cnn"].update(dropuot=0.2), "models.best_cnn.dropuot", "unknown key"),
    (lambda r: r["models"].update(extra={"input_size": 32}), "models.extra.family", "missing key"),
    (lambda r: r["prepare"].update(test_fraction=0), "prepare.test_fraction", "greater than 0"),
    (lambda r: r["prepare"].update(val_fraction=0.0), "prepare.val_fraction", "greater than 0"),
    (lambda r: r["stylize"].update(scales=[1.0, 0.5]), "stylize.scales", "end in 1.0"),
    (lambda r: r["prepare"].update(val_fraction="lots"), "prepare.val_fraction", ""),
    (lambda r: r["data"].update(source="pandora99"), "data.source", ""),
    (lambda r: r.pop("stylize"), "stylize", "missing key"),
    (lambda r: r["data"]["sample"].update(images_per_class=10, imbalance=3.0), "data.sample",
     "the smallest class would have 3 images"),
    (lambda r: r["data"]["sample"].update(imbalance=0.5), "data.sample.imbalance", ""),
    (lambda r: r["grid"].update(dense_units=[]), "grid.dense_units", "at least 1"),
    (lambda r: r["grid"].update(dropout=[0.5, 0.5]), "grid", "grid.dropout lists a value twice"),
    (lambda r: r["boost"].update(sources=["nope"]), "", "boost.sources names 'nope', not a key of models"),
    (lambda r: r["boost"].update(sources=["grid_u8_d0.5"]), "", "(a grid cell: copy its settings"),
    (lambda r: r["ensembles"]["style_ensemble"]["members"].append("grid_u8_d0.5"), "",
     "names grid cell(s) ['grid_u8_d0.5']"),
])
def test_bad_params_name_the_key(mutate, key, message):
    raw = copy.deepcopy(RAW)
    mutate(raw)
    with pytest.raises(ParamsError) as err:
        parse_params(raw)
    assert key in str(err.value) and message in str(err.value)


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ParamsError, match="not found"):
        load_params(tmp_path / "nope.yaml")
    (tmp_path / "p.yaml").write_text("base: [unclosed")
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_params(tmp_path / "p.yaml")


def _lookup(raw: dict, dotted: str) -> bool:
    node = raw
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def _resolve(text: str) -> str:
    for ref in re.findall(r"\$\{([^}]+)\}", text):
        node = RAW
        for part in ref.split("."):
            node = node[part]
        text = text.replace("${" + ref + "}", str(node))
    return text


def _expand(template: str, foreach) -> list[str]:
    """Resolve ``${key}``/``${item}`` of a foreach stage and ``${group.key}`` references."""
    if isinstance(foreach, dict):
        return [_resolve(template.replace("${key}", k)) for k in foreach]
    if isinstance(foreach, list):
        return [_resolve(template.replace("${item}", str(v))) for v in foreach]
    return [_resolve(template)]


def test_every_params_key_in_dvc_yaml_exists():
    dvc = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())
    checked = 0
    for name, stage in dvc["stages"].items():
        body = stage.get("do", stage)
        foreach = stage.get("foreach")
        if isinstance(foreach, str):
            foreach = _resolve_node(foreach)
        for entry in body.get("params", []):
            assert isinstance(entry, str), f"{name}: only params.yaml keys are expected"
            for key in _expand(entry, foreach):
                assert _lookup(RAW, key), f"stage {name} lists params key {key!r} missing from params.yaml"
                checked += 1
    assert checked > 20


def _resolve_node(ref: str):
    node = RAW
    for part in ref.strip("${}").split("."):
        node = node[part]
    return node


def test_dvc_yaml_paths_match_paths_module():
    text = (REPO_ROOT / "dvc.yaml").read_text()
    for p in (paths.RAW, paths.PREPARED, paths.PRETRAINED, paths.MODELS_TABLE, paths.DATA_REPORT,
              paths.TRAIN_REPORTS, paths.EVAL_REPORTS, paths.COMPARE):
        assert p.as_posix() in text, p


@pytest.mark.parametrize("group, old, new", [
    ("models.best_cnn", "warmup_epochs", "start_from_epoch"),
    ("models.best_cnn", "conv_dropout", "pooled_dropout"),
    ("stylize", "iterations", "max_evaluations"),
    ("stylize", "schedule", "scales"),
])
def test_renamed_key_names_the_new_key(group, old, new):
    raw = copy.deepcopy(RAW)
    node = raw
    for part in group.split("."):
        node = node[part]
    node[old] = node.pop(new)
    with pytest.raises(ParamsError) as err:
        parse_params(raw)
    assert f"{group}.{old}: renamed: write {group}.{new}" in str(err.value)


def test_omitted_keys_take_the_schema_defaults():
    raw = copy.deepcopy(RAW)
    del raw["boost"]["n_estimators"], raw["stylize"]["max_side"], raw["base"]["seed"]
    params = parse_params(raw)
    assert params.boost.n_estimators == 300
    assert params.stylize.max_side == 128      # the stage's default (the command's: 512)
    assert params.base.seed == 42


def test_params_yaml_repeats_the_stage_defaults_of_the_schema():
    """One set of stylize defaults, owned by the schema: params.yaml's ``stylize`` group
    equals ``StylizeParams()``; the command line starts from ``TransferParams()``."""
    from artstyle.config import StylizeParams, TransferParams
    from artstyle.stylize import command_settings

    assert parse_params(copy.deepcopy(RAW)).stylize == StylizeParams()
    command = command_settings()
    assert command.model_dump(include=set(TransferParams.model_fields)) == \
        TransferParams().model_dump()
    assert (command.max_side, command.max_evaluations, command.compute_dtype) == (512, 150, "auto")
    assert (StylizeParams().max_side, StylizeParams().max_evaluations,
            StylizeParams().compute_dtype) == (128, 40, "float32")
