"""DVC remote-storage round trips: push, pull into a fresh clone, detect a missing object.

For each remote kind (a local/network folder, and SSH served by a real OpenSSH server
on 127.0.0.1) the test

1. configures the remote and ``dvc push``es every cached output of the project;
2. ``git clone``s the project afresh, ``dvc pull``s, and checks that ``dvc status``
   (workspace and ``--cloud``) reports everything up to date and that the pulled
   model predicts exactly what the original does;
3. deletes one object from the remote and checks that ``dvc pull`` in another fresh
   clone fails with a non-zero exit naming the missing output and its hash.

The project under test comes from the ``project_under_test`` fixture.  For now it is a
self-contained tiny DVC project (a directory dataset of small CSV files tracked with
``dvc add``, a ``train`` stage fitting a logistic regression to ``models/model.pkl``, a
``predict`` stage writing ``predictions/preds.csv``).  To test the real pipeline instead,
make the fixture return a :class:`ProjectUnderTest` for a committed copy of the repo with
its outputs in the DVC cache, a ``predict`` function for the real model and the output
to delete.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import yaml

import sshd

pytestmark = pytest.mark.slow

PY_BIN = Path(sys.executable).parent


# --------------------------------------------------------------------------- helpers


def run(args: list[str], cwd: Path, env: dict[str, str], check: bool = True,
        timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run a command; on unexpected failure show its output."""
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited {proc.returncode} in {cwd}\n"
                             f"stdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}")
    return proc


def dvc(*args: str, cwd: Path, env: dict[str, str], check: bool = True):
    return run([sys.executable, "-m", "dvc", *args], cwd=cwd, env=env, check=check)


def git(*args: str, cwd: Path, env: dict[str, str]):
    return run(["git", *args], cwd=cwd, env=env)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def lock_md5(repo: Path, out_path: str) -> str:
    """The md5 DVC recorded for ``out_path`` in dvc.lock (or its .dvc file)."""
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    for stage in lock["stages"].values():
        for out in stage.get("outs", []):
            if out["path"] == out_path:
                return out["md5"]
    dvcfile = repo / f"{out_path}.dvc"
    if dvcfile.exists():
        return yaml.safe_load(dvcfile.read_text())["outs"][0]["md5"]
    raise KeyError(f"{out_path} is not an output in dvc.lock or {dvcfile.name}")


def remote_object(remote_dir: Path, md5: str) -> Path:
    """Location of a cache object in a DVC 3 remote (``files/md5/ab/cdef...``)."""
    return remote_dir / "files" / "md5" / md5[:2] / md5[2:]


def cache_objects(md5_dir: Path) -> set[str]:
    """Object ids (``ab/cdef...``) stored under a cache's or remote's ``files/md5``."""
    return {p.relative_to(md5_dir).as_posix() for p in md5_dir.rglob("*") if p.is_file()}


@dataclass(frozen=True)
class ProjectUnderTest:
    """A committed DVC project whose outputs are in its local cache.

    root : the git + DVC repo (tests copy it, never modify it)
    predict : ``predict(repo_dir) -> np.ndarray`` -- predictions of the model found in
        a checkout, on fixed inputs, to compare the original and a pulled copy
    model : workspace path of the model output (deleted from the remote in the test)
    outputs : workspace paths of the cached outputs that a pull must restore
    """

    root: Path
    predict: Callable[[Path], np.ndarray]
    model: str
    outputs: tuple[str, ...]


# --------------------------------------------------------------------------- tiny project

TRAIN_PY = '''\
"""Train a logistic regression on data/raw/*.csv -> models/model.pkl, metrics.json."""
import json, os, pickle
from pathlib import Path
import numpy as np
from sklearn.linear_model import LogisticRegression

rows = np.concatenate([np.loadtxt(p, delimiter=",", ndmin=2)
                       for p in sorted(Path("data/raw").glob("*.csv"))])
x, y = rows[:, :2], rows[:, 2].astype(int)
model = LogisticRegression().fit(x, y)
Path("models").mkdir(exist_ok=True)
with open("models/.model.pkl.tmp", "wb") as f:
    pickle.dump(model, f)
os.replace("models/.model.pkl.tmp", "models/model.pkl")
Path("metrics.json").write_text(json.dumps({"accuracy": float(model.score(x, y))}))
'''

