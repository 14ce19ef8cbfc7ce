"""CSV cells that a spreadsheet would execute (``=``, ``+``, ``-``, ``@``, tab, CR: OWASP's
CSV-injection rules) are neutralised in every CSV the product writes, and read back as
they were."""

from __future__ import annotations

import csv
import io

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from test_input_kinds import tiny_model  # noqa: F401 - the fixture

from artstyle.io import CsvWriter, csv_safe, csv_unsafe, read_csv, write_csv

HYPERLINK = '=HYPERLINK("http:x").png'


@pytest.mark.parametrize("cell, expected", [
    (HYPERLINK, "'" + HYPERLINK),
    ("+1+cmd|' /C calc'!A0", "'+1+cmd|' /C calc'!A0"),
    ("-2+3", "'-2+3"),
    ("@SUM(A1:A2)", "'@SUM(A1:A2)"),
    ("\t=1", "'\t=1"),
    ("\r=1", "'\r=1"),
    ("'quoted", "''quoted"),             # so that reading back is exact
    ("Cubism", "Cubism"),
    ("a=b.png", "a=b.png"),
    ("-0.5", "-0.5"),                    # numbers stay numbers
    ("+3", "+3"),
    ("1e-4", "1e-4"),
    ("", ""),
    (-0.5, -0.5),
    (3, 3),
])
def test_csv_safe_neutralises_formula_cells_and_round_trips(cell, expected):
    assert csv_safe(cell) == expected
    assert csv_unsafe(csv_safe(cell)) == cell


def test_write_csv_is_readable_by_csv_reader_and_pandas(tmp_path):
    frame = pd.DataFrame({"path": [HYPERLINK, "plain.png", "@x.jpg"],
                          "class": ["-Cubism", "Cubism", "=1+1"], "p": [-0.25, 0.5, 1.0]})
    write_csv(frame, tmp_path / "t.csv", index=False)
    with open(tmp_path / "t.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    assert rows == [["path", "class", "p"], ["'" + HYPERLINK, "'-Cubism", "-0.25"],
                    ["plain.png", "Cubism", "0.5"], ["'@x.jpg", "'=1+1", "1.0"]]
    assert not any(cell.startswith(("=", "+", "@")) for row in rows for cell in row)
    pd.testing.assert_frame_equal(read_csv(tmp_path / "t.csv"), frame)


def test_csv_writer_rows(tmp_path):
    out = io.StringIO()
    CsvWriter(out).writerow([HYPERLINK, "Cubism", "0.9000"])
    assert next(csv.reader(io.StringIO(out.getvalue()))) == ["'" + HYPERLINK, "Cubism", "0.9000"]


def test_classify_csv_neutralises_a_formula_file_name(tiny_model, capsys):  # noqa: F811
    from artstyle.cli import main

    # the fixture works in tiny_model's parent folder; the file name, given bare
    Image.new("RGB", (20, 30), (5, 6, 7)).save(tiny_model.parent / HYPERLINK, format="PNG")
    code = main(["classify", HYPERLINK, "paintings", "--model", "tiny", "--csv"])
    out, _ = capsys.readouterr()
    rows = list(csv.reader(io.StringIO(out)))
    assert code == 0
    assert [r[0] for r in rows[1:]] == ["'" + HYPERLINK, "paintings/a.png", "paintings/b.jpg"]
    assert rows[1][1] in ("a", "b", "c") and 0 <= float(rows[1][2]) <= 1


def test_prepare_reports_neutralise_class_and_file_names_and_the_manifest_round_trips(tmp_path):
    from artstyle.config import PrepareParams
    from artstyle.data.catalogue import prepare_dataset
    from artstyle.data.dataset import load_manifest

    raw = tmp_path / "raw"
    rng = np.random.default_rng(0)
    for cls in ("=Evil", "Cubism"):
        (raw / cls).mkdir(parents=True)
        for i in range(4):
            Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(
                raw / cls / f"{'+' if i == 0 else ''}{i}.png")
    (raw / "Cubism" / "@broken.png").write_text("not an image")
    prepare_dataset(raw, tmp_path / "prepared", tmp_path / "report", image_size=8, seed=0,
                    params=PrepareParams(val_fraction=0.25, test_fraction=0.25,
                                         group_by_artist=False), progress=False)
    text = "\n".join((tmp_path / "report" / n).read_text(encoding="utf-8")
                     for n in ("rejects.csv", "counts.csv"))
    text += (tmp_path / "prepared" / "manifest.csv").read_text(encoding="utf-8")
    cells = [c for row in csv.reader(io.StringIO(text)) for c in row]
    assert "'=Evil" in cells and "'@broken.png" not in cells  # source paths hold the folder
    assert "Cubism/@broken.png" in cells and "'=Evil/+0.png" in cells
    assert not any(c.startswith(("=", "+", "@")) for c in cells)
    manifest, classes = load_manifest(tmp_path / "prepared")
    assert sorted(set(manifest["class"])) == sorted(classes) == ["=Evil", "Cubism"]
    assert "=Evil/+0.png" in set(manifest["source_path"])


def test_evaluation_csvs_neutralise_class_names(tmp_path):
    from artstyle.evaluation import write_evaluation

    y = np.array([0, 1, 1, 0])
    write_evaluation(tmp_path / "eval", "m", ["@Evil", "Cubism"], {"test": (y, y)})
    for name in ("per_class.csv", "confusion.csv"):
        with open(tmp_path / "eval" / name, newline="", encoding="utf-8") as fh:
            cells = [c for row in csv.reader(fh) for c in row]
        assert "'@Evil" in cells and "@Evil" not in cells, name
    assert set(read_csv(tmp_path / "eval" / "per_class.csv")["class"]) == {"@Evil", "Cubism"}
