"""Shared pytest fixtures, and the session's tiny pipeline.

The tests that run DVC (``test_pipeline_e2e.py``, ``test_remote.py``,
``test_experiments.py``) share ONE build of the pipeline on the tiny sample
(``sandbox.build_tiny_pipeline``): ``tiny_baseline`` after its first step (the baseline
CNN and its upstream stages), ``tiny_pipeline`` when every stage is built; each test works
in its own copy (``baseline_copy``, ``pipeline_copy``). The build starts in the background
when the session starts (``dvc repro`` runs in subprocesses while the other tests run in
this process), and those tests run last. Work that only needs the built pipeline
(registered with ``sandbox.after_build``) starts in the background as soon as its part
is built; tests wait for it with ``pipeline_job``.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sandbox
from sandbox import Background, TinyPipeline, build_tiny_pipeline, copy_pipeline

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"

# Names of the after-build jobs this session needs; absent: no selected test uses the pipeline.
_JOBS_NEEDED = pytest.StashKey[list]()
_SESSION = pytest.StashKey["_Session"]()


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The read-only ``../shared`` folder; skips the test when it is absent."""
    if not SHARED.is_dir():
        pytest.skip("../shared is absent (it exists only on the project's machines); "
                    "this test needs its real paintings or images")
    return SHARED


# --------------------------------------------------------------------------- the tiny pipeline


@pytest.hookimpl(trylast=True)  # after -m / -k deselection
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run the tests that need the pipeline last, while it builds: first those that need
    only the baseline CNN (built first), then those that need all of it, at the very end
    those that wait for an after-build job. Note which jobs the selected tests need."""
    def rank(item: pytest.Item) -> int:
        names = getattr(item, "fixturenames", ())
        return (3 if "pipeline_job" in names else 2 if "tiny_pipeline" in names
                else 1 if "tiny_baseline" in names else 0)

    ranks = {id(item): rank(item) for item in items}
    if not any(ranks.values()):
        return
    items.sort(key=lambda item: ranks[id(item)])  # stable: the file order within each group
    files = {Path(str(item.path)).resolve() for item in items if ranks[id(item)]}
    config.stash[_JOBS_NEEDED] = [name for name, (file, _, _) in sandbox.AFTER_BUILD.items()
                                  if file in files]


class _Session:
    """The background build and the after-build jobs of one session."""

    def __init__(self, tmp_path_factory: pytest.TempPathFactory, jobs: list[str]):
        root = tmp_path_factory.mktemp("tiny-pipeline")
        # Keras is not thread-safe: the weights are written here, before any thread starts.
        weights = sandbox.write_random_imagenet_weights(root / "vgg19_random.weights.h5")
        self._baseline: TinyPipeline | BaseException | None = None
        self.baseline_seconds: float | None = None
        self._baseline_ready = threading.Event()
        self.build = Background("building the tiny pipeline", self._build, root, weights)
        # Every other dvc run yields the CPU to the build (the tests in this process do
        # not: the build is one process at a time, they share the 2 cores with it).
        self._nice_before, sandbox.default_nice = sandbox.default_nice, 10
        self.jobs = {}
        for name in jobs:
            _, baseline, fn = sandbox.AFTER_BUILD[name]
            self.jobs[name] = Background(name, self._after_build, fn, baseline,
                                         tmp_path_factory.mktemp(name))

    def _build(self, root: Path, weights: Path) -> TinyPipeline:
        def on_baseline(pipeline: TinyPipeline) -> None:
            self._baseline = pipeline
            self.baseline_seconds = time.monotonic() - self.build.started
            self._baseline_ready.set()

        try:
            return build_tiny_pipeline(root, weights, on_baseline=on_baseline)
        finally:
            self._baseline_ready.set()  # also when step 1 failed: baseline() then re-raises

    def baseline(self) -> TinyPipeline:
        """Waits for step 1 of the build (the baseline CNN)."""
        self._baseline_ready.wait()
        if self._baseline is None:
            self.build.result()  # raises the build's error
        return self._baseline

    def _after_build(self, fn: Callable[[TinyPipeline, Path], Any], baseline: bool,
                     workdir: Path) -> Any:
        return fn(self.baseline() if baseline else self.build.result(), workdir)

    def timeline(self) -> str:
        """When the build's steps and the after-build jobs ended, in seconds from its start."""
        def at(job: Background) -> str:
            return "not finished" if job.finished is None else f"{job.finished - t0:.0f} s"

        t0 = self.build.started
        parts = [f"baseline {self.baseline_seconds:.0f} s" if self.baseline_seconds else
                 "baseline not finished", f"whole pipeline {at(self.build)}"]
        parts += [f"{name} {at(job)}" for name, job in self.jobs.items()]
        return "tiny pipeline, seconds from its start: " + ", ".join(parts)

    def stop(self) -> None:
        sandbox.default_nice = self._nice_before
        sandbox.stop_all_dvc()
        for job in [self.build, *self.jobs.values()]:
            job.join(30)


