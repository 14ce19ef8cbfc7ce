"""``artstyle stylize`` checks every option and input before TensorFlow starts, and a mask
must have the photo's shape (aspect ratio within 2 %)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from artstyle.images import MASK_ASPECT_TOLERANCE, check_mask_aspect

SRC = Path(__file__).resolve().parents[1] / "src"

_PROBE = """
import sys
from artstyle.cli import main
code = main(sys.argv[1:])
print("tensorflow loaded:", "tensorflow" in sys.modules)
raise SystemExit(code)
"""


@pytest.fixture
def images_dir(tmp_path):
    Image.new("RGB", (64, 48), (200, 120, 40)).save(tmp_path / "photo.png")
    Image.new("RGB", (40, 40), (20, 60, 160)).save(tmp_path / "painting.png")
    Image.new("L", (80, 20), 255).save(tmp_path / "wide_mask.png")       # 4:1 over 4:3
    Image.new("L", (64, 48), 0).save(tmp_path / "black_mask.png")
    return tmp_path


@pytest.mark.parametrize("options, expected", [
    (["--blend-weights", "-1", "1"], "--blend-weights: weights must be finite, >= 0"),
    (["--max-side", "5000"], "--max-side: Input should be less than or equal to 2048"),
    (["--mask", "wide_mask.png"], "the mask is 80x20 px but the photo 64x48 px"),
    (["--mask", "black_mask.png"], "the mask is black everywhere"),
    (["--mask", "nowhere.png"], "mask image nowhere.png not found"),
    (["--backbone", "own:nosuch"], "own:nosuch: our own CNN as backbone is a trained neural model"),
    ([], "VGG19 weights models/pretrained/"),            # none were downloaded here
    (["--weights", "nowhere.weights.h5"], "VGG19 weights nowhere.weights.h5 not found"),
])
def test_stylize_refuses_bad_options_before_tensorflow_starts(images_dir, options, expected):
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    styles = ["painting.png"] * (2 if "--blend-weights" in options else 1)
    run = subprocess.run([sys.executable, "-c", _PROBE, "stylize", "photo.png", *styles,
                          "-o", "out.png", *options],
                         cwd=images_dir, env=env, capture_output=True, text=True, timeout=120,
                         check=False)
    assert run.returncode == 2, run.stderr
    assert run.stderr.count("\n") == 1 and expected in run.stderr, run.stderr
    assert run.stdout.strip() == "tensorflow loaded: False"
    assert not (images_dir / "out.png").exists()


@pytest.mark.parametrize("mask_wh, content_wh, refused", [
    ((80, 20), (64, 48), True),        # the mask: 4.0 against 1.33
    ((32, 24), (64, 48), False),       # the same shape, half the size: resized
    ((65, 48), (64, 48), False),       # 1.6 % wider: within the tolerance
    ((66, 48), (64, 48), True),        # 3.1 % wider
    ((48, 64), (64, 48), True),        # portrait over landscape
])
def test_a_mask_of_another_aspect_ratio_is_refused_naming_both_sizes(mask_wh, content_wh,
                                                                     refused):
    assert MASK_ASPECT_TOLERANCE == 0.02
    (mw, mh), (cw, ch) = mask_wh, content_wh
    if not refused:
        check_mask_aspect((mh, mw), (ch, cw))
        return
    with pytest.raises(ValueError) as err:
        check_mask_aspect((mh, mw), (ch, cw))
    assert f"the mask is {mw}x{mh} px but the photo {cw}x{ch} px" in str(err.value)


def test_the_library_refuses_a_stretched_mask_too():
    """nst.stylize (used by the stage and the web page) checks before any TensorFlow work."""
    from artstyle.nst import stylize

    photo = np.zeros((48, 64, 3), np.uint8)
    with pytest.raises(ValueError, match="the mask is 80x20 px but the photo 64x48 px"):
        stylize(photo, photo, extractor=None, mask=np.full((20, 80), 255, np.uint8))
