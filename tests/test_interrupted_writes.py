"""What a stage killed outright (SIGKILL) leaves behind is removed by the next write into
the same folder; a failed write names the file and what was kept."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from artstyle.io import (
    atomic_dir,
    atomic_file,
    remove_stale_temporaries,
    temporary_sibling,
)

SRC = Path(__file__).resolve().parents[1] / "src"

# As `dvc repro train@best_cnn` writes: the chief's temporary model folder, inside it the
# training's atomic folder, a report folder and a file; then the process is killed.
_KILLED_WRITER = """
import os, signal, sys
from pathlib import Path
from artstyle.distribute import chief_output
from artstyle.io import atomic_dir, atomic_file
root = Path(sys.argv[1])
with chief_output(root / "models" / "best_cnn") as model_dir, atomic_dir(model_dir) as tmp, \\
        atomic_dir(root / "reports" / "train" / "best_cnn") as rep, \\
        atomic_file(root / "reports" / "summary.json") as fh:
    (tmp / "model.keras").write_bytes(b"half")
    (rep / "log.tsv").write_text("step")
    fh.write("{")
    fh.flush()
    os.kill(os.getpid(), signal.SIGKILL)
"""


def _hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")
def test_the_next_run_removes_what_a_killed_run_left(tmp_path):
    run = subprocess.run([sys.executable, "-c", _KILLED_WRITER, str(tmp_path)], check=False,
                         env={**os.environ, "PYTHONPATH": str(SRC)}, timeout=120)
    assert run.returncode == -signal.SIGKILL
    models, reports = tmp_path / "models", tmp_path / "reports"
    # the leftover: models/..tmp-<pid>-<hex>-best_cnn.<pid>-<hex>.tmp/
    (left,) = _hidden(models)
    assert left.startswith("..tmp-") and "-best_cnn." in left and left.endswith(".tmp")
    assert (models / left / "model.keras").read_bytes() == b"half"
    assert len(_hidden(reports / "train")) == 1 and len(_hidden(reports)) == 1

    # the next run (another process id): its first atomic write into each folder tidies it
    with atomic_dir(models / "best_cnn") as tmp:
        (tmp / "model.keras").write_bytes(b"whole")
    with atomic_dir(reports / "train" / "best_cnn") as rep:
        (rep / "log.tsv").write_text("step")
    with atomic_file(reports / "summary.json") as fh:
        fh.write("{}")
    assert _hidden(models) == _hidden(reports / "train") == _hidden(reports) == []
    assert (models / "best_cnn" / "model.keras").read_bytes() == b"whole"
    assert sorted(p.name for p in models.iterdir()) == ["best_cnn"]


def test_temporaries_of_running_processes_and_other_files_are_kept(tmp_path):
    mine = temporary_sibling(tmp_path / "x.png")            # this process: alive
    mine.write_bytes(b"in progress")
    parent = subprocess.run([sys.executable, "-c", "import os; print(os.getppid())"],
                            capture_output=True, text=True, check=True)
    alive = int(parent.stdout)                              # this test process
    (tmp_path / f".model.{alive}-0123abcd.tmp").mkdir()
    for name in (".tmp-notes", ".DS_Store", ".model.12-xyz.tmp", ".tmp-12-report.csv"):
        (tmp_path / name).write_text("user's")              # not names this module makes
    assert remove_stale_temporaries(tmp_path) == []
    assert len(list(tmp_path.iterdir())) == 6


def test_a_dead_process_is_recognised(tmp_path):
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    stale = tmp_path / f".tmp-{child.pid}-0123abcd-out.png"
    stale.write_bytes(b"half")
    (tmp_path / f".best_cnn.{child.pid}-89abcdef.tmp").mkdir()
    (tmp_path / f".best_cnn.old-{child.pid}-89abcdef").mkdir()
    assert len(remove_stale_temporaries(tmp_path)) == 3
    assert list(tmp_path.iterdir()) == []
    assert errno.ESRCH  # (the check uses os.kill(pid, 0): ESRCH = no such process)


# --------------------------------------------------------------------------- failed writes

def _full_disk_on(suffix, monkeypatch):
    """os.replace fails with ENOSPC (a full disk) for targets ending in ``suffix``."""
    real = os.replace

    def replace(src, dst, *args, **kwargs):
        if str(dst).endswith(suffix):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)


def test_a_failed_file_write_names_the_file_and_keeps_the_previous_one(tmp_path, monkeypatch):
    from artstyle.io import WriteFailed, write_csv, write_json

    target = tmp_path / "metrics.json"
    write_json(target, {"accuracy": 0.5})
    _full_disk_on(".json", monkeypatch)
    with pytest.raises(WriteFailed) as err:
        write_json(target, {"accuracy": 0.9})
    assert str(err.value) == (f"cannot write {target}: No space left on device; the previous "
                              "metrics.json is kept unchanged")
    assert err.value.errno == errno.ENOSPC and isinstance(err.value, OSError)
    assert target.read_text() == '{\n  "accuracy": 0.5\n}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]

    import pandas as pd
    _full_disk_on(".csv", monkeypatch)
    with pytest.raises(WriteFailed, match=r"new\.csv: No space left on device; no new\.csv "
                                          r"was created$"):
        write_csv(pd.DataFrame({"a": [1]}), tmp_path / "new.csv")


def test_a_disk_full_while_writing_is_named_too(tmp_path):
    from artstyle.io import WriteFailed

    with pytest.raises(WriteFailed, match=r"x\.txt: No space left on device; no x\.txt was"), \
            atomic_file(tmp_path / "x.txt") as fh:
        fh.write("a")
        raise OSError(errno.ENOSPC, "No space left on device")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "old.txt").write_text("old")
    with pytest.raises(WriteFailed) as err, atomic_dir(tmp_path / "out") as tmp:
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp / "model.keras"))
    assert str(err.value).startswith(f"cannot write {tmp_path / 'out'}: No space left on "
                                     "device (writing ")
    assert str(err.value).endswith("; the previous out is kept unchanged")
    assert [p.name for p in tmp_path.iterdir() if p.name != "x.txt"] == ["out"]
    assert (tmp_path / "out" / "old.txt").read_text() == "old"
    with pytest.raises(FileNotFoundError), atomic_file(tmp_path / "y.txt"):
        raise FileNotFoundError("an input is missing")   # not a write failure: unchanged


def test_stylize_on_a_full_disk_names_the_panel_and_keeps_the_result(tmp_path, monkeypatch,
                                                                     capsys):
    from PIL import Image

    from artstyle.cli import main
    from artstyle.config import ModelSpec
    from artstyle.models.zoo import build_model

    monkeypatch.chdir(tmp_path)
    spec = ModelSpec(family="cnn", input_size=16, conv_filters=[4, 8, 8], dense_units=4)
    (tmp_path / "models" / "tiny2").mkdir(parents=True)
    build_model(spec, 3, seed=0, name="tiny2").save(tmp_path / "models" / "tiny2" / "model.keras")
    for name in ("photo.png", "a.png"):
        Image.new("RGB", (32, 24), (90, 140, 30)).save(tmp_path / name)
    (tmp_path / "full").mkdir()
    _full_disk_on("_panel.png", monkeypatch)
    code = main(["stylize", "photo.png", "a.png", "--backbone", "own:tiny2", "--max-side", "32",
                 "--max-evaluations", "2", "-o", "full/x.png", "--panel", "full/x_panel.png"])
    out, err = capsys.readouterr()
    last = err.splitlines()[-1]          # after the progress bar
    assert code == 2 and out == "" and "Traceback" not in err
    assert last == ("artstyle: cannot write full/x_panel.png: No space left on device; no "
                   "x_panel.png was created; the result full/x.png was written completely and "
                   "is kept")
    assert Image.open(tmp_path / "full" / "x.png").size == (32, 24)
    assert sorted(p.name for p in (tmp_path / "full").iterdir()) == ["x.png"]


def test_a_scratch_folder_of_a_killed_download_is_removed_at_the_next_start(tmp_path):
    """The download stage's scratch folder (data/.raw.fetch.<pid>-<hex>.tmp) is named as
    atomic_dir's, so a killed download leaves nothing for ever."""
    from artstyle.io import scratch_dir

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    left = tmp_path / f".raw.fetch.{child.pid}-0badc0de.tmp"
    (left / "tree").mkdir(parents=True)
    with scratch_dir(tmp_path / "raw.fetch") as work:
        assert work.parent == tmp_path and work.name.startswith(".raw.fetch.")
        assert not left.exists()
    assert list(tmp_path.iterdir()) == []
