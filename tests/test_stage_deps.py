"""Each stage in ``dvc.yaml`` depends on exactly the code it runs.

The code a stage runs is its script in ``stages/`` plus every module of ``src/artstyle``
that the script imports, directly or through other modules, at the top of a file or
inside a function (both run), and the ``__init__.py`` of every package on the way that
has code. ``TYPE_CHECKING`` blocks do not run and do not count. A module missing from a
stage's ``deps`` would let a cached output outlive the code that made it; a module
listed but not run would re-run the stage for nothing.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml
from sandbox import ensemble_data_deps, sync_ensemble_stages

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"


def _module_file(module: str) -> Path | None:
    """The file of an ``artstyle...`` module or package, or None when there is none."""
    base = SRC.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imported_modules(path: Path) -> set[str]:
    """Every module name an import statement of ``path`` can load, TYPE_CHECKING aside."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    skipped = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
               and _is_type_checking(node) for n in ast.walk(node)}
    names: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            # ``from package import name`` loads a submodule when ``name`` is one
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def code_closure(script: Path) -> set[Path]:
    """Files of this repository that running ``script`` executes (itself included)."""
    seen: set[Path] = set()
    todo = [script]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in _imported_modules(path):
            if name == "_common":
                todo.append(REPO / "stages" / "_common.py")
                continue
            if not name.startswith("artstyle"):
                continue
            parts = name.split(".")
            for i in range(1, len(parts) + 1):  # parent packages run their __init__ first
                found = _module_file(".".join(parts[:i]))
                if found is not None and (found.name != "__init__.py"
                                          or found.read_text(encoding="utf-8").strip()):
                    todo.append(found)
    return seen


def stage_code(dvc_yaml: dict) -> dict[str, tuple[Path, set[str]]]:
    """For each stage (foreach/matrix bodies once): its script and the code files in deps."""
    out = {}
    for name, stage in dvc_yaml["stages"].items():
        body = stage.get("do", stage)
        script = REPO / body["cmd"].split()[1]
        code = {d for d in body.get("deps", []) if isinstance(d, str) and d.endswith(".py")}
        out[name] = (script, code)
    return out


def dependency_problems(dvc_yaml: dict) -> dict[str, dict[str, list[str]]]:
    """Per stage, the code files it runs but does not list, and those it lists but never runs."""
    problems = {}
    for name, (script, listed) in stage_code(dvc_yaml).items():
        run = {p.relative_to(REPO).as_posix() for p in code_closure(script)}
        missing, extra = sorted(run - listed), sorted(listed - run)
        if missing or extra:
            problems[name] = {"missing": missing, "not run": extra}
    return problems


@pytest.fixture(scope="module")
def dvc_yaml() -> dict:
    return yaml.safe_load((REPO / "dvc.yaml").read_text(encoding="utf-8"))


def test_every_stage_lists_exactly_the_code_it_runs(dvc_yaml):
    assert dependency_problems(dvc_yaml) == {}


def test_the_lock_file_records_exactly_the_stages_of_dvc_yaml():
    # A stage removed from dvc.yaml leaves its entry in dvc.lock (DVC keeps it): every
    # repro then parses and rewrites it for nothing.
    import subprocess
    import sys

    listed = subprocess.run([str(Path(sys.executable).with_name("dvc")), "stage", "list",
                             "--name-only"], cwd=REPO, capture_output=True, text=True,
                            check=True).stdout.split()
    locked = yaml.safe_load((REPO / "dvc.lock").read_text(encoding="utf-8"))["stages"]
    assert sorted(locked) == sorted(listed)


def test_a_removed_dependency_is_reported(dvc_yaml):
    stage = dvc_yaml["stages"]["evaluate"]["do"]
    stage["deps"] = [d for d in stage["deps"] if d != "src/artstyle/evaluation.py"]
    assert dependency_problems(dvc_yaml)["evaluate"] == {
        "missing": ["src/artstyle/evaluation.py"], "not run": []}


def test_a_dependency_that_never_runs_is_reported(dvc_yaml):
    dvc_yaml["stages"]["download"]["deps"].append("src/artstyle/nst/losses.py")
    assert dependency_problems(dvc_yaml)["download"] == {
        "missing": [], "not run": ["src/artstyle/nst/losses.py"]}


def test_closure_follows_imports_inside_functions(tmp_path):
    # stages/evaluate.py imports the library only inside main(): those imports run too.
    closure = {p.relative_to(REPO).as_posix() for p in code_closure(REPO / "stages" / "evaluate.py")}
    assert {"stages/_common.py", "src/artstyle/evaluation.py", "src/artstyle/config.py",
            "src/artstyle/models/zoo.py"} <= closure
    assert "src/artstyle/nst/losses.py" not in closure


def ensemble_deps_problems(dvc_yaml: dict, params: dict) -> list[str]:
    """What the written-out ``ensemble_<name>`` stages get wrong against ``params.yaml``."""
    problems = []
    ensembles = params.get("ensembles") or {}
    stages = {n: s for n, s in dvc_yaml["stages"].items() if n.startswith("ensemble_")}
    for name in sorted(set(stages) - {f"ensemble_{e}" for e in ensembles}):
        problems.append(f"{name}: no ensemble {name.removeprefix('ensemble_')} in params.yaml")
    for name, spec in ensembles.items():
        stage = stages.get(f"ensemble_{name}")
        if stage is None:
            problems.append(f"ensemble {name}: no stage ensemble_{name} in dvc.yaml")
            continue
        if stage["cmd"].split()[1:] != ["stages/evaluate_ensemble.py", name]:
            problems.append(f"ensemble_{name}: cmd must be python stages/evaluate_ensemble.py {name}")
        expected = set(ensemble_data_deps(params, name))
        data = {d for d in stage["deps"] if isinstance(d, str) and not d.endswith(".py")}
        if data != expected:
            problems.append(f"ensemble_{name}: data deps {sorted(data)}, expected {sorted(expected)}")
    return problems


def test_each_ensemble_stage_depends_on_exactly_its_members(dvc_yaml):
    params = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    assert ensemble_deps_problems(dvc_yaml, params) == []


def test_an_ensemble_member_missing_from_its_stage_is_reported(dvc_yaml):
    params = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    params["ensembles"]["style_ensemble"]["members"].append("vgg19_transfer")
    params["ensembles"]["extra"] = {"members": ["best_cnn", "xgb_best_cnn"]}
    problems = ensemble_deps_problems(dvc_yaml, params)
    assert any("vgg19_transfer" in p and "ensemble_style_ensemble" in p for p in problems)
    assert "ensemble extra: no stage ensemble_extra in dvc.yaml" in problems


def test_the_sandbox_rewrites_ensemble_stages_for_its_params(tmp_path):
    import shutil

    shutil.copy(REPO / "dvc.yaml", tmp_path / "dvc.yaml")
    params = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    params["ensembles"] = {"mixed": {"members": ["style_lite0", "best_cnn", "xgb_best_cnn"]}}
    sync_ensemble_stages(tmp_path, params)
    rewritten = yaml.safe_load((tmp_path / "dvc.yaml").read_text(encoding="utf-8"))
    assert ensemble_deps_problems(rewritten, params) == []
    assert dependency_problems(rewritten) == {}
    assert rewritten["stages"]["ensemble_mixed"]["outs"][0] == "models/mixed"