PREDICT_PY = '''\
"""Predict class-1 probabilities for every row of data/raw -> predictions/preds.csv."""
import os, pickle
from pathlib import Path
import numpy as np

rows = np.concatenate([np.loadtxt(p, delimiter=",", ndmin=2)
                       for p in sorted(Path("data/raw").glob("*.csv"))])
with open("models/model.pkl", "rb") as f:
    model = pickle.load(f)
Path("predictions").mkdir(exist_ok=True)
np.savetxt("predictions/.preds.csv.tmp", model.predict_proba(rows[:, :2])[:, 1], fmt="%.8f")
os.replace("predictions/.preds.csv.tmp", "predictions/preds.csv")
'''

DVC_YAML = '''\
stages:
  train:
    cmd: python train.py
    deps: [train.py, data/raw]
    outs: [models/model.pkl]
    metrics:
      - metrics.json:
          cache: false
  predict:
    cmd: python predict.py
    deps: [predict.py, models/model.pkl, data/raw]
    outs: [predictions/preds.csv]
'''


def predict_tiny(repo: Path) -> np.ndarray:
    """Class-1 probabilities of the repo's models/model.pkl on a fixed 7x7 grid."""
    with open(repo / "models" / "model.pkl", "rb") as f:
        model = pickle.load(f)  # noqa: S301 - our own test artefact
    g = np.linspace(-3, 3, 7)
    grid = np.stack(np.meshgrid(g, g), axis=-1).reshape(-1, 2)
    return model.predict_proba(grid)[:, 1]


