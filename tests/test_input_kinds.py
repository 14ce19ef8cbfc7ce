"""Paths that are not regular files (a FIFO, a broken link, a device, a folder named like
an image) are refused in one line by every reader, never opened (a FIFO would block)."""

from __future__ import annotations

import json
import logging
import os
import signal
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from artstyle import images
from artstyle.cli import main

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs POSIX FIFOs")


@contextmanager
def _no_blocking(seconds: int = 20):
    """Fail (instead of hanging the test run) if the block takes longer than ``seconds``."""
    def _alarm(*_):
        raise TimeoutError(f"blocked for more than {seconds} s (opened a FIFO?)")

    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _odd_files(folder: Path) -> dict[str, str]:
    """A FIFO, a broken link and a folder, all named like images: name -> expected phrase."""
    folder.mkdir(parents=True, exist_ok=True)
    os.mkfifo(folder / "pipe.jpg")
    os.symlink(folder / "missing.png", folder / "dangling.png")
    (folder / "dir.jpg").mkdir()
    return {"pipe.jpg": "a named pipe (FIFO), not a regular file",
            "dangling.png": "which does not exist (a broken link)",
            "dir.jpg": "a folder, not a file"}


def test_the_loader_refuses_every_kind_of_non_regular_file_without_blocking(tmp_path):
    expected = _odd_files(tmp_path)
    expected_paths = {tmp_path / name: phrase for name, phrase in expected.items()}
    if os.path.exists("/dev/null"):
        expected_paths[Path("/dev/null")] = "a character device, not a regular file"
    with _no_blocking():
        for path, phrase in expected_paths.items():
            with pytest.raises(images.ImageRejected) as err:
                images.load_rgb_array(path)
            assert err.value.reason == "unreadable"
            assert phrase in str(err.value) and str(path) in str(err.value)
            assert "\n" not in str(err.value)
            assert images.not_a_regular_file(path) is not None
    good = tmp_path / "good.png"
    Image.new("RGB", (4, 3), (1, 2, 3)).save(good)
    os.symlink(good, tmp_path / "link.png")
    assert images.not_a_regular_file(good) is None
    assert images.load_rgb_array(tmp_path / "link.png").shape == (3, 4, 3)   # a link to a file


def test_stylize_refuses_a_fifo_content_style_or_mask_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    _odd_files(tmp_path)
    with _no_blocking():
        for argv, role in [(["pipe.jpg", "sklearn:flower.jpg"], "content"),
                           (["sklearn:china.jpg", "dangling.png"], "style"),
                           (["sklearn:china.jpg", "sklearn:flower.jpg", "--mask", "pipe.jpg"],
                            "mask")]:
            code = main(["stylize", *argv, "-o", "out.png"])
            out, err = capsys.readouterr()
            assert code == 2 and out == "" and err.count("\n") == 1, err
            assert f"unreadable: the {role} image is not usable: a " in err
    assert not (tmp_path / "out.png").exists()


def test_serve_refuses_an_upload_that_is_a_fifo(tmp_path):
    from artstyle.serve import UploadRejected, load_upload

    _odd_files(tmp_path)
    with _no_blocking(), pytest.raises(UploadRejected, match="a named pipe"):
        load_upload(tmp_path / "pipe.jpg", "painting")


def test_prepare_rejects_a_fifo_among_the_paintings_with_a_reason(tmp_path):
    from artstyle.data import catalogue

    raw = tmp_path / "raw"
    (raw / "Cubism").mkdir(parents=True)
    Image.new("RGB", (8, 8), (9, 9, 9)).save(raw / "Cubism" / "a.png")
    _odd_files(raw / "Cubism")
    with _no_blocking():
        decoded = {c.relpath: catalogue._decode(c, 8, 10_000)
                   for c in catalogue.scan_tree(raw).candidates}
    assert sorted(decoded) == ["Cubism/a.png", "Cubism/dangling.png", "Cubism/pipe.jpg"]
    assert decoded["Cubism/a.png"].reason == ""
    assert decoded["Cubism/pipe.jpg"].reason == "unreadable"
    assert "a named pipe (FIFO)" in decoded["Cubism/pipe.jpg"].message
    assert decoded["Cubism/dangling.png"].reason == "unreadable"


def test_folder_import_names_each_non_regular_file_it_skips(tmp_path, caplog):
    from artstyle.data.archive import ArchiveError, import_folder

    src = tmp_path / "src"
    (src / "Cubism").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(src / "Cubism" / "a.png")
    os.mkfifo(src / "Cubism" / "pipe.jpg")
    os.symlink(src / "nowhere.jpg", src / "Cubism" / "dangling.jpg")
    with _no_blocking(), caplog.at_level(logging.WARNING, logger="artstyle.data.archive"):
        out = import_folder(src, tmp_path / "raw", link=False)
    assert sorted(p.name for p in (out / "Cubism").iterdir()) == ["a.png"]
    warned = [r.getMessage() for r in caplog.records]
    assert any("pipe.jpg: a named pipe (FIFO)" in m for m in warned), warned
    assert any("dangling.jpg: a symbolic link to" in m for m in warned), warned
    os.mkfifo(tmp_path / "data.zip")
    with _no_blocking(), pytest.raises(ArchiveError, match="is a named pipe"):
        import_folder(tmp_path / "data.zip", tmp_path / "raw2")


@pytest.fixture
def tiny_model(tmp_path, monkeypatch):
    """A tiny saved CNN under models/tiny/ and a folder of two good paintings."""
    from artstyle.config import ModelSpec
    from artstyle.models.zoo import build_model

    monkeypatch.chdir(tmp_path)
    spec = ModelSpec(family="cnn", input_size=16, conv_filters=[4], dense_units=4)
    folder = tmp_path / "models" / "tiny"
    folder.mkdir(parents=True)
    build_model(spec, 3, seed=0, name="tiny").save(folder / "model.keras")
    (folder / "classes.json").write_text(json.dumps(["a", "b", "c"]))
    (folder / "spec.json").write_text(json.dumps(spec.model_dump()))
    paintings = tmp_path / "paintings"
    paintings.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a.png", "b.jpg"):
        Image.fromarray(rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)).save(paintings / name)
    return paintings


def test_classify_reports_each_non_regular_file_in_a_folder_and_exits_2(tiny_model, capsys):
    expected = _odd_files(tiny_model)
    del expected["dir.jpg"]                       # a folder in a folder is searched, not refused
    with _no_blocking(60):
        code = main(["classify", "paintings", "--model", "tiny"])
    out, err = capsys.readouterr()
    assert code == 2
    assert len(out.splitlines()) == 3             # header + the two good paintings
    for name, phrase in expected.items():
        line = next(x for x in err.splitlines() if x.startswith(f"artstyle: paintings/{name}:"))
        assert "skipped, unreadable" in line and phrase in line
    assert "2 of 4 images could not be classified" in err


def test_classify_refuses_a_fifo_given_by_name_without_blocking(tiny_model, capsys):
    os.mkfifo(tiny_model / "x.jpg")
    with _no_blocking(60):
        code = main(["classify", "paintings/x.jpg", "--model", "tiny"])
    _, err = capsys.readouterr()
    assert code == 2 and "paintings/x.jpg: skipped, unreadable: a named pipe (FIFO)" in err


def test_explain_refuses_a_fifo_before_loading_any_model(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    os.mkfifo(tmp_path / "x.jpg")
    with _no_blocking():
        code = main(["explain", "x.jpg"])
    _, err = capsys.readouterr()
    assert code == 2 and err.count("\n") == 1
    assert "unreadable: a named pipe (FIFO), not a regular file (x.jpg)" in err
