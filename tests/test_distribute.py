"""Tests for artstyle.distribute: strategy selection, batch/LR scaling, chief-only writing,
and a real two-process MultiWorkerMirroredStrategy run on 127.0.0.1."""

from __future__ import annotations

import json
import logging
import math
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from artstyle.distribute import (
    TFConfigError,
    chief_output,
    is_chief,
    make_strategy,
    num_workers,
    parse_tf_config,
    scale_batch_and_lr,
    worker_output_path,
)

REPO_ROOT = Path(__file__).resolve().parents[1]


def tf_config(workers: int, task_type: str = "worker", index: int = 0, chief: bool = False) -> str:
    cluster: dict[str, list[str]] = {"worker": [f"127.0.0.1:{20000 + i}" for i in range(workers)]}
    if chief:
        cluster["chief"] = ["127.0.0.1:19999"]
    return json.dumps({"cluster": cluster, "task": {"type": task_type, "index": index}})


@pytest.fixture(autouse=True)
def _no_tf_config(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)


# --------------------------------------------------------------------------- TF_CONFIG


def test_parse_tf_config_unset_and_valid(monkeypatch):
    assert parse_tf_config() is None
    monkeypatch.setenv("TF_CONFIG", "  ")
    assert parse_tf_config() is None
    monkeypatch.setenv("TF_CONFIG", tf_config(3, index=2))
    cfg = parse_tf_config()
    assert cfg["task"] == {"type": "worker", "index": 2}
    assert cfg["cluster"]["worker"] == ["127.0.0.1:20000", "127.0.0.1:20001", "127.0.0.1:20002"]
    assert num_workers(cfg) == 3
    assert num_workers() == 3
    assert num_workers(parse_tf_config(tf_config(2, chief=True))) == 3


@pytest.mark.parametrize(("raw", "message"), [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "JSON object"),
    ('{"task": {"type": "worker", "index": 0}}', '"cluster"'),
    ('{"cluster": {"worker": []}, "task": {"type": "worker", "index": 0}}', "non-empty list"),
    ('{"cluster": {"worker": ["nohostport"]}, "task": {"type": "worker", "index": 0}}',
     "host:port"),
    ('{"cluster": {"worker": ["a:1"]}}', '"task"'),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "ps", "index": 0}}', "not a job"),
    ('{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 2}}',
     "out of range"),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": "x"}}', "integer"),
])
def test_parse_tf_config_rejects_invalid(raw, message):
    with pytest.raises(TFConfigError, match=message):
        parse_tf_config(raw)


def test_is_chief():
    assert is_chief() is True  # no TF_CONFIG: single process
    assert is_chief(parse_tf_config(tf_config(2, index=0))) is True
    assert is_chief(parse_tf_config(tf_config(2, index=1))) is False
    # With an explicit chief job, worker 0 is an ordinary worker.
    assert is_chief(parse_tf_config(tf_config(2, "chief", 0, chief=True))) is True
    assert is_chief(parse_tf_config(tf_config(2, "worker", 0, chief=True))) is False
    evaluator = json.dumps({"cluster": {"worker": ["a:1"], "evaluator": ["b:2"]},
                            "task": {"type": "evaluator", "index": 0}})
    assert is_chief(parse_tf_config(evaluator)) is False


def test_is_chief_reads_environment(monkeypatch):
    monkeypatch.setenv("TF_CONFIG", tf_config(2, index=1))
    assert is_chief() is False
    monkeypatch.setenv("TF_CONFIG", "{broken")
    with pytest.raises(TFConfigError):
        is_chief()


# --------------------------------------------------------------------------- chief-only output


def test_worker_output_path(tmp_path):
    target = tmp_path / "models" / "cnn.keras"
    assert worker_output_path(target) == target
    other = worker_output_path(target, parse_tf_config(tf_config(2, index=1)))
    try:
        assert other.name == "cnn.keras"
        assert other.parent.is_dir() and other.parent.name.startswith("artstyle-worker-worker-1-")
        assert tmp_path not in other.parents
    finally:
        other.parent.rmdir()


