"""The ``artstyle`` command: arguments checked before any work, one-line errors, classify."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
from PIL import Image

from artstyle.cli import main


def _run(argv, capsys) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """An empty working directory: no params.yaml, no models (nothing was built)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("output, expected", [
    ("out.txt", "got .txt"),
    ("out", "got no suffix"),
])
def test_stylize_refuses_an_output_name_before_any_work(workdir, capsys, output, expected):
    # No VGG19 weights exist here: the output is refused before they are even looked for.
    code, out, err = _run(["stylize", "sklearn:china.jpg", "sklearn:flower.jpg", "-o", output],
                          capsys)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and expected in err and "Traceback" not in err


def test_stylize_refuses_an_output_under_a_file(workdir, capsys):
    (workdir / "some_file.gif").write_bytes(b"GIF89a")
    code, _, err = _run(["stylize", "sklearn:china.jpg", "sklearn:flower.jpg",
                         "-o", "some_file.gif/result.png"], capsys)
    assert code == 2 and "some_file.gif is not a writable folder" in err
    code, _, err = _run(["stylize", "sklearn:china.jpg", "sklearn:flower.jpg", "-o", "ok.png",
                         "--panel", "some_file.gif/panel.png"], capsys)
    assert code == 2 and "some_file.gif is not a writable folder" in err


@pytest.mark.parametrize("option, value, expected", [
    ("--max-side", "0", "--max-side: Input should be greater than or equal to 16"),
    ("--max-side", "-5", "--max-side: Input should be greater than or equal to 16"),
    ("--max-evaluations", "0", "--max-evaluations: Input should be greater than 0"),
    ("--scales", "1.0 0.5", "--scales"),
    ("--scales", "half 1", "--scales: numbers increasing to 1.0, or auto alone; got half 1.0"),
    ("--scales", "auto 1", "--scales: numbers increasing to 1.0, or auto alone; got auto 1.0"),
    ("--style-weight", "-1", "--style-weight: Input should be greater than or equal to 0"),
])
def test_stylize_validates_options_as_params_are(workdir, capsys, option, value, expected):
    code, _, err = _run(["stylize", "sklearn:china.jpg", "sklearn:flower.jpg", "-o", "o.png",
                         option, *value.split()], capsys)
    assert code == 2 and expected in err and err.count("\n") == 1


def test_stylize_names_the_image_that_is_not_an_image(workdir, capsys):
    (workdir / "notes.jpg").write_text("not a painting")
    code, _, err = _run(["stylize", "sklearn:china.jpg", "notes.jpg", "-o", "o.png"], capsys)
    assert code == 2 and "the style image is not usable" in err and "notes.jpg" in err
    code, _, err = _run(["stylize", "notes.jpg", "sklearn:china.jpg", "-o", "o.png"], capsys)
    assert code == 2 and "the content image is not usable" in err


def test_stylize_with_an_xgboost_backbone_says_why(workdir, capsys):
    code, _, err = _run(["stylize", "sklearn:china.jpg", "sklearn:flower.jpg", "-o", "o.png",
                         "--backbone", "own:xgb_vgg19_transfer"], capsys)
    assert code == 2 and "xgb_vgg19_transfer is an XGBoost member, which has no feature maps" in err
    assert "train@xgb" not in err


@pytest.fixture
def trained(workdir):
    """A tiny saved CNN under models/tiny/ whose classes are numbers, as folder names can be."""
    from artstyle.config import ModelSpec
    from artstyle.models.zoo import build_model

    spec = ModelSpec(family="cnn", input_size=16, conv_filters=[4], dense_units=4)
    model = build_model(spec, 3, seed=0, name="tiny")
    folder = workdir / "models" / "tiny"
    folder.mkdir(parents=True)
    model.save(folder / "model.keras")
    (folder / "classes.json").write_text(json.dumps(["1", "10", "2"]))
    (folder / "spec.json").write_text(json.dumps(spec.model_dump()))
    paintings = workdir / "paintings"
    (paintings / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in ("a.png", "sub/b.jpg"):
        Image.fromarray(rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)).save(paintings / name)
    (paintings / ".DS_Store").write_bytes(b"\0\0")
    return paintings


def test_classify_takes_files_and_folders_recursively(trained, capsys):
    code, out, err = _run(["classify", "paintings", "--model", "tiny", "--top", "2"], capsys)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "art movement by tiny (neural), top 2:"
    assert [line.split(":")[0] for line in lines[1:]] == ["paintings/a.png", "paintings/sub/b.jpg"]
    assert all(line.count("%") == 2 for line in lines[1:])


def test_classify_csv_has_one_row_per_image_with_text_class_names(trained, capsys):
    code, out, _ = _run(["classify", "paintings/a.png", "paintings", "--model", "tiny",
                         "--top", "3", "--csv"], capsys)
    assert code == 0
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["image", "movement1", "probability1", "movement2", "probability2",
                       "movement3", "probability3"]
    assert [r[0] for r in rows[1:]] == ["paintings/a.png", "paintings/a.png",
                                        "paintings/sub/b.jpg"]
    for row in rows[1:]:
        assert sorted(row[1::2]) == ["1", "10", "2"]
        assert sum(float(p) for p in row[2::2]) == pytest.approx(1.0, abs=1e-3)


