"""Data sets by name: `digits` (scikit-learn), `npz:path` and `csv:path`, as train/test tensors.

`digits` gives raw 8×8 pixels in [0, 16] (the bundled example models scale them), split 80/20 with a fixed
seed and stratified by class.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .errors import OptionError

NAMES = ("digits", "npz:PATH", "csv:PATH")


@dataclass(frozen=True, eq=False)
class Dataset:
    """Train and test arrays: float32 features (first axis = samples) and int64 class labels."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor

    @property
    def classes(self) -> int:
        return int(max(self.y_train.max(), self.y_test.max())) + 1


def load(spec: str) -> Dataset:
    """The data set named by `spec` (see NAMES), checked for shape, NaN and label problems."""
    if spec == "digits":
        return _digits()
    kind, _, path = spec.partition(":")
    if kind == "npz" and path:
        return _npz(Path(path))
    if kind == "csv" and path:
        return _csv(Path(path))
    raise OptionError(None, f"unknown data set {spec!r}", f"use one of {', '.join(NAMES)}")


def _digits() -> Dataset:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.2, random_state=0, stratify=y)
    return _checked("digits", None, xtr, ytr, xte, yte)


def _npz(path: Path) -> Dataset:
    if not path.is_file():
        raise OptionError(
            path, "no such data file", "pass npz:PATH to an .npz with x_train, y_train, x_test, y_test"
        )
    try:
        with np.load(path, allow_pickle=False) as arrays:
            missing = [k for k in ("x_train", "y_train", "x_test", "y_test") if k not in arrays.files]
            if missing:
                raise OptionError(
                    path,
                    f"missing array(s) {', '.join(missing)} (file has {', '.join(arrays.files) or 'none'})",
                    "save the data with numpy.savez(path, x_train=..., y_train=..., x_test=..., y_test=...)",
                )
            parts = [arrays[k] for k in ("x_train", "y_train", "x_test", "y_test")]
    except OptionError:
        raise
    except Exception as exc:
        raise OptionError(
            path, f"not a readable .npz file ({exc})", "save the data with numpy.savez"
        ) from exc
    return _checked(f"npz:{path}", path, *parts)


def _csv(path: Path) -> Dataset:
    """Last column is the label; the first 80% of rows train, the rest test (file order kept)."""
    if not path.is_file():
        raise OptionError(
            path, "no such data file", "pass csv:PATH to a numeric CSV whose last column is the label"
        )
    try:
        table = np.loadtxt(path, delimiter=",", ndmin=2)
    except ValueError as exc:
        raise OptionError(
            path, f"not a numeric CSV ({exc})", "remove header lines and non-numeric columns"
        ) from exc
    if table.shape[1] < 2 or table.shape[0] < 2:
        raise OptionError(
            path,
            f"needs ≥ 2 rows and ≥ 2 columns, has shape {table.shape}",
            "add features and a label column",
        )
    cut = max(1, int(0.8 * len(table)))
    return _checked(f"csv:{path}", path, table[:cut, :-1], table[:cut, -1], table[cut:, :-1], table[cut:, -1])


def _checked(name: str, path: Path | None, xtr, ytr, xte, yte) -> Dataset:
    where = path or name
    for split, x, y in (("train", xtr, ytr), ("test", xte, yte)):
        if len(x) != len(y):
            raise OptionError(
                where, f"{split}: {len(x)} samples but {len(y)} labels", "give one label per sample"
            )
        if len(x) == 0:
            raise OptionError(where, f"{split} split is empty", "provide samples for both splits")
        if not np.isfinite(np.asarray(x, dtype=np.float64)).all():
            raise OptionError(where, f"{split} features hold NaN or Inf", "clean or impute the data first")
        labels = np.asarray(y, dtype=np.float64)
        if not np.isfinite(labels).all() or (labels != np.round(labels)).any() or (labels < 0).any():
            raise OptionError(
                where, f"{split} labels must be class indices 0, 1, 2, …", "encode labels as integers ≥ 0"
            )
    if np.shape(xtr)[1:] != np.shape(xte)[1:]:
        raise OptionError(
            where,
            f"train samples have shape {np.shape(xtr)[1:]}, test {np.shape(xte)[1:]}",
            "use one sample shape",
        )
    as_x = lambda a: torch.as_tensor(np.asarray(a, dtype=np.float32))
    as_y = lambda a: torch.as_tensor(np.asarray(a).astype(np.int64))
    return Dataset(name, as_x(xtr), as_y(ytr), as_x(xte), as_y(yte))