def test_chief_output_writes_atomically(tmp_path):
    target = tmp_path / "models" / "model.txt"
    with chief_output(target) as out:
        assert out != target and out.parent == target.parent
        assert out.name.endswith("model.txt")  # suffix kept for Keras' format detection
        out.write_text("v1")
        assert not target.exists()  # nothing visible until the block succeeds
    assert target.read_text() == "v1"
    assert sorted(p.name for p in target.parent.iterdir()) == ["model.txt"]

    # A failing writer leaves the previous output intact and no temporary behind.
    with pytest.raises(RuntimeError, match="boom"), chief_output(target) as out:
        out.write_text("half")
        raise RuntimeError("boom")
    assert target.read_text() == "v1"
    assert sorted(p.name for p in target.parent.iterdir()) == ["model.txt"]

    # Directory outputs (SavedModel-style) replace the old directory.
    d = tmp_path / "export"
    for version in ("a", "b"):
        with chief_output(d) as out:
            out.mkdir()
            (out / "version").write_text(version)
    assert (d / "version").read_text() == "b"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export", "models"]

    with pytest.raises(FileNotFoundError, match="nothing was written"):
        with chief_output(tmp_path / "never.txt"):
            pass


def test_chief_output_non_chief_writes_to_discarded_temp(tmp_path):
    target = tmp_path / "model.txt"
    cfg = parse_tf_config(tf_config(2, index=1))
    with chief_output(target, cfg) as out:
        out.write_text("worker copy")
        scratch = out.parent
        assert scratch.is_dir() and tmp_path not in out.parents
    assert not scratch.exists()
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- scaling


def test_scale_batch_and_lr_linear_rule():
    assert scale_batch_and_lr(32, 0.001, 1) == (32, 0.001)
    global_batch, lr = scale_batch_and_lr(32, 0.001, 4)
    assert global_batch == 128
    assert math.isclose(lr, 0.004)
    # Goyal et al.: 8 GPUs x 32 images at lr 0.1 per 256 -> k=8 scales 0.0125 to 0.1.
    global_batch, lr = scale_batch_and_lr(32, 0.0125, 8)
    assert (global_batch, round(lr, 12)) == (256, 0.1)


@pytest.mark.parametrize("args", [
    (0, 0.1, 2), (-8, 0.1, 2), (8.5, 0.1, 2), (True, 0.1, 2),
    (8, 0.1, 0), (8, 0.1, -1), (8, 0.1, 1.5),
    (8, 0.0, 2), (8, -0.1, 2), (8, float("nan"), 2), (8, float("inf"), 2),
])
def test_scale_batch_and_lr_rejects_bad_input(args):
    with pytest.raises(ValueError):
        scale_batch_and_lr(*args)


# --------------------------------------------------------------------------- make_strategy


def test_make_strategy_rejects_unknown_kind():
    with pytest.raises(ValueError, match="unknown strategy kind"):
        make_strategy("horovod")


def test_make_strategy_multi_worker_needs_tf_config(monkeypatch):
    with pytest.raises(TFConfigError, match="needs the TF_CONFIG"):
        make_strategy("multi_worker")
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {}}')
    with pytest.raises(TFConfigError, match='"cluster"'):
        make_strategy("multi_worker")
    with pytest.raises(TFConfigError):
        make_strategy("auto")