def test_classify_skips_a_bad_file_and_exits_2(trained, capsys):
    (trained / "broken.jpg").write_text("text, not JPEG")
    code, out, err = _run(["classify", "paintings", "--model", "tiny"], capsys)
    assert code == 2
    assert len(out.splitlines()) == 3          # header + the two good images
    assert "paintings/broken.jpg: skipped, not_an_image" in err
    assert "1 of 3 images could not be classified" in err


def test_classify_missing_model_or_path_is_one_line(workdir, capsys):
    Image.new("RGB", (8, 8)).save(workdir / "p.png")
    code, _, err = _run(["classify", "p.png", "--model", "best_cnn"], capsys)
    assert code == 2 and "no trained model named 'best_cnn'" in err and err.count("\n") == 1
    assert "`dvc repro`" in err
    code, _, err = _run(["classify", "nowhere.png"], capsys)
    assert code == 2 and "nowhere.png not found" in err


@pytest.mark.parametrize("argv, message", [
    (["stylize", "a.jpg", "b.jpg", "-o", "o.png", "--iterations", "3"],
     "artstyle: --iterations was renamed: write --max-evaluations"),
    (["stylize", "a.jpg", "b.jpg", "-o", "o.png", "--schedule=0.5"],
     "artstyle: --schedule was renamed: write --scales"),
])
def test_an_option_spelled_as_before_a_rename_names_the_new_one(argv, message, capsys):
    code, out, err = _run(argv, capsys)
    assert code == 2 and err.strip() == message and out == ""


def test_stylize_blend_weights_must_match_the_styles_before_any_work(workdir, capsys):
    # No VGG19 weights exist here: the weights are refused before they are looked for.
    code, out, err = _run(["stylize", "sklearn:china.jpg", "sklearn:flower.jpg", "sklearn:china.jpg",
                           "-o", "o.png", "--blend-weights", "0.7"], capsys)
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "--blend-weights: 1 weights for 2 style images" in err
    code, _, err = _run(["stylize", "sklearn:china.jpg", "sklearn:flower.jpg", "-o", "o.png",
                         "--blend-weights", "0", "--memory-limit-mb", "5"], capsys)
    assert code == 2 and "--blend-weights: weights must be finite, >= 0 and not all 0" in err
    code, _, err = _run(["stylize", "sklearn:china.jpg", "sklearn:flower.jpg", "-o", "o.png",
                         "--memory-limit-mb", "0"], capsys)
    assert code == 2 and "--memory-limit-mb: Input should be greater than 0" in err


@pytest.fixture
def own_cnn(workdir):
    """A tiny saved three-convolution CNN under models/tiny2/ (an own backbone) and three images."""
    from artstyle.config import ModelSpec
    from artstyle.models.zoo import build_model

    spec = ModelSpec(family="cnn", input_size=16, conv_filters=[4, 8, 8], dense_units=4)
    folder = workdir / "models" / "tiny2"
    folder.mkdir(parents=True)
    build_model(spec, 3, seed=0, name="tiny2").save(folder / "model.keras")
    rng = np.random.default_rng(1)
    for name in ("photo.png", "a.png", "b.png"):
        Image.fromarray(rng.integers(40, 200, (24, 32, 3), dtype=np.uint8)).save(workdir / name)
    return workdir


def test_stylize_blend_preserve_colors_and_seed_end_to_end(own_cnn, capsys):
    argv = ["stylize", "photo.png", "a.png", "b.png", "--backbone", "own:tiny2",
            "--blend-weights", "0.7", "0.3", "--preserve-colors", "--seed", "3",
            "--max-side", "32", "--max-evaluations", "2", "--init", "noise",
            "--compute-dtype", "bfloat16"]
    code, out, err = _run([*argv, "-o", "one.png"], capsys)
    assert code == 0, err
    assert "seed 3" in out and "peak memory" in out
    code, _, err = _run([*argv, "-o", "two.png"], capsys)
    assert code == 0, err
    assert (own_cnn / "one.png").read_bytes() == (own_cnn / "two.png").read_bytes()
    info = Image.open(own_cnn / "one.png").info
    assert info["artstyle:seed"] == "3"
    settings = json.loads(info["artstyle:settings"])
    assert settings["preserve_colors"] is True and settings["blend_weights"] == [0.7, 0.3]
    assert settings["compute_dtype"] == "float32"  # an own CNN computes in float32 whatever is asked


