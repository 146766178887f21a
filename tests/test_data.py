"""Data sets by name: shapes, determinism and clear errors for bad files."""

from __future__ import annotations

import numpy as np
import pytest

from cascc.data import load
from cascc.errors import OptionError


def test_mnist1d_is_the_frozen_benchmark_and_leaves_numpys_generator_alone():
    np.random.seed(7)
    before = np.random.get_state()[1].copy()
    data = load("mnist1d")
    assert np.array_equal(np.random.get_state()[1], before)
    assert tuple(data.x_train.shape) == (4000, 40) and tuple(data.x_test.shape) == (1000, 40)
    assert data.classes == 10
    assert sorted(set(data.y_train.tolist())) == list(range(10))
    assert abs(float(data.x_train.std()) - 1.0) < 0.05  # standardized by the generator
    again = load("mnist1d")
    assert np.array_equal(again.x_test.numpy(), data.x_test.numpy())


def test_digits_split_is_fixed_and_stratified():
    data = load("digits")
    assert tuple(data.x_train.shape) == (1437, 64) and tuple(data.x_test.shape) == (360, 64)
    counts = np.bincount(data.y_test.numpy())
    assert counts.min() >= 35


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"x_train": np.full((4, 3), np.nan), "y_train": np.zeros(4)}, "train features hold NaN"),
        ({"x_train": np.zeros((4, 3)), "y_train": np.array([0, 1, -1, 2])}, "labels must be class indices"),
        ({"x_train": np.zeros((4, 3)), "y_train": np.zeros(3)}, "4 samples but 3 labels"),
        ({"x_train": np.zeros((4, 5)), "y_train": np.zeros(4)}, "train samples have shape (5,), test (3,)"),
    ],
)
def test_bad_npz_data_is_refused_with_the_problem(tmp_path, arrays, message):
    path = tmp_path / "bad.npz"
    np.savez(path, **{"x_test": np.zeros((2, 3)), "y_test": np.zeros(2), **arrays})
    with pytest.raises(OptionError, match=message.replace("(", r"\(").replace(")", r"\)")) as info:
        load(f"npz:{path}")
    assert str(path) in str(info.value)


def test_unknown_data_set_lists_the_choices():
    with pytest.raises(OptionError, match="mnist1d"):
        load("cifar10")