def test_make_strategy_none_auto_mirrored(caplog):
    import tensorflow as tf

    n_gpus = len(tf.config.list_physical_devices("GPU"))
    with caplog.at_level(logging.INFO, logger="artstyle.distribute"):
        none = make_strategy("none")
        assert none is tf.distribute.get_strategy()
        assert none.num_replicas_in_sync == 1
        assert not isinstance(none, tf.distribute.MirroredStrategy)

        auto = make_strategy("auto")
        if n_gpus > 1:
            assert isinstance(auto, tf.distribute.MirroredStrategy)
            assert auto.num_replicas_in_sync == n_gpus
        else:  # this CPU machine: no TF_CONFIG, at most one GPU -> default strategy
            assert auto is tf.distribute.get_strategy()
            assert auto.num_replicas_in_sync == 1

        mirrored = make_strategy("mirrored")
        assert isinstance(mirrored, tf.distribute.MirroredStrategy)
        assert mirrored.num_replicas_in_sync == max(1, n_gpus)
    messages = [r.getMessage() for r in caplog.records]
    assert any("requested 'none'" in m and "1 replica(s)" in m for m in messages)
    assert any("MirroredStrategy (requested 'mirrored')" in m for m in messages)

    # A one-device MirroredStrategy trains a Keras model like the default strategy.
    import keras
    with mirrored.scope():
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    x = np.ones((8, 3), np.float32)
    history = model.fit(x, 2 * np.ones((8, 1), np.float32), batch_size=4, epochs=2, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_make_strategy_multi_worker_after_tf_started(monkeypatch):
    import tensorflow as tf

    tf.constant(1.0) + 1.0  # the TF runtime of this test process is now initialised
    monkeypatch.setenv("TF_CONFIG", tf_config(2, index=0))
    with pytest.raises(RuntimeError, match="created at program start"):
        make_strategy("multi_worker")


# --------------------------------------------------------------------------- two real workers

WORKER_SCRIPT = textwrap.dedent('''
    """One worker of the two-process MultiWorkerMirroredStrategy test."""
    import json, os, sys
    from pathlib import Path

    from artstyle.distribute import chief_output, is_chief, make_strategy, scale_batch_and_lr

    strategy = make_strategy("multi_worker")  # first: before any other TensorFlow op

    import numpy as np
    import tensorflow as tf
    import keras

    model_path, report_path = Path(sys.argv[1]), Path(sys.argv[2])
    index = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
    keras.utils.set_random_seed(1234 + index)  # different seeds: the chief's init is broadcast

    global_batch, lr = scale_batch_and_lr(8, 0.05, strategy.num_replicas_in_sync)
    rng = np.random.default_rng(0)  # same data on both workers, sharded by tf.data
    x = rng.normal(size=(64, 4)).astype("float32")
    y = (x @ np.array([1.0, -2.0, 0.5, 0.0], "float32") > 0).astype("float32")[:, None]
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(global_batch).with_options(options)

    with strategy.scope():
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1, activation="sigmoid")])
        model.compile(optimizer=keras.optimizers.SGD(lr), loss="binary_crossentropy")
    initial = [w.numpy() for w in model.weights]
    history = model.fit(ds, epochs=1, verbose=0)

    with chief_output(model_path) as out:
        model.save(out)
        written_to = str(out)

    report = {
        "index": index, "chief": is_chief(), "replicas": strategy.num_replicas_in_sync,
        "global_batch": global_batch, "lr": lr, "loss": history.history["loss"],
        "initial": [w.tolist() for w in initial],
        "final": [w.numpy().tolist() for w in model.weights],
        "written_to": written_to,
    }
    tmp = report_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(report))
    os.replace(tmp, report_path)
''')


def _free_ports(n: int) -> list[int]:
    sockets = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


@pytest.mark.slow  # two TensorFlow worker processes: ~15 s on 2 cores
def test_two_workers_train_and_only_chief_writes(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER_SCRIPT)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    model_path = out_dir / "model.keras"
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}

    procs, logs = [], []
    for index in range(2):
        env = dict(os.environ)
        env.update({
            "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT / "src"),
                                                        env.get("PYTHONPATH")])),
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "CUDA_VISIBLE_DEVICES": "-1",  # CPU only: two workers must not fight over a GPU
            "TMPDIR": str(tmp_path / f"tmp{index}"),
        })
        (tmp_path / f"tmp{index}").mkdir()
        log = open(tmp_path / f"worker{index}.log", "w")
        logs.append(log)
        procs.append(subprocess.Popen(
            [sys.executable, str(script), str(model_path), str(tmp_path / f"report{index}.json")],
            env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT))

    deadline = time.monotonic() + 150  # generous: CI machines may be shared
    try:
        while any(p.poll() is None for p in procs):
            # One worker failing leaves the other blocked in a collective: stop early.
            if any(p.poll() not in (None, 0) for p in procs) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        for log in logs:
            log.close()

    def tail(i: int) -> str:
        return (tmp_path / f"worker{i}.log").read_text()[-3000:]

    for i, p in enumerate(procs):
        assert p.returncode == 0, f"worker {i} exited with {p.returncode} (-9: killed at timeout)" \
                                  f"\n{tail(i)}"

    reports = [json.loads((tmp_path / f"report{i}.json").read_text()) for i in range(2)]
    for i, report in enumerate(reports):
        assert report["index"] == i
        assert report["chief"] is (i == 0)
        assert report["replicas"] == 2
        assert report["global_batch"] == 16
        assert math.isclose(report["lr"], 0.1)
    # Only the chief wrote the real model; the other worker's copy went to its temp dir,
    # which is gone.
    assert reports[0]["written_to"] != str(model_path)  # atomic: temp name, then rename
    assert Path(reports[0]["written_to"]).parent == out_dir
    assert not Path(reports[1]["written_to"]).exists()
    assert str(tmp_path / "tmp1") in reports[1]["written_to"]
    assert sorted(p.name for p in out_dir.iterdir()) == ["model.keras"]
    assert list((tmp_path / "tmp1").iterdir()) == []

    # Synchronous data parallelism: the chief's initial weights were broadcast (different
    # seeds) and every step applied the all-reduced gradient of both shards, so both
    # replicas end with identical weights that differ from the initial ones.
    init0, init1 = ([np.array(w) for w in r["initial"]] for r in reports)
    final0, final1 = ([np.array(w) for w in r["final"]] for r in reports)
    for a, b in zip(init0, init1):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(final0, final1):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-7)
    assert not np.allclose(final0[0], init0[0])
    assert reports[0]["loss"] == pytest.approx(reports[1]["loss"])

    import keras
    loaded = keras.saving.load_model(model_path)
    for a, b in zip(loaded.get_weights(), final0):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-7)
    x = np.random.default_rng(1).normal(size=(5, 4)).astype("float32")
    kernel, bias = final0
    expected = 1.0 / (1.0 + np.exp(-(x @ kernel + bias)))
    np.testing.assert_allclose(loaded.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-6)


FAIL_FAST_SCRIPT = textwrap.dedent('''
    import sys
    from artstyle.distribute import TFConfigError, make_strategy

    try:
        make_strategy("multi_worker")
    except TFConfigError as err:
        print("refused:", err)
    print("tensorflow imported:", "tensorflow" in sys.modules)
''')


def test_tf_config_mistake_is_refused_before_tensorflow_starts(tmp_path):
    """A wrong TF_CONFIG is reported before TensorFlow is even imported (a fresh program):
    the error costs no TensorFlow start-up, and the runtime is still uninitialised, as
    creating the strategy at program start requires."""
    env = {**os.environ, "TF_CONFIG": tf_config(2, task_type="chief"),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT / "src"),
                                                       os.environ.get("PYTHONPATH")]))}
    out = subprocess.run([sys.executable, "-c", FAIL_FAST_SCRIPT], env=env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=120, check=True).stdout
    assert 'refused: TF_CONFIG task type "chief" is not a job of the cluster' in out, out
    assert out.splitlines()[-1] == "tensorflow imported: False", out