def test_stylize_with_a_mask_keeps_the_photo_where_it_is_black(own_cnn, capsys):
    mask = np.zeros((12, 16), np.uint8)        # half the photo's size: resized to it
    mask[:, :4] = 255                           # white: the left quarter
    Image.fromarray(mask).save(own_cnn / "mask.png")
    code, _, err = _run(["stylize", "photo.png", "a.png", "--backbone", "own:tiny2", "--mask",
                         "mask.png", "--max-side", "32", "--max-evaluations", "2", "-o", "m.png"],
                        capsys)
    assert code == 0, err
    photo, out = (np.asarray(Image.open(own_cnn / n).convert("RGB")) for n in ("photo.png", "m.png"))
    assert np.array_equal(out[:, 12:], photo[:, 12:])
    assert json.loads(Image.open(own_cnn / "m.png").info["artstyle:settings"])["mask"] is True
    Image.fromarray(np.zeros((12, 16), np.uint8)).save(own_cnn / "black.png")
    code, out, err = _run(["stylize", "photo.png", "a.png", "--backbone", "own:tiny2", "--mask",
                           "black.png", "-o", "n.png"], capsys)
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "the mask is black everywhere" in err and not (own_cnn / "n.png").exists()


def test_stylize_refuses_a_size_that_does_not_fit_in_one_line(own_cnn, capsys):
    code, out, err = _run(["stylize", "photo.png", "a.png", "--backbone", "own:tiny2",
                           "-o", "o.png", "--memory-limit-mb", "1"], capsys)
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "MB are available" in err and not (own_cnn / "o.png").exists()


def test_a_missing_model_lists_the_trained_ones(trained, capsys):
    code, _, err = _run(["classify", "paintings", "--model", "nosuch"], capsys)
    assert code == 2 and err.count("\n") == 1
    assert "no trained model named 'nosuch'" in err and "trained: tiny" in err


def test_a_keras_file_without_its_classes_says_what_must_sit_beside_it(workdir, capsys):
    (workdir / "fake.keras").write_text("not a model")
    Image.new("RGB", (8, 8)).save(workdir / "p.png")
    code, _, err = _run(["classify", "p.png", "--model", "fake.keras"], capsys)
    assert code == 2 and err.strip() == ("artstyle: fake.keras: classes.json and spec.json "
                                         "must sit beside it (as in models/<name>/, written "
                                         "by the train stage)")


def test_classify_top_beyond_the_movements_says_how_many_there_are(trained, capsys):
    code, out, _ = _run(["classify", "paintings/a.png", "--model", "tiny", "--top", "99"], capsys)
    lines = out.splitlines()
    assert code == 0 and lines[0] == "art movement by tiny (neural), top 3:"
    assert len(lines[1].split(": ", 1)[1].split(", ")) == 3


def test_serve_with_a_model_that_is_not_there_stops_in_one_line(trained, capsys):
    code, out, err = _run(["serve", "--model", "nosuch", "--port", "7999"], capsys)
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "no trained model named 'nosuch'" in err


def test_ctrl_c_is_one_line_with_status_130(monkeypatch, capsys):
    import artstyle.cli as cli

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_classify", interrupted)
    code, _, err = _run(["classify", "x.png"], capsys)
    assert code == 130 and err == "artstyle: interrupted\n"


@pytest.mark.parametrize("argv, expected", [
    (["classify", "nowhere.png"], "nowhere.png not found"),
    (["classify", "empty"], "no image files in empty"),
    (["classify", "p.png", "--model", "nosuch"], "no trained model named 'nosuch'"),
    (["explain", "nowhere.png"], "nowhere.png not found"),
    (["explain", "p.png", "-o", "out.txt"], "give an image file name ending in .png or .jpg"),
    (["explain", "notes.png"], "notes.png"),
    (["stylize", "nowhere.jpg", "sklearn:china.jpg", "-o", "o.png"],
     "content image nowhere.jpg not found"),
    (["stylize", "sklearn:china.jpg", "sklearn:flower.jpg", "-o", "o.txt"], "got .txt"),
    (["serve", "--port", "70000"], "--port: Input should be less than or equal to 65535"),
    (["serve", "--model", "nosuch"], "no trained model named 'nosuch'"),
])
def test_every_expected_failure_is_one_line_with_status_2(workdir, capsys, argv, expected):
    (workdir / "empty").mkdir()
    Image.new("RGB", (40, 40)).save(workdir / "p.png")
    (workdir / "notes.png").write_text("not an image")
    code, out, err = _run(argv, capsys)
    assert code == 2, (out, err)
    assert err.count("\n") == 1 and err.startswith("artstyle: ") and expected in err, err
    assert "Traceback" not in err


def test_a_bug_keeps_its_traceback(monkeypatch):
    import artstyle.cli as cli

    def broken(args):
        raise ValueError("a bug, not bad input")

    monkeypatch.setattr(cli, "_classify", broken)
    with pytest.raises(ValueError, match="a bug"):
        main(["classify", "x.png"])


def test_classify_into_a_closed_pipe_ends_quietly(trained):
    """``artstyle classify DIR | head -1``: the reader goes away; no traceback."""
    import subprocess
    import sys

    rng = np.random.default_rng(1)
    for i in range(70):                                   # more than one batch of output
        Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(
            trained / f"p{i:02d}.png")
    run = subprocess.run(f"{sys.executable} -m artstyle.cli classify paintings --model tiny "
                         "| head -1", shell=True, capture_output=True, text=True,
                         cwd=trained.parent)
    assert run.stdout.startswith("art movement by tiny (neural)")
    assert "Traceback" not in run.stderr and "BrokenPipeError" not in run.stderr, run.stderr
