"""Tests of artstyle.io: atomic outputs with the usual file permissions."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest

from artstyle.io import atomic_dir, atomic_file, atomic_path


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_atomic_file_replaces_and_keeps_the_umask_permissions(tmp_path, umask_022):
    target = tmp_path / "sub" / "metrics.json"
    with atomic_file(target) as fh:
        fh.write("{}")
    with atomic_file(target) as fh:
        fh.write('{"a": 1}')
    assert target.read_text() == '{"a": 1}'
    assert _mode(target) == 0o644
    assert sorted(p.name for p in target.parent.iterdir()) == ["metrics.json"]


def test_atomic_file_error_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_file(target) as fh:
        fh.write("half")
        raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_atomic_dir_and_atomic_path_permissions(tmp_path, umask_022):
    with atomic_dir(tmp_path / "reports") as tmp:
        (tmp / "a.txt").write_text("x")
    assert _mode(tmp_path / "reports") == 0o755
    with atomic_path(tmp_path / "img.png") as tmp:
        tmp.write_bytes(b"png")
    assert _mode(tmp_path / "img.png") == 0o644


def test_style_transfer_images_and_panels_are_not_private(tmp_path, umask_022):
    from artstyle.images import save_image
    from artstyle.nst.outputs import save_panel

    img = np.zeros((8, 10, 3), np.uint8)
    img[2:5] = 200
    out = save_image(img, tmp_path / "result.png")
    panel = save_panel(img, img, img, tmp_path / "panel.png")
    assert _mode(out) == 0o644 and _mode(panel) == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["panel.png", "result.png"]
