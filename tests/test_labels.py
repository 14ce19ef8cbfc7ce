"""Tests for artstyle.labels: the one fixed class order."""

from __future__ import annotations

import numpy as np
import pytest

from artstyle.labels import check_training_classes, encode_labels

CLASSES = ["Romanticism", "Baroque", "Cubism"]  # deliberately not sorted



def test_encode_labels_keeps_the_fixed_class_order():
    y = encode_labels(["Cubism", "Romanticism", "Cubism", "Baroque"], CLASSES)
    assert y.dtype == np.int64
    assert y.tolist() == [2, 0, 2, 1]


def test_encode_labels_range_checks_integer_labels():
    assert encode_labels(np.array([0, 2, 1]), CLASSES).tolist() == [0, 2, 1]
    with pytest.raises(ValueError, match=r"outside \[0, 3\)"):
        encode_labels(np.array([0, 3]), CLASSES)


def test_encode_labels_unknown_label_named():
    with pytest.raises(ValueError, match="Surrealism"):
        encode_labels(["Cubism", "Surrealism"], CLASSES)


def test_encode_labels_rejects_duplicate_classes():
    with pytest.raises(ValueError, match="duplicate"):
        encode_labels(["a"], ["a", "b", "a"])


def test_training_split_missing_a_class_names_it():
    y_train = encode_labels(["Romanticism", "Cubism", "Cubism"], CLASSES)
    with pytest.raises(ValueError, match=r"'Baroque' \(index 1\)"):
        check_training_classes(y_train, CLASSES)


def test_training_class_counts():
    y_train = encode_labels(["Romanticism", "Cubism", "Cubism", "Baroque"], CLASSES)
    assert check_training_classes(y_train, CLASSES).tolist() == [1, 1, 2]