def build_tiny_project(root: Path, env: dict[str, str]) -> ProjectUnderTest:
    root.mkdir(parents=True)
    git("init", "-q", "-b", "main", cwd=root, env=env)
    dvc("init", "-q", cwd=root, env=env)
    # A directory dataset of many small files, like the paintings folder.
    raw = root / "data" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(42)
    for i in range(24):
        x = rng.normal(size=(5, 2))
        y = (x[:, 0] + 0.5 * x[:, 1] + 0.3 * rng.normal(size=5) > 0).astype(int)
        np.savetxt(raw / f"part-{i:03d}.csv", np.column_stack([x, y]), delimiter=",",
                   fmt="%.6f")
    (root / "train.py").write_text(TRAIN_PY)
    (root / "predict.py").write_text(PREDICT_PY)
    (root / "dvc.yaml").write_text(DVC_YAML)
    dvc("add", "-q", "data/raw", cwd=root, env=env)
    dvc("repro", "-q", cwd=root, env=env)
    git("add", "-A", cwd=root, env=env)
    git("commit", "-q", "-m", "tiny pipeline", cwd=root, env=env)
    return ProjectUnderTest(root=root, predict=predict_tiny, model="models/model.pkl",
                            outputs=("data/raw", "models/model.pkl", "predictions/preds.csv"))


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def dvc_env(tmp_path_factory) -> dict[str, str]:
    """Environment for dvc/git: venv python first on PATH, isolated DVC site cache."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(PY_BIN), env.get("PATH", "")])
    env["DVC_NO_ANALYTICS"] = "1"
    env["DVC_SITE_CACHE_DIR"] = str(tmp_path_factory.mktemp("dvc-site-cache"))
    env.setdefault("GIT_AUTHOR_NAME", "artstyle tests")
    env.setdefault("GIT_AUTHOR_EMAIL", "tests@example.invalid")
    env.setdefault("GIT_COMMITTER_NAME", env["GIT_AUTHOR_NAME"])
    env.setdefault("GIT_COMMITTER_EMAIL", env["GIT_AUTHOR_EMAIL"])
    return env


@pytest.fixture(scope="module")
def project_under_test(tmp_path_factory, dvc_env) -> ProjectUnderTest:
    """The DVC project whose outputs are pushed and pulled (tiny stand-in for now)."""
    return build_tiny_project(tmp_path_factory.mktemp("project") / "repo", dvc_env)


@pytest.fixture(scope="module")
def ssh_server(tmp_path_factory):
    try:
        with sshd.running_sshd(tmp_path_factory.mktemp("sshd")) as server:
            yield server
    except sshd.SSHDUnavailable as exc:
        pytest.skip(f"SSH remote not tested: {exc}")


@dataclass(frozen=True)
class Remote:
    kind: str
    url: str
    storage_dir: Path  # where the objects land on the (local) filesystem
    local_options: dict[str, str]  # per-machine settings (credentials): .dvc/config.local
    server_log: Path | None = None  # sshd's log, to prove the transfers went over SSH


@pytest.fixture(params=["local", "ssh"])
def remote(request, tmp_path) -> Remote:
    storage = tmp_path / f"{request.param}-storage"
    if request.param == "local":
        return Remote("local", str(storage), storage, {})
    server: sshd.SSHServer = request.getfixturevalue("ssh_server")
    storage.mkdir()
    return Remote("ssh", server.url(storage), storage, {"keyfile": str(server.client_key)},
                  server_log=server.state_dir / "sshd.log")


# --------------------------------------------------------------------------- the test


def configure_remote(repo: Path, remote: Remote, env: dict[str, str]) -> None:
    for key, value in remote.local_options.items():
        dvc("remote", "modify", "--local", "storage", key, value, cwd=repo, env=env)


def fresh_clone(src: Path, dst: Path, remote: Remote, env: dict[str, str]) -> Path:
    git("clone", "-q", str(src), str(dst), cwd=src.parent, env=env)
    configure_remote(dst, remote, env)
    return dst


def test_push_pull_roundtrip_and_missing_object(project_under_test, remote, tmp_path, dvc_env):
    project, env = project_under_test, dvc_env
    work = tmp_path / "work"
    shutil.copytree(project.root, work, symlinks=True)

    # 1. add the remote (URL committed for the team, credentials in config.local) and push
    dvc("remote", "add", "-d", "storage", remote.url, cwd=work, env=env)
    configure_remote(work, remote, env)
    git("add", ".dvc/config", cwd=work, env=env)
    git("commit", "-q", "-m", f"{remote.kind} remote", cwd=work, env=env)
    assert "config.local" not in git("ls-files", ".dvc", cwd=work, env=env).stdout
    dvc("push", cwd=work, env=env)
    # The remote holds exactly the objects of the cached outputs: one per file plus a
    # .dir manifest per directory output (metrics with cache: false stay in Git).
    expected = set()
    for out in project.outputs:
        md5 = lock_md5(work, out)
        expected.add(f"{md5[:2]}/{md5[2:]}")
        if md5.endswith(".dir"):
            manifest = work / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]
            entries = json.loads(manifest.read_text())
            assert len(entries) == sum(1 for p in (work / out).rglob("*") if p.is_file())
            expected |= {f"{e['md5'][:2]}/{e['md5'][2:]}" for e in entries}
    assert cache_objects(remote.storage_dir / "files" / "md5") == expected
    if remote.server_log is not None:
        log = remote.server_log.read_text()
        assert "Accepted publickey for" in log and "subsystem 'sftp'" in log, log[-2000:]
    assert remote_object(remote.storage_dir, lock_md5(work, project.model)).is_file()
    dir_md5 = lock_md5(work, "data/raw")
    assert dir_md5.endswith(".dir")  # a directory output: one object per file + manifest
    assert remote_object(remote.storage_dir, dir_md5).is_file()
    cloud = dvc("status", "--cloud", "--json", cwd=work, env=env)
    assert json.loads(cloud.stdout or "{}") == {}

    # 2. a fresh clone pulls everything back: up to date, identical model and predictions
    clone = fresh_clone(work, tmp_path / "clone", remote, env)
    for out in project.outputs:
        assert not (clone / out).exists()
    dvc("pull", cwd=clone, env=env)
    status = dvc("status", "--json", cwd=clone, env=env)
    assert json.loads(status.stdout or "{}") == {}, status.stdout
    cloud = dvc("status", "--cloud", "--json", cwd=clone, env=env)
    assert json.loads(cloud.stdout or "{}") == {}, cloud.stdout
    for out in project.outputs:
        original, pulled = work / out, clone / out
        if original.is_dir():
            files = sorted(p.relative_to(original) for p in original.rglob("*") if p.is_file())
            assert files == sorted(p.relative_to(pulled) for p in pulled.rglob("*")
                                   if p.is_file())
            assert all(sha256(original / f) == sha256(pulled / f) for f in files)
        else:
            assert sha256(original) == sha256(pulled), out
    expected = project.predict(work)
    assert expected.size > 0 and np.isfinite(expected).all()
    np.testing.assert_array_equal(project.predict(clone), expected)

    # 3. an object lost from the remote makes a pull fail, naming what is missing
    model_md5 = lock_md5(work, project.model)
    remote_object(remote.storage_dir, model_md5).unlink()
    broken = fresh_clone(work, tmp_path / "clone-broken", remote, env)
    pull = dvc("pull", cwd=broken, env=env, check=False)
    output = pull.stdout + pull.stderr
    assert pull.returncode != 0, output
    assert project.model in output, output
    assert model_md5 in output, output
    assert not (broken / project.model).exists()
    # everything else still arrived
    for out in project.outputs:
        if out != project.model:
            assert (broken / out).exists(), out