@pytest.fixture(scope="session", autouse=True)
def _pipeline_session(request, tmp_path_factory):
    """Starts the build (and the jobs) at the session's first test, when any test needs it."""
    jobs = request.config.stash.get(_JOBS_NEEDED, None)
    if jobs is None:
        yield None
        return
    session = _Session(tmp_path_factory, jobs)
    request.config.stash[_SESSION] = session
    yield session
    session.stop()  # normally all done; after a failure or Ctrl-C, stop what still runs


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    """One line: when the tiny pipeline's build and jobs ended (what ``make test`` waits on)."""
    session = config.stash.get(_SESSION, None)
    if session is not None:
        terminalreporter.write_line(session.timeline())


def _started(session: _Session | None, name: str) -> _Session:
    if session is None:  # only when requested dynamically, unknown at collection
        pytest.fail(f"{name} must be requested as a fixture argument (known at collection)")
    return session


@pytest.fixture(scope="session")
def tiny_pipeline(_pipeline_session) -> TinyPipeline:
    """Every stage of the pipeline, run once per session on the tiny sample, committed.

    Random VGG19 weights from a local file (no network), the miniature synthetic sample,
    a few epochs (``sandbox.tiny_params``), two ``dvc repro`` runs
    (``sandbox.build_tiny_pipeline``). Shared: only read it, or take a copy
    (``pipeline_copy``).
    """
    return _started(_pipeline_session, "tiny_pipeline").build.result()


@pytest.fixture(scope="session")
def tiny_baseline(_pipeline_session) -> TinyPipeline:
    """The tiny pipeline after its first step: ``evaluate@baseline_cnn`` and every stage
    upstream of it, committed. Ready well before ``tiny_pipeline``; shared, read only
    (take a copy: ``baseline_copy``)."""
    return _started(_pipeline_session, "tiny_baseline").baseline()


def _copier(source: TinyPipeline, tmp_path_factory: pytest.TempPathFactory):
    made: list[Path] = []

    def make() -> Path:
        dest = tmp_path_factory.mktemp("pipeline-copy") / "repo"
        made.append(copy_pipeline(source.repo, dest))
        return dest

    return make, made


@pytest.fixture
def pipeline_copy(tiny_pipeline, tmp_path_factory) -> Callable[[], Path]:
    """Factory: ``pipeline_copy()`` returns a fresh private copy of ``tiny_pipeline.repo``."""
    make, made = _copier(tiny_pipeline, tmp_path_factory)
    yield make
    for path in made:  # a copy holds a few hundred MB
        shutil.rmtree(path.parent, ignore_errors=True)


@pytest.fixture
def baseline_copy(tiny_baseline, tmp_path_factory) -> Callable[[], Path]:
    """Factory: ``baseline_copy()`` returns a fresh private copy of ``tiny_baseline.repo``."""
    make, made = _copier(tiny_baseline, tmp_path_factory)
    yield make
    for path in made:
        shutil.rmtree(path.parent, ignore_errors=True)


@pytest.fixture(scope="session")
def pipeline_job(_pipeline_session) -> Callable[[str], Any]:
    """``pipeline_job(name)``: waits for the ``sandbox.after_build`` job ``name``, returns its result."""
    session = _started(_pipeline_session, "pipeline_job")
    return lambda name: session.jobs[name].result()
